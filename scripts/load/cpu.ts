/**
 * CPU time and memory of processes on this machine, from /proc. A process's figure is utime+stime of its
 * own threads (fields 14 and 15 of /proc/PID/stat), never its children's (cutime/cstime): rtpengine is a
 * child of the service, and counting it there would bill the relay's work to Monologue.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { processCpuSeconds } from '../../src/metrics/index.js';

/** CPU ms (user+system) used so far by process `pid`'s own threads; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  const seconds = processCpuSeconds(pid);
  return seconds === undefined ? undefined : seconds * 1000;
}

/** This process (the load client: its event loop and libwebrtc's threads), by the same rule. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Resident set size of `pid` in bytes; undefined once it is gone. */
export function rssBytes(pid: number): number | undefined {
  const status = readProc(`/proc/${pid}/status`);
  const m = status?.match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Direct children of `pid` whose command name is `comm` (e.g. the rtpengine a service supervises). */
export function childNamed(pid: number, comm: string): number | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const task of tasks) {
    const children = readProc(`/proc/${pid}/task/${task}/children`)?.trim();
    for (const child of children ? children.split(/\s+/).map(Number) : []) {
      if (readProc(`/proc/${child}/comm`)?.trim() === comm) return child;
    }
  }
  return undefined;
}

/** A CPU counter in ms: read from /proc here, or from the service's /metrics for a remote target. */
export type CpuSource = () => number | undefined | Promise<number | undefined>;

export interface CpuWindow {
  /** CPU ms per source over the window (null when a source could not be read at both ends). */
  readonly cpuMs: Record<string, number | null>;
  readonly wallMs: number;
}

/** Reads a named set of counters together, so every process's figure covers the same window. */
export class CpuMeter {
  private start: { at: number; values: Map<string, number | undefined> } | undefined;

  constructor(private readonly sources: ReadonlyMap<string, CpuSource>) {}

  async begin(): Promise<void> {
    const values = await this.read();
    this.start = { at: performance.now(), values };
  }

  /** CPU used by each source since begin(). */
  async end(): Promise<CpuWindow> {
    const now = await this.read();
    const start = this.start ?? { at: performance.now(), values: now };
    const cpuMs: Record<string, number | null> = {};
    for (const [name, before] of start.values) {
      const after = now.get(name);
      cpuMs[name] = before === undefined || after === undefined ? null : after - before;
    }
    return { cpuMs, wallMs: performance.now() - start.at };
  }

  private async read(): Promise<Map<string, number | undefined>> {
    return new Map(await Promise.all([...this.sources].map(async ([name, source]) => [name, await source()] as const)));
  }
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
