/**
 * Reads the service's Prometheus endpoint (`GET /metrics`, text format). Tolerant by design: a service
 * without the endpoint (older builds, or metrics off) gives `undefined`, and the report says so instead
 * of failing the run.
 */
import { parseExposition, sampleValue, type Sample } from '../../src/metrics/index.js';

/** One scrape, read with the service's own exposition reader. */
export class Scrape {
  constructor(private readonly samples: readonly Sample[]) {}

  /** The sum of a metric's samples whose labels include `match`; undefined when none matches. */
  sum(name: string, match: Record<string, string> = {}): number | undefined {
    return sampleValue(this.samples, name, match);
  }

}

/** Scrape `url`; undefined when nothing answers there or it is not a metrics endpoint. */
export async function scrape(url: string | undefined, timeoutMs = 3000): Promise<Scrape | undefined> {
  if (!url) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    return parseScrape(await res.text());
  } catch {
    return undefined;
  }
}

/** Prometheus text exposition (`name{label="value",...} value`) as a Scrape. */
export function parseScrape(text: string): Scrape {
  return new Scrape(parseExposition(text));
}

/** The recorder counters of the metrics contract, read at one instant. */
export interface RecorderCounters {
  received: number;
  lost: number;
  late: number;
}

export function recorderCounters(s: Scrape | undefined): RecorderCounters | undefined {
  const received = s?.sum('monologue_recorder_packets_received_total');
  if (s === undefined || received === undefined) return undefined;
  return { received, lost: s.sum('monologue_recorder_packets_lost_total') ?? 0, late: s.sum('monologue_recorder_packets_late_total') ?? 0 };
}
