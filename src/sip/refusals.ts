/**
 * Requests we drop without an answer (a stranger's source, a TCP connection over the cap, an in-dialog
 * request from someone other than the dialog's peer). Answering them would make us a reflector, and a
 * log line for each would let anyone fill the disk: each is counted, and a source gets at most one log
 * line per minute, carrying how many were dropped since its previous line.
 */
import type { Logger } from '../log.js';
import { PerSourceLog } from '../per-source-log.js';

export type DropReason = 'source-not-allowed' | 'tcp-connection-limit' | 'not-dialog-peer';

export class Refusals {
  private readonly totals: Record<DropReason, number> = { 'source-not-allowed': 0, 'tcp-connection-limit': 0, 'not-dialog-peer': 0 };
  /** Sources remembered for rate limiting; beyond this (a spoofed flood), the rest share one entry. */
  private readonly lines = new PerSourceLog(4096);

  constructor(private readonly log: Logger) {}

  get counts(): Readonly<Record<DropReason, number>> {
    return { ...this.totals };
  }

  /** `what`: the method or "TCP connection", for the log line. */
  note(source: string, reason: DropReason, what: string): void {
    this.totals[reason] += 1;
    const line = this.lines.admit(source);
    if (line) this.log.warn({ src: line.source, reason, what, droppedSinceLastLine: line.unlogged }, 'sip: dropped unanswered');
  }
}
