/**
 * `soak`: N call slots kept busy for a long time (default 30 min): each slot places a call, holds it
 * `--hold`, checks its audio, hangs up and places the next. Every `--sample` the service's RSS, event-loop
 * delay and open handles are sampled; growth is reported between the end of the warm-up (default 2 min)
 * and the end, when a leak shows and start-up allocation no longer does.
 */
import { sleep, type Harness } from './harness.js';
import { startProgress } from './progress.js';
import { cpuReport, type Report } from './report.js';
import { percentiles, round1, round3 } from './stats.js';
import { checkAudio, finishCalls, hangUp, placeCall, prepareCalls, type CallsOptions, type PlacedCall } from './calls.js';
import type { WrtcDialer } from '../../test/helpers/wrtc-dialer.js';

export interface SoakOptions extends CallsOptions {
  durationS: number;
  sampleS: number;
  warmupS: number;
}

export interface SoakSample {
  /** Seconds since the start. */
  t: number;
  live: number;
  rssBytes: number | null;
  eventLoopP99Ms: number | null;
  handles: number | null;
}

export async function runSoak(h: Harness, o: SoakOptions): Promise<Report> {
  const { startedAt, directions, accounts, dialers, book, metricsBefore, serviceRssStart } = await prepareCalls(h, o);
  const done: Array<{ call: PlacedCall; dialer: WrtcDialer }> = [];
  const t0 = performance.now();
  const deadline = t0 + o.durationS * 1000;
  const elapsedS = (): number => (performance.now() - t0) / 1000;
  const progress = startProgress('soak', async () => ({ done: Math.round(elapsedS()), total: o.durationS, live: book.live, answered: book.answered, failed: book.failed.total, setupP95: percentiles(book.setupOut).p95, ...(await h.liveCpu()) }));

  const samples: SoakSample[] = [];
  const sample = async (): Promise<void> => {
    const m = await h.metrics();
    const lag = m?.sum('nodejs_eventloop_lag_p99_seconds');
    samples.push({ t: round1(elapsedS()), live: book.live, rssBytes: (await h.deployment.serviceRss()) ?? null, eventLoopP99Ms: lag === undefined ? null : round3(lag * 1000), handles: m?.sum('nodejs_active_handles_total') ?? null });
  };
  const sampling = (async () => {
    for (;;) {
      await sample();
      if (h.abort.aborted || performance.now() >= deadline - 50) return;
      await sleep(Math.min(o.sampleS * 1000, deadline - performance.now()), h.abort);
    }
  })();

  // The steady-state CPU window opens at the end of the warm-up.
  const meter = h.cpuMeter();
  let liveSum = 0;
  let liveReads = 0;
  const steady = (async () => {
    await sleep(o.warmupS * 1000, h.abort);
    await meter.begin();
    while (!h.abort.aborted && performance.now() < deadline) {
      liveSum += book.live;
      liveReads++;
      await sleep(Math.min(1000, deadline - performance.now()), h.abort);
    }
    return meter.end();
  })();

  const slot = async (i: number): Promise<void> => {
    await sleep((i * 1000) / o.rate, h.abort);
    while (!h.abort.aborted && performance.now() < deadline) {
      const call = await placeCall(h, dialers[i]!, accounts[i]!, directions[i]!, o.to, book, o.holdS * 1000);
      if (!call) {
        await sleep(1000, h.abort); // a failing slot must not spin
        continue;
      }
      await Promise.race([sleep(Math.min(o.holdS * 1000, deadline - performance.now()), h.abort), call.ended]);
      checkAudio(dialers[i]!, call, book);
      await hangUp(dialers[i]!, call, book);
      done.push({ call, dialer: dialers[i]! });
    }
  };
  await Promise.all(directions.map((_, i) => slot(i)));
  const window = await steady;
  await sampling;
  progress.stop();
  const report = await finishCalls(h, {
    scenario: 'soak',
    options: o,
    startedAt,
    book,
    cpu: cpuReport('steady', window, { liveCalls: liveReads ? round1(liveSum / liveReads) : null, setups: null }),
    serviceRssStart,
    metricsBefore,
    calls: done,
    dialers,
  });
  return { ...report, soak: growth(samples, o.warmupS) };
}

/** Growth from the first sample at or after the warm-up to the last one. */
export function growth(samples: readonly SoakSample[], warmupS: number) {
  const from = samples.find((s) => s.t >= warmupS) ?? samples.at(-1);
  const to = samples.at(-1);
  const pct = (a: number | null | undefined, b: number | null | undefined): number | null => (a && b !== null && b !== undefined ? round1((100 * (b - a)) / a) : null);
  const lags = samples.map((s) => s.eventLoopP99Ms).filter((v): v is number => v !== null);
  return {
    warmupS,
    sampleCount: samples.length,
    rssGrowthPct: pct(from?.rssBytes, to?.rssBytes),
    handlesAfterWarmup: from?.handles ?? null,
    handlesEnd: to?.handles ?? null,
    eventLoopP99MaxMs: lags.length ? Math.max(...lags) : null,
    samples,
  };
}
