/**
 * Requests we drop without an answer (a stranger's source, a TCP connection over the cap, an in-dialog
 * request from someone other than the dialog's peer). Answering them would make us a reflector, and a
 * log line for each would let anyone fill the disk: each is counted, and a source gets at most one log
 * line per minute, carrying how many were dropped since its previous line.
 */
import type { Logger } from '../log.js';

export type DropReason = 'source-not-allowed' | 'tcp-connection-limit' | 'not-dialog-peer';

export const LOG_INTERVAL_MS = 60_000;
/** Sources remembered for rate limiting; beyond this (a spoofed flood), the rest share one entry. */
const MAX_SOURCES = 4096;
const OVERFLOW = '(many sources)';

export class Refusals {
  private readonly totals: Record<DropReason, number> = { 'source-not-allowed': 0, 'tcp-connection-limit': 0, 'not-dialog-peer': 0 };
  /** Per source: when its last line was logged and how many drops went unlogged since. */
  private readonly sources = new Map<string, { loggedAt: number; unlogged: number }>();

  constructor(private readonly log: Logger) {}

  get counts(): Readonly<Record<DropReason, number>> {
    return { ...this.totals };
  }

  /** `what`: the method or "TCP connection", for the log line. */
  note(source: string, reason: DropReason, what: string): void {
    this.totals[reason] += 1;
    const now = Date.now();
    const key = this.keyFor(source, now);
    const seen = this.sources.get(key);
    if (seen && now - seen.loggedAt < LOG_INTERVAL_MS) {
      seen.unlogged += 1;
      return;
    }
    this.log.warn({ src: key, reason, what, droppedSinceLastLine: seen?.unlogged ?? 0 }, 'sip: dropped unanswered');
    this.sources.set(key, { loggedAt: now, unlogged: 0 });
  }

  private keyFor(source: string, now: number): string {
    if (this.sources.has(source) || this.sources.size < MAX_SOURCES) return source;
    for (const [k, v] of this.sources) if (now - v.loggedAt >= LOG_INTERVAL_MS) this.sources.delete(k);
    return this.sources.size < MAX_SOURCES ? source : OVERFLOW;
  }
}
