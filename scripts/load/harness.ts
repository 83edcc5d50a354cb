/**
 * What every scenario runs against: the deployment (local or target), the trunk emulator at its trunk
 * address, the CPU counters of every process in the picture, and the abort signal of Ctrl-C.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { CpuMeter, processCpuMs, selfCpuMs, type CpuSource, type CpuWindow } from './cpu.js';
import type { Deployment } from './deployment.js';
import { scrape, type Scrape } from './metrics.js';
import { startTrunk, type Trunk } from './trunk.js';

const IDLE_MS = 2000;

export interface Harness {
  readonly deployment: Deployment;
  readonly trunk: Trunk;
  /** Aborted by Ctrl-C: stop placing calls, wind down, report what was measured. */
  readonly abort: AbortSignal;
  /** A meter over service, rtpengine, client (this process) and trunk (sipp's UAS). */
  cpuMeter(): CpuMeter;
  /** CPU over 2 s with the clients connected and no call: the baseline the per-call figures are also given above. */
  idleCpu(): Promise<CpuWindow>;
  /** One scrape of the service's metrics (undefined without an endpoint). */
  metrics(): Promise<Scrape | undefined>;
  /** % of a core used by the service and rtpengine since the previous call (for the live line). */
  liveCpu(): Promise<{ serviceCpu: number | null; rtpengineCpu: number | null }>;
}

export async function startHarness(deployment: Deployment, trunk: { maxCalls: number; maxMs: number }, abort: AbortSignal): Promise<Harness> {
  const t = await startTrunk({ at: deployment.trunk, serviceSip: deployment.sip, ...trunk });
  const sources = new Map<string, CpuSource>([
    ...deployment.cpu,
    ['client', selfCpuMs],
    ['trunk', () => (t.uasPid === undefined ? undefined : processCpuMs(t.uasPid))],
  ]);
  const live = new CpuMeter(deployment.cpu);
  await live.begin();
  return {
    deployment,
    trunk: t,
    abort,
    cpuMeter: () => new CpuMeter(sources),
    async idleCpu() {
      const meter = new CpuMeter(sources);
      await meter.begin();
      await sleep(IDLE_MS, abort);
      return meter.end();
    },
    metrics: () => scrape(deployment.metricsUrl),
    async liveCpu() {
      const w = await live.end();
      await live.begin();
      const pct = (ms: number | null | undefined): number | null => (ms === null || ms === undefined || w.wallMs <= 0 ? null : (100 * ms) / w.wallMs);
      return { serviceCpu: pct(w.cpuMs.service), rtpengineCpu: pct(w.cpuMs.rtpengine) };
    },
  };
}

/** Sleep `ms`, or less if `signal` aborts first (never throws). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await delay(ms, undefined, { signal }).catch(() => undefined);
}

/** Run `fn` over `items` with at most `limit` at once, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

