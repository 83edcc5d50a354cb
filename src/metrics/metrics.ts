/**
 * The service's Prometheus metrics (docs/metrics.md): one prom-client Registry per service, never the global
 * one, so several services in one process (tests, benchmarks) keep their own counts.
 *
 * Metrics watch, they are not called from the logic (DESIGN §7): event-driven counters are moved by the
 * watchers in this folder (`watch-*.ts`) from the events the watched objects already emit, and everything a
 * live object already counts (live calls, the recorders' packet counters, the spool) is read at scrape time
 * through `readFrom`, so nothing here runs per RTP packet.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Packet counters of the recorders, finished and live together. */
export interface RecorderTotals {
  received: number;
  lost: number;
  late: number;
  gaps: number;
  /** Datagrams from another source than rtpengine's fork port, plus packets of a foreign SSRC. */
  foreignDropped: number;
}

/** What the scrape reads from live objects; each defaults to nothing (zero) until a watcher provides it. */
export interface MetricReaders {
  callsLive(): number;
  callRefusals(): Readonly<Record<string, number>>;
  recordingsLive(): number;
  recorder(): RecorderTotals;
  spoolDepth(): number;
  /** Seconds the oldest waiting upload has waited; 0 when none waits. */
  spoolOldestAgeSeconds(): number;
}

export type CallDirection = 'outbound' | 'inbound';

export interface Metrics {
  readonly registry: Registry;
  readonly callSetups: Counter<'direction' | 'result'>;
  readonly callEnds: Counter<'reason'>;
  readonly callSetupSeconds: Histogram<'direction'>;
  readonly ngSeconds: Histogram<'command'>;
  readonly ngErrors: Counter<'command'>;
  readonly recordingsStarted: Counter;
  readonly recordingsEnded: Counter<'state'>;
  readonly chunksSealed: Counter;
  readonly chunksSpooled: Counter;
  readonly chunksUploaded: Counter;
  readonly chunkUploadRetries: Counter;
  readonly webhooks: Counter<'provider' | 'result'>;
  readonly ledgerCredits: Counter;
  /** Point the scrape-time metrics at their live sources (a later call replaces what it names). */
  readFrom(readers: Partial<MetricReaders>): void;
  /** The exposition text, as GET /metrics serves it. */
  text(): Promise<string>;
}

/** Prometheus metric names (the load scripts and docs/metrics.md use the same). */
export const METRIC = {
  callsLive: 'monologue_calls_live',
  callSetups: 'monologue_call_setups_total',
  callEnds: 'monologue_call_ends_total',
  callSetupSeconds: 'monologue_call_setup_seconds',
  callRefusals: 'monologue_call_refusals_total',
  ngSeconds: 'monologue_rtpengine_ng_seconds',
  ngErrors: 'monologue_rtpengine_ng_errors_total',
  rtpengineCpu: 'monologue_rtpengine_cpu_seconds_total',
  recordingsLive: 'monologue_recordings_live',
  recordingsStarted: 'monologue_recordings_started_total',
  recordingsEnded: 'monologue_recordings_ended_total',
  packetsReceived: 'monologue_recorder_packets_received_total',
  packetsLost: 'monologue_recorder_packets_lost_total',
  packetsLate: 'monologue_recorder_packets_late_total',
  gaps: 'monologue_recorder_gaps_total',
  foreignDropped: 'monologue_recorder_foreign_dropped_total',
  chunksSealed: 'monologue_chunks_sealed_total',
  chunksSpooled: 'monologue_chunks_spooled_total',
  chunksUploaded: 'monologue_chunks_uploaded_total',
  chunkUploadRetries: 'monologue_chunk_upload_retries_total',
  spoolDepth: 'monologue_spool_depth',
  spoolOldestAge: 'monologue_spool_oldest_age_seconds',
  webhooks: 'monologue_webhooks_total',
  ledgerCredits: 'monologue_ledger_credits_total',
} as const;

/** Setup spans rtpengine, the trunk's ringing and the person answering: milliseconds to a minute. */
const SETUP_BUCKETS = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** One ng round trip on a local rtpengine is sub-millisecond; retransmissions push it to seconds. */
const NG_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const NO_RECORDER: RecorderTotals = { received: 0, lost: 0, late: 0, gaps: 0, foreignDropped: 0 };

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const readers: MetricReaders = {
    callsLive: () => 0,
    callRefusals: () => ({}),
    recordingsLive: () => 0,
    recorder: () => NO_RECORDER,
    spoolDepth: () => 0,
    spoolOldestAgeSeconds: () => 0,
  };

  const scraped = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers, collect() { this.set(read()); } });
  // A counter whose running total lives elsewhere (the recorders count their packets): set at scrape.
  const totalled = (name: string, help: string, read: (t: RecorderTotals) => number) =>
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(recorderTotals())); } });
  // The five recorder counters are collected in one pass of the registry: sum the recorders once for it.
  let totals: RecorderTotals | undefined;
  const recorderTotals = (): RecorderTotals => {
    if (!totals) {
      totals = readers.recorder();
      setImmediate(() => (totals = undefined));
    }
    return totals;
  };

  scraped(METRIC.callsLive, 'Calls open now, from the first message or INVITE until everything is released.', () => readers.callsLive());
  new Counter({
    name: METRIC.callRefusals,
    help: 'call.start requests refused before a call existed or by the dialing policy, by error code.',
    labelNames: ['code'],
    registers,
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(readers.callRefusals())) this.inc({ code }, n);
    },
  });
  scraped(METRIC.recordingsLive, 'Recordings running now (their recorder socket is open).', () => readers.recordingsLive());
  totalled(METRIC.packetsReceived, 'Datagrams that reached the recorders from rtpengine (finished and live recordings).', (t) => t.received);
  totalled(METRIC.packetsLost, 'RTP sequence numbers the recorders never received.', (t) => t.lost);
  totalled(METRIC.packetsLate, 'Packets that arrived after the recorder had given up their place.', (t) => t.late);
  totalled(METRIC.gaps, 'Timestamp gaps (loss or DTX) the recorders filled with silence.', (t) => t.gaps);
  totalled(METRIC.foreignDropped, 'Datagrams the recorders dropped: from another source than the fork, or of a foreign SSRC.', (t) => t.foreignDropped);
  scraped(METRIC.spoolDepth, 'Objects (chunks and manifests) spooled on local disk, not yet uploaded.', () => readers.spoolDepth());
  scraped(METRIC.spoolOldestAge, 'Seconds the oldest object in the spool has waited for its upload; 0 when empty.', () => readers.spoolOldestAgeSeconds());

  return {
    registry,
    callSetups: new Counter({ name: METRIC.callSetups, help: 'Call attempts by how their setup ended: answered, or ended before answer.', labelNames: ['direction', 'result'], registers }),
    callEnds: new Counter({ name: METRIC.callEnds, help: 'Calls ended, by end reason.', labelNames: ['reason'], registers }),
    callSetupSeconds: new Histogram({
      name: METRIC.callSetupSeconds,
      help: 'Answered calls: outbound from call.start to answered media, inbound from the INVITE to answered media.',
      labelNames: ['direction'],
      buckets: SETUP_BUCKETS,
      registers,
    }),
    ngSeconds: new Histogram({ name: METRIC.ngSeconds, help: 'rtpengine ng requests, sent to answered or failed.', labelNames: ['command'], buckets: NG_BUCKETS, registers }),
    ngErrors: new Counter({ name: METRIC.ngErrors, help: 'rtpengine ng requests refused or unanswered.', labelNames: ['command'], registers }),
    recordingsStarted: new Counter({ name: METRIC.recordingsStarted, help: 'Recordings whose fork started.', registers }),
    recordingsEnded: new Counter({
      name: METRIC.recordingsEnded,
      help: 'Recordings ended, by final state: complete, failed (could not be finished), not-started (the fork could not start).',
      labelNames: ['state'],
      registers,
    }),
    chunksSealed: new Counter({ name: METRIC.chunksSealed, help: 'Recording chunks encrypted.', registers }),
    chunksSpooled: new Counter({ name: METRIC.chunksSpooled, help: 'Encrypted chunks durably written to the spool.', registers }),
    chunksUploaded: new Counter({ name: METRIC.chunksUploaded, help: 'Chunks uploaded from the spool to the object store.', registers }),
    chunkUploadRetries: new Counter({ name: METRIC.chunkUploadRetries, help: 'Chunk uploads that failed and will be retried.', registers }),
    webhooks: new Counter({ name: METRIC.webhooks, help: 'Provider webhooks by signature check: verified or rejected.', labelNames: ['provider', 'result'], registers }),
    ledgerCredits: new Counter({ name: METRIC.ledgerCredits, help: 'Call credits written to the payouts ledger.', registers }),
    readFrom(given) {
      Object.assign(readers, given);
    },
    text: () => registry.metrics(),
  };
}
