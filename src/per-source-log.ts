/**
 * One log line a minute per source, for events anyone on the network can cause (dropped datagrams,
 * refused requests): a line per event would let a sender fill the disk. Each line can say how many
 * went unlogged since the source's previous one. Memory is bounded: past `maxSources` (a spoofed
 * flood), new sources share one entry.
 */
export class PerSourceLog {
  static readonly OVERFLOW = '(many sources)';
  readonly #sources = new Map<string, { loggedAt: number; unlogged: number }>();

  constructor(
    private readonly maxSources: number,
    private readonly intervalMs = 60_000,
  ) {}

  /** Undefined: stay quiet. Otherwise log now, naming `source` (the entry it was counted under). */
  admit(source: string, now = Date.now()): { source: string; unlogged: number } | undefined {
    const key = this.#keyFor(source, now);
    const seen = this.#sources.get(key);
    if (seen && now - seen.loggedAt < this.intervalMs) {
      seen.unlogged += 1;
      return undefined;
    }
    this.#sources.set(key, { loggedAt: now, unlogged: 0 });
    return { source: key, unlogged: seen?.unlogged ?? 0 };
  }

  #keyFor(source: string, now: number): string {
    if (this.#sources.has(source) || this.#sources.size < this.maxSources) return source;
    for (const [k, v] of this.#sources) if (now - v.loggedAt >= this.intervalMs) this.#sources.delete(k);
    return this.#sources.size < this.maxSources ? source : PerSourceLog.OVERFLOW;
  }
}
