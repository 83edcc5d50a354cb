/**
 * Resending a response the transaction layer does not own until the peer confirms it: our 2xx to an
 * INVITE until its ACK (RFC 3261 §13.3.1.4, T1 doubling capped at T2) and a reliable provisional
 * until its PRACK (RFC 3262 §3, T1 doubling). Over a reliable transport nothing is resent, but the
 * 64*T1 give-up still runs.
 */
import { TX_TIMEOUT } from './message.js';

export interface RetransmissionPlan {
  send(): void;
  /** TCP: no resends, only the give-up. */
  reliable: boolean;
  firstMs: number;
  /** Largest interval between resends; undefined: no cap. */
  capMs?: number;
  /** Nothing confirmed it within 64*T1. */
  onGiveUp(): void;
}

export class Retransmission {
  private resend: NodeJS.Timeout | undefined;
  private giveUp: NodeJS.Timeout | undefined;
  private active = false;

  start(plan: RetransmissionPlan): void {
    this.stop();
    this.active = true;
    const cap = plan.capMs ?? Number.POSITIVE_INFINITY;
    const schedule = (interval: number): void => {
      this.resend = setTimeout(() => {
        if (!this.active) return;
        plan.send();
        schedule(Math.min(interval * 2, cap));
      }, interval);
    };
    if (!plan.reliable) schedule(plan.firstMs);
    this.giveUp = setTimeout(() => {
      if (!this.active) return;
      this.stop();
      plan.onGiveUp();
    }, TX_TIMEOUT);
  }

  get running(): boolean {
    return this.active;
  }

  stop(): void {
    this.active = false;
    clearTimeout(this.resend);
    clearTimeout(this.giveUp);
  }
}
