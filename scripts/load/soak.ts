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

/** Longest stretch of samples summarised at each end of the post-warm-up period. */
const GROWTH_WINDOW_S = 60;

/**
 * Growth after the warm-up, from the median of the samples in its first minute to the median of those in the
 * last minute (each window at most a third of what follows the warm-up). A single sample at each end would
 * compare two points of the GC's sawtooth: measured on a 30-min soak, the sample at 2:00 caught a collection
 * (145 MB) while RSS sat at 165-171 MB from 3:00 to the end, which read as +18% for a flat line. The slope of a
 * least-squares line through every post-warm-up sample (MB per hour) is the leak figure that no one sample moves.
 */
export function growth(samples: readonly SoakSample[], warmupS: number) {
  const after = samples.filter((s) => s.t >= warmupS);
  const post = after.length ? after : samples.slice(-1);
  const span = post.length ? (post.at(-1) as SoakSample).t - (post[0] as SoakSample).t : 0;
  const w = Math.min(GROWTH_WINDOW_S, span / 3);
  const first = post.filter((s) => s.t <= (post[0] as SoakSample).t + w);
  const last = post.filter((s) => s.t >= (post.at(-1) as SoakSample).t - w);
  const median = (xs: ReadonlyArray<number | null>): number | null => {
    const v = xs.filter((x): x is number => x !== null).sort((x, y) => x - y);
    if (!v.length) return null;
    const mid = v.length >> 1;
    return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  };
  const pct = (a: number | null, b: number | null): number | null => (a && b !== null ? round1((100 * (b - a)) / a) : null);
  const rssFrom = median(first.map((s) => s.rssBytes));
  const rssTo = median(last.map((s) => s.rssBytes));
  const lags = samples.map((s) => s.eventLoopP99Ms).filter((v): v is number => v !== null);
  return {
    warmupS,
    sampleCount: samples.length,
    windowS: round1(w),
    rssAfterWarmupBytes: rssFrom,
    rssEndBytes: rssTo,
    rssGrowthPct: pct(rssFrom, rssTo),
    rssSlopeMbPerHour: slopePerHour(post.flatMap((s) => (s.rssBytes === null ? [] : [[s.t, s.rssBytes / 1e6] as const]))),
    handlesAfterWarmup: median(first.map((s) => s.handles)),
    handlesEndWindow: median(last.map((s) => s.handles)),
    /** The very last sample: taken as the run ends, when the calls may already be hung up. */
    handlesEnd: samples.at(-1)?.handles ?? null,
    eventLoopP99MaxMs: lags.length ? Math.max(...lags) : null,
    samples,
  };
}

/** Least-squares slope of y over t (seconds), per hour; null with fewer than 3 points or no time between them. */
function slopePerHour(points: ReadonlyArray<readonly [number, number]>): number | null {
  if (points.length < 3) return null;
  const n = points.length;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den > 0 ? round1((num / den) * 3600) : null;
}
