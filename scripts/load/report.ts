/**
 * The one JSON line every scenario ends with (stdout). Field meanings are in docs/load-testing.md; numbers
 * that could not be measured are null, and `notes` says why.
 */
import type { CpuWindow } from './cpu.js';
import type { RecorderCounters } from './metrics.js';
import { round1, round3, type Percentiles } from './stats.js';

export interface ProcessCpu {
  cpuMs: number | null;
  /** % of one core over the window. */
  pctOfCore: number | null;
  /** pctOfCore divided by the calls live during the window (calls, soak). */
  perLiveCallPct: number | null;
  /** cpuMs divided by the calls set up and torn down in the window (cps). */
  perSetupMs: number | null;
  /** % of a core with the clients connected and no call, measured for 2 s before the run (calls, cps). */
  idlePctOfCore?: number | null;
  /** perLiveCallPct and perSetupMs less that idle use: what the calls themselves cost. */
  perLiveCallPctAboveIdle?: number | null;
  perSetupMsAboveIdle?: number | null;
}

export interface CpuReport {
  /** What the window covered: `hold` (every call up), `run` (the whole run), `steady` (soak after warm-up). */
  window: string;
  wallS: number;
  liveCalls: number | null;
  setups: number | null;
  /** service, rtpengine, client (this load script: event loop and libwebrtc), trunk (sipp). */
  processes: Record<string, ProcessCpu>;
}

export interface RecorderReport {
  /** Calls for which the dialer was told `recording.started`. */
  recordedCalls: number;
  packetsReceivedPerCall: number | null;
  lostPerCall: number | null;
  latePerCall: number | null;
  /** lost / (received + lost), %. */
  lossPct: number | null;
}

export interface AudioReport {
  /** Calls whose dialer heard the trunk's tone (TRUNK_TONE_HZ) at the end of its hold. */
  dialerHeardTrunk: { checked: number; passed: number };
  /** Media streams at the trunk in which the dialer's tone (DIALER_TONE_HZ) was heard. */
  trunkHeardDialer: { streams: number; checked: number; passed: number };
}

export interface Report {
  scenario: 'calls' | 'cps' | 'soak';
  mode: 'local' | 'target';
  startedAt: string;
  durationS: number;
  options: Record<string, unknown>;
  /** recorded: calls whose dialer was told `recording.started`. */
  calls: { attempted: number; answered: number; recorded: number; failed: Record<string, number>; failedTotal: number };
  /** Outbound: call.start sent → call.answered received, ms. */
  setupMs: Percentiles;
  /** Inbound: call.incoming received → the dialer's media connected, ms (null without inbound calls). */
  setupInboundMs: Percentiles | null;
  cpu: CpuReport;
  rss: { serviceStartBytes: number | null; serviceEndBytes: number | null };
  recorder: RecorderReport | null;
  audio: AudioReport | null;
  soak?: unknown;
  /** Whether the service's /metrics answered. */
  metrics: boolean;
  notes: string[];
  profileDir?: string;
}

export function cpuReport(window: string, w: CpuWindow, counts: { liveCalls: number | null; setups: number | null }, idle?: CpuWindow): CpuReport {
  const processes: Record<string, ProcessCpu> = {};
  const perCall = (pct: number | null): number | null => (pct === null || !counts.liveCalls ? null : round3(pct / counts.liveCalls));
  const perSetup = (ms: number | null): number | null => (ms === null || !counts.setups ? null : round3(ms / counts.setups));
  for (const [name, ms] of Object.entries(w.cpuMs)) {
    const pct = ms === null || w.wallMs <= 0 ? null : (ms / w.wallMs) * 100;
    processes[name] = { cpuMs: ms === null ? null : round1(ms), pctOfCore: pct === null ? null : round3(pct), perLiveCallPct: perCall(pct), perSetupMs: perSetup(ms) };
    if (!idle) continue;
    const idleMs = idle.cpuMs[name];
    const idlePct = idleMs === null || idleMs === undefined || idle.wallMs <= 0 ? null : (idleMs / idle.wallMs) * 100;
    const above = idlePct === null || ms === null ? null : ms - (idlePct / 100) * w.wallMs;
    Object.assign(processes[name]!, {
      idlePctOfCore: idlePct === null ? null : round3(idlePct),
      perLiveCallPctAboveIdle: above === null ? null : perCall((above / w.wallMs) * 100),
      perSetupMsAboveIdle: perSetup(above),
    });
  }
  return { window, wallS: round1(w.wallMs / 1000), ...counts, processes };
}

export function recorderReport(before: RecorderCounters | undefined, after: RecorderCounters | undefined, recordedCalls: number): RecorderReport | null {
  if (!before || !after) return null;
  const received = after.received - before.received;
  const lost = after.lost - before.lost;
  const per = (n: number): number | null => (recordedCalls > 0 ? round1(n / recordedCalls) : null);
  return {
    recordedCalls,
    packetsReceivedPerCall: per(received),
    lostPerCall: per(lost),
    latePerCall: per(after.late - before.late),
    lossPct: received + lost > 0 ? round3((100 * lost) / (received + lost)) : null,
  };
}

/** The fields every scenario's report starts with. */
export function reportHead(h: { deployment: { mode: 'local' | 'target'; notes: readonly string[] }; abort: AbortSignal }, scenario: Report['scenario'], startedAt: Date, options: object) {
  return {
    scenario,
    mode: h.deployment.mode,
    startedAt: startedAt.toISOString(),
    durationS: round1((Date.now() - startedAt.getTime()) / 1000),
    options: { ...options },
    notes: [...h.deployment.notes, ...(h.abort.aborted ? ['interrupted: partial figures'] : [])],
  };
}

export function emit(report: Report): void {
  process.stdout.write(JSON.stringify(report) + '\n');
}
