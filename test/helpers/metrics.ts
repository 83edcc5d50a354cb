import { parseExposition, sampleValue, type Sample } from '../../src/metrics/index.js';

/** One scrape of a service's /metrics, read back: `value(name, labels)` sums the matching samples (0 when none). */
export interface Scrape {
  samples: Sample[];
  value(name: string, labels?: Record<string, string>): number;
  /** Whether any sample of this name is there at all. */
  has(name: string): boolean;
}

export async function scrape(url: string | undefined): Promise<Scrape> {
  if (!url) throw new Error('the service has no metrics listener (metrics.enabled false)');
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  const samples = parseExposition(await res.text());
  return {
    samples,
    value: (name, labels) => sampleValue(samples, name, labels) ?? 0,
    has: (name) => samples.some((s) => s.name === name),
  };
}
