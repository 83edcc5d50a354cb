/**
 * Run real sipp (3.6.1) as a test peer. Scenarios live in test/sipp/ (each documents its keys).
 *
 *   const run = startSipp({ scenario: 'uas-401-answer', port, transport: 'u1', keys: { auth_pass: 'pw' } });
 *   ... await run.ready; (dial) ...
 *   const result = await run.done;   // { code, successful, failed, ... }
 *
 * sipp runs in a temp dir with -nostdin, no -bg, errors traced to `errors.log`; `kill()` (or the
 * `timeoutMs`, default 60 s) stops it. Exit codes: 0 all calls ok, 1 some failed, 97/99 see sipp docs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freeSipPort } from './ports.js';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SIPP_BIN = process.env.SIPP_BIN ?? '/usr/bin/sipp';
export const SCENARIO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'sipp');

/** Defaults for the keys the scenarios use; unused keys are harmless. */
export const DEFAULT_KEYS: Readonly<Record<string, string>> = {
  rtp_ip: '127.0.0.1',
  rtp_port: '6000',
  auth_realm: 'sipp.test',
  auth_user: 'monologue',
  auth_pass: 'secret',
  caller: '+15550002222',
  bye_after: '0',
  rtp_port2: '6002',
  early_port: '6004',
  reject_offers: '0',
  se: '90',
  refresher: 'uas',
  refresh_invite: '0',
  refresh_every_ms: '45000',
};

export interface SippOptions {
  /** A file name in test/sipp (with or without .xml) or a path. */
  scenario: string;
  /** Local SIP port of sipp (-p). */
  port: number;
  /** Peer (our endpoint) as host:port; for UAC scenarios the target, for UAS scenarios used in [remote_*]. */
  remote?: string;
  /** -t: u1 (UDP, one socket), t1 (TCP, one connection), un, tn. Default u1. */
  transport?: 'u1' | 'un' | 't1' | 'tn';
  /** -m: stop after this many calls (default 1). */
  calls?: number;
  /** -r: calls per second (UAC). */
  rate?: number;
  /** -l: simultaneous calls limit. */
  limit?: number;
  /** -s: service (Request-URI user) for UAC scenarios. */
  service?: string;
  /** -d: default pause in ms (uac-call's hold time). */
  pauseMs?: number;
  /** -lost: percentage of messages sipp drops (both directions). */
  lost?: number;
  keys?: Record<string, string>;
  /** -set NAME VALUE (scenario globals). */
  sets?: Record<string, string | number>;
  extraArgs?: string[];
  /** Kill sipp after this long (default 60 s). */
  timeoutMs?: number;
}

export interface SippResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  successful: number;
  failed: number;
  /** Contents of sipp's error trace (unexpected messages, retransmission timeouts). */
  errors: string;
  stdout: string;
  stderr: string;
}

export interface SippRun {
  readonly process: ChildProcess;
  /** Resolves once sipp holds its SIP port (rejects if it exits first). */
  readonly ready: Promise<void>;
  readonly done: Promise<SippResult>;
  kill(): void;
}

export function startSipp(o: SippOptions): SippRun {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  const scenario = o.scenario.includes('/') ? o.scenario : join(SCENARIO_DIR, o.scenario.endsWith('.xml') ? o.scenario : `${o.scenario}.xml`);
  const args: string[] = [];
  if (o.remote) args.push(o.remote);
  args.push(
    '-sf', scenario,
    '-i', '127.0.0.1',
    '-p', String(o.port),
    '-t', o.transport ?? 'u1',
    '-m', String(o.calls ?? 1),
    '-nostdin',
    '-trace_err', '-error_file', join(dir, 'errors.log'),
    '-trace_stat', '-stf', join(dir, 'stats.csv'), '-fd', '1',
    '-timeout_error',
  );
  // SIPP_TRACE=1 keeps every message sipp saw or sent, and its folder, for a post-mortem.
  const trace = process.env.SIPP_TRACE === '1';
  if (trace) args.push('-trace_msg', '-message_file', join(dir, 'messages.log'));
  if (o.rate !== undefined) args.push('-r', String(o.rate));
  if (o.limit !== undefined) args.push('-l', String(o.limit));
  if (o.service !== undefined) args.push('-s', o.service);
  if (o.pauseMs !== undefined) args.push('-d', String(o.pauseMs));
  if (o.lost !== undefined) args.push('-lost', String(o.lost));
  for (const [k, v] of Object.entries({ ...DEFAULT_KEYS, ...o.keys })) args.push('-key', k, v);
  for (const [k, v] of Object.entries(o.sets ?? {})) args.push('-set', k, String(v));
  args.push(...(o.extraArgs ?? []));

  const child = spawn(SIPP_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => { stdout = (stdout + d.toString()).slice(-20_000); });
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  const killTimer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);

  const done = new Promise<SippResult>((resolvePromise) => {
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      // sipp's final screen has the true totals; its CSV may miss calls finished after the last dump.
      const stats = screenStats(stdout) ?? readStats(dir);
      const errors = readIf(join(dir, 'errors.log'));
      if (trace) process.stderr.write(`sipp: trace kept in ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
      resolvePromise({ code, signal, ...stats, errors, stdout, stderr });
    });
    child.on('error', (err) => {
      clearTimeout(killTimer);
      resolvePromise({ code: -1, signal: null, successful: 0, failed: 0, errors: String(err), stdout, stderr });
    });
  });
  const ready = waitBound(o.port, (o.transport ?? 'u1').startsWith('t') ? 'tcp' : 'udp', child);
  ready.catch(() => undefined); // UAC runs never await it; a failure still shows in `done`
  return {
    process: child,
    ready,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * sipp prints nothing when it has bound, so ask the kernel: wait until /proc/net lists the port as
 * bound (UDP) or listening (TCP). Reading, not probing with a bind of our own, which could steal the
 * port from sipp in the same instant.
 */
async function waitBound(port: number, transport: 'udp' | 'tcp', child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sipp exited (${child.exitCode ?? child.signalCode}) before binding port ${port}`);
    if (portBound(port, transport)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`sipp did not bind port ${port} within 10 s`);
}

function portBound(port: number, transport: 'udp' | 'tcp'): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readIf(`/proc/net/${transport}`).split('\n').slice(1).some((line) => {
    const [, local, , state] = line.trim().split(/\s+/);
    return local?.endsWith(`:${hexPort}`) === true && (transport === 'udp' || state === '0A');
  });
}

/** Run a scenario to the end. */
export async function runSipp(o: SippOptions): Promise<SippResult> {
  return startSipp(o).done;
}

function readIf(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Cumulative counts from the last `Successful call | periodic | cumulative` screen sipp printed. */
function screenStats(stdout: string): { successful: number; failed: number } | undefined {
  const last = (label: string): number | undefined => {
    const all = [...stdout.matchAll(new RegExp(`${label}\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`, 'g'))];
    const m = all.at(-1);
    return m ? Number(m[1]) : undefined;
  };
  const successful = last('Successful call');
  const failed = last('Failed call');
  return successful === undefined || failed === undefined ? undefined : { successful, failed };
}

/** Cumulative successful/failed call counts from sipp's last stats line. */
function readStats(dir: string): { successful: number; failed: number } {
  const file = readdirSync(dir).find((f) => f.endsWith('.csv'));
  const lines = file ? readIf(join(dir, file)).trim().split('\n') : [];
  const header = lines[0]?.split(';') ?? [];
  const last = lines.at(-1)?.split(';') ?? [];
  const get = (name: string): number => {
    const i = header.indexOf(name);
    return i >= 0 ? Number(last[i]) || 0 : 0;
  };
  return { successful: get('SuccessfulCall(C)'), failed: get('FailedCall(C)') };
}

/** A port free for both UDP and TCP on 127.0.0.1 (sipp and the service bind both). */
export const freePort = (): Promise<number> => freeSipPort();
