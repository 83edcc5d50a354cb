/**
 * Reads the service's Prometheus endpoint (`GET /metrics`, text format). Tolerant by design: a service
 * without the endpoint (older builds, or metrics off) gives `undefined`, and the report says so instead
 * of failing the run.
 */

/** One scrape: every sample, by metric name, with its labels. */
export class Scrape {
  constructor(private readonly samples: ReadonlyMap<string, ReadonlyArray<{ labels: Record<string, string>; value: number }>>) {}

  /** The sum of a metric's samples whose labels include `match`; undefined when the metric is absent. */
  sum(name: string, match: Record<string, string> = {}): number | undefined {
    const rows = this.samples.get(name);
    if (!rows) return undefined;
    let total = 0;
    for (const row of rows) {
      if (Object.entries(match).every(([k, v]) => row.labels[k] === v)) total += row.value;
    }
    return total;
  }

  /** A counter's value per value of one label, e.g. ends by `reason`. */
  byLabel(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const row of this.samples.get(name) ?? []) {
      const key = row.labels[label] ?? '';
      out[key] = (out[key] ?? 0) + row.value;
    }
    return out;
  }
}

/** Scrape `url`; undefined when nothing answers there or it is not a metrics endpoint. */
export async function scrape(url: string | undefined, timeoutMs = 3000): Promise<Scrape | undefined> {
  if (!url) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    return parseExposition(await res.text());
  } catch {
    return undefined;
  }
}

/** The Prometheus text exposition format: `name{label="value",...} value [timestamp]`, `#` lines skipped. */
export function parseExposition(text: string): Scrape {
  const samples = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    const rows = samples.get(m[1]!) ?? [];
    rows.push({ labels, value });
    samples.set(m[1]!, rows);
  }
  return new Scrape(samples);
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
