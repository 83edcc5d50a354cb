/**
 * `calls`: N concurrent calls from real libwebrtc dialers (@roamhq/wrtc), ramped at R calls/s, held S
 * seconds once all are up, then hung up by the dialers. Each dialer sends DIALER_TONE_HZ and must hear the
 * trunk's TRUNK_TONE_HZ; the trunk checks the reverse. `--mix O:I` makes I of every O+I calls inbound
 * (the trunk calls the user's number); recording follows the users' enrollment and consent.
 */
import type { WrtcDialer } from '../../test/helpers/wrtc-dialer.js';
import type { DialerAccount } from './deployment.js';
import { mapLimit, sleep, type Harness } from './harness.js';
import { recorderCounters, type Scrape } from './metrics.js';
import { startProgress } from './progress.js';
import { cpuReport, recorderReport, reportHead, type AudioReport, type CpuReport, type Report } from './report.js';
import { percentiles, Tally } from './stats.js';
import { DIALER_TONE_HZ, TONE_HEARD_DBFS, TRUNK_TONE_HZ } from './trunk-media.js';

export interface CallsOptions {
  calls: number;
  /** Ramp: calls started per second. */
  rate: number;
  holdS: number;
  mix: { outbound: number; inbound: number };
  record: boolean;
  /** The number outbound calls dial. */
  to: string;
}

export type Direction = 'outbound' | 'inbound';

/** One call placed by a slot (a dialer with its own user). */
export interface PlacedCall {
  callId: string;
  direction: Direction;
  setupMs: number;
  /** Resolves with the end reason when the call ends, whoever ends it. */
  ended: Promise<string>;
}

/** What every call-holding scenario collects. */
export class CallBook {
  attempted = 0;
  answered = 0;
  live = 0;
  recorded = 0;
  readonly failed = new Tally();
  readonly setupOut: number[] = [];
  readonly setupIn: number[] = [];
  readonly audio = { checked: 0, passed: 0 };

  placed(call: PlacedCall): void {
    this.answered++;
    this.live++;
    (call.direction === 'outbound' ? this.setupOut : this.setupIn).push(call.setupMs);
  }
}

export async function runCalls(h: Harness, o: CallsOptions): Promise<Report> {
  const { startedAt, directions, accounts, dialers, book, metricsBefore, serviceRssStart } = await prepareCalls(h, o);
  const idle = await h.idleCpu();
  const progress = startProgress('calls', async () => ({ done: book.attempted, total: o.calls, live: book.live, answered: book.answered, failed: book.failed.total, setupP95: percentiles(book.setupOut).p95, ...(await h.liveCpu()) }));

  // Ramp: call i starts at i / rate seconds.
  const t0 = performance.now();
  const placing = directions.map(async (direction, i) => {
    await sleep(t0 + (i * 1000) / o.rate - performance.now(), h.abort);
    if (h.abort.aborted) return undefined;
    return placeCall(h, dialers[i]!, accounts[i]!, direction, o.to, book);
  });
  const calls = (await Promise.all(placing)).map((c, i) => (c ? { call: c, dialer: dialers[i]! } : undefined)).filter((c) => c !== undefined);

  // Hold with every call up: the CPU window per live call.
  const meter = h.cpuMeter();
  await meter.begin();
  const liveAtStart = book.live;
  await sleep(o.holdS * 1000, h.abort);
  const window = await meter.end();

  for (const { call, dialer } of calls) checkAudio(dialer, call, book);
  await hangUpAll(calls, book);
  progress.stop();
  return finishCalls(h, { scenario: 'calls', options: o, startedAt, book, cpu: cpuReport('hold', window, { liveCalls: liveAtStart, setups: null }, idle), serviceRssStart, metricsBefore, calls, dialers });
}

/** Users, their connected dialers and the starting figures, for one call slot per `o.calls`. */
export async function prepareCalls(h: Harness, o: CallsOptions) {
  const startedAt = new Date();
  const directions = spread(o.calls, o.mix);
  const accounts = await h.deployment.accounts(o.calls, o.record);
  requirePhones(accounts, directions);
  const dialers = await connectDialers(h, accounts);
  return { startedAt, directions, accounts, dialers, book: new CallBook(), metricsBefore: await h.metrics(), serviceRssStart: await h.deployment.serviceRss() };
}

/** After the calls are hung up: the recorder figures once recordings have closed, then the report. */
export async function finishCalls(
  h: Harness,
  r: {
    scenario: 'calls' | 'soak';
    options: object;
    startedAt: Date;
    book: CallBook;
    cpu: CpuReport;
    serviceRssStart: number | undefined;
    metricsBefore: Scrape | undefined;
    calls: ReadonlyArray<{ call: PlacedCall; dialer: WrtcDialer }>;
    dialers: readonly WrtcDialer[];
  },
): Promise<Report> {
  const metricsAfter = await settledMetrics(h);
  const { book } = r;
  book.recorded = countRecorded(r.calls);
  await closeDialers(r.dialers);
  return {
    ...reportHead(h, r.scenario, r.startedAt, r.options),
    calls: { attempted: book.attempted, answered: book.answered, recorded: book.recorded, failed: book.failed.toJSON(), failedTotal: book.failed.total },
    setupMs: percentiles(book.setupOut),
    setupInboundMs: book.setupIn.length ? percentiles(book.setupIn) : null,
    cpu: r.cpu,
    rss: { serviceStartBytes: r.serviceRssStart ?? null, serviceEndBytes: (await h.deployment.serviceRss()) ?? null },
    recorder: recorderReport(recorderCounters(r.metricsBefore), recorderCounters(metricsAfter), book.recorded),
    audio: audioReport(h, book),
    metrics: r.metricsBefore !== undefined,
  };
}

/** `count` directions with `mix.inbound` of every `outbound + inbound` inbound, spread evenly. */
export function spread(count: number, mix: { outbound: number; inbound: number }): Direction[] {
  const share = mix.inbound / (mix.outbound + mix.inbound);
  return Array.from({ length: count }, (_, i) => (Math.floor((i + 1) * share) > Math.floor(i * share) ? 'inbound' : 'outbound'));
}

function requirePhones(accounts: readonly DialerAccount[], directions: readonly Direction[]): void {
  if (directions.includes('inbound') && accounts.some((a) => !a.phone)) {
    throw new Error('inbound calls need each user\'s phone number: write "TOKEN +1NUMBER" lines in --tokens, or use --admin');
  }
}

/** One dialer (one socket, one user) per slot, connected a few at a time (unauthenticated sockets per address are limited). */
async function connectDialers(h: Harness, accounts: readonly DialerAccount[]): Promise<WrtcDialer[]> {
  const { WrtcDialer } = await import('../../test/helpers/wrtc-dialer.js');
  return mapLimit(accounts, 8, async (a) => {
    const d = new WrtcDialer(h.deployment.signalUrl, a.token, { toneHz: DIALER_TONE_HZ });
    await d.connect();
    return d;
  });
}

export async function closeDialers(dialers: readonly WrtcDialer[]): Promise<void> {
  for (const d of dialers) d.close();
}

const SETUP_TIMEOUT_MS = 15_000;

/** Place one call from `dialer` and wait until its media is connected; failures are tallied by reason. */
export async function placeCall(h: Harness, dialer: WrtcDialer, account: DialerAccount, direction: Direction, to: string, book: CallBook, maxHoldMs = 3_600_000): Promise<PlacedCall | undefined> {
  book.attempted++;
  try {
    let call;
    let setupMs: number;
    if (direction === 'outbound') {
      call = await dialer.call(to, {}, SETUP_TIMEOUT_MS);
      setupMs = call.setupMs!;
    } else {
      await h.trunk.callIn(account.phone!, maxHoldMs + 60_000);
      const incoming = await dialer.waitIncoming(SETUP_TIMEOUT_MS);
      const at = performance.now();
      call = await dialer.accept(incoming.callId);
      await dialer.waitConnected(call.callId, SETUP_TIMEOUT_MS);
      setupMs = performance.now() - at;
    }
    if (direction === 'outbound') await dialer.waitConnected(call.callId, SETUP_TIMEOUT_MS);
    const placed: PlacedCall = { callId: call.callId, direction, setupMs, ended: call.ended };
    book.placed(placed);
    return placed;
  } catch (err) {
    book.failed.add(failureReason(err));
    return undefined;
  }
}

/** Does the dialer hear the trunk's tone now (the last 500 ms)? */
export function checkAudio(dialer: WrtcDialer, call: PlacedCall, book: CallBook): void {
  const live = dialer.live(call.callId);
  if (!live) return; // ended early: counted as a drop by hangUp
  book.audio.checked++;
  if (live.meter.measure(TRUNK_TONE_HZ, 500) > TONE_HEARD_DBFS) book.audio.passed++;
}

/** Hang up from the dialer and wait for the server's `call.ended`; a call that ended before is a drop. */
export async function hangUp(dialer: WrtcDialer, call: PlacedCall, book: CallBook): Promise<void> {
  book.live--;
  if (!dialer.live(call.callId)) {
    book.failed.add(`dropped:${await call.ended}`);
    return;
  }
  dialer.hangup(call.callId);
  await dialer.waitEnded(call.callId).catch(() => book.failed.add('hangup-timeout'));
}

async function hangUpAll(calls: ReadonlyArray<{ call: PlacedCall; dialer: WrtcDialer }>, book: CallBook): Promise<void> {
  await Promise.all(calls.map(({ call, dialer }) => hangUp(dialer, call, book)));
}

/** Calls whose dialer was told `recording.started`. */
export function countRecorded(calls: ReadonlyArray<{ call: PlacedCall; dialer: WrtcDialer }>): number {
  return calls.filter(({ call, dialer }) => dialer.messages.some((m) => m.type === 'recording.started' && m.callId === call.callId)).length;
}

/** A scrape once the service has closed its recordings (their counters then hold every packet), or after 5 s. */
export async function settledMetrics(h: Harness): Promise<Scrape | undefined> {
  const deadline = performance.now() + 5000;
  for (;;) {
    const s = await h.metrics();
    if (!s || (s.sum('monologue_recordings_live') ?? 0) === 0 || performance.now() > deadline) return s;
    await sleep(200);
  }
}

export function audioReport(h: Harness, book: CallBook): AudioReport {
  const t = h.trunk.media.stats();
  return { dialerHeardTrunk: { ...book.audio }, trunkHeardDialer: { streams: t.streams, checked: t.checked, passed: t.passed } };
}

/** A short, stable reason for a failed call, from the dialer's error. */
export function failureReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const m =
    /call\.start failed: (\S+)/.exec(text) ??
    /call ended before answer: (\S+)/.exec(text) ??
    /connection (failed|closed)/.exec(text) ??
    /timed out after \d+ ms waiting for (call\.answered|call\.incoming|connectionState|call\.ended|ready)/.exec(text);
  if (!m) return text.includes('socket') ? 'socket-closed' : 'error';
  if (text.startsWith('timed out')) return `timeout:${m[1]!.replace(/ .*/, '')}`;
  if (text.startsWith('connection')) return `media-${m[1]}`;
  return m[1]!;
}
