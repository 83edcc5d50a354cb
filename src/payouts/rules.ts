import type { Config } from '../config/schema.js';
import { MonologueError } from '../errors.js';

/**
 * What a finished call earns: a pure function of the call's measurements, the user's day so far and
 * the `payouts` configuration. No clock, no database, no floats for money (DESIGN §4 item 6).
 *
 * Day boundary: a call belongs to the UTC calendar day (YYYY-MM-DD) of its ANSWER time. A call that
 * spans midnight UTC counts wholly on the day it was answered (see `utcDay`). The caller computes
 * `earnedTodayMicros` and `callsToCounterpartToday` for that day.
 */

export type PayoutsConfig = Config['payouts'];

export type PayoutFlag = 'silent' | 'repeat-counterpart' | 'farming' | 'duration-mismatch' | 'capped';

/** Flags that stop a credit from being withdrawable until a person reviews the call. */
export const HOLDING_FLAGS: readonly string[] = ['silent', 'repeat-counterpart', 'farming', 'duration-mismatch'];

export interface CallMeasurements {
  /** Server clock, SIP answer → hangup, whole seconds. */
  billableSeconds: number;
  /** Voice activity on the user's own leg, whole seconds. */
  talkSeconds: number;
  /** The other party is an enrolled user too. */
  counterpartEnrolled: boolean;
  /** Credited or held earlier the same UTC day (of the answer), excluding this call. Integer micros. */
  earnedTodayMicros: number;
  /** Calls of this user to the same counterpart that day, including this one. */
  callsToCounterpartToday: number;
  /** The trunk provider's duration, if known; never pays more than our own duration. */
  providerDurationSeconds?: number | undefined;
}

export interface CallEarning {
  /** Integer micro-units; 0 when nothing is earned. */
  amountMicros: number;
  rateMicrosPerMinute: number;
  /** Seconds actually paid (after the minimum length and the per-call maximum). */
  paidSeconds: number;
  flags: PayoutFlag[];
  /** True: credit it as pending (not withdrawable) until reviewed. */
  held: boolean;
  /** Human-readable explanations, one per rule that applied. */
  reasons: string[];
}

const DAY_MS = 86_400_000;

/** The UTC calendar day (YYYY-MM-DD) of an epoch-milliseconds instant. */
export function utcDay(ms: number): string {
  if (!Number.isFinite(ms)) throw new MonologueError('PAYOUT_INPUT_INVALID', `not a time: ${String(ms)}`);
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

function wholeNonNegative(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new MonologueError('PAYOUT_INPUT_INVALID', `${name} must be a finite number, got ${String(v)}`);
  }
  return Math.max(0, Math.floor(v));
}

/** floor(rate × seconds / 60), exact for any integer inputs (BigInt, no floats). */
export function prorate(rateMicrosPerMinute: number, seconds: number): number {
  const v = (BigInt(rateMicrosPerMinute) * BigInt(seconds)) / 60n;
  return Number(v);
}

/** `talk / billable < ratio`, without a division by zero (billable > 0 here). */
function ratioBelow(talk: number, billable: number, ratio: number): boolean {
  return talk < ratio * billable;
}

export function computeEarning(input: CallMeasurements, config: PayoutsConfig): CallEarning {
  const billable = wholeNonNegative('billableSeconds', input.billableSeconds);
  const talk = Math.min(wholeNonNegative('talkSeconds', input.talkSeconds), billable);
  const earnedToday = wholeNonNegative('earnedTodayMicros', input.earnedTodayMicros);
  const callsToCounterpart = Math.max(1, wholeNonNegative('callsToCounterpartToday', input.callsToCounterpartToday));
  const rate = input.counterpartEnrolled ? config.rateEnrolledMicrosPerMinute : config.rateOtherMicrosPerMinute;
  const flags: PayoutFlag[] = [];
  const reasons: string[] = [];

  if (billable < config.minBillableSeconds) {
    reasons.push(`shorter than ${config.minBillableSeconds} s: not billable`);
    return { amountMicros: 0, rateMicrosPerMinute: rate, paidSeconds: 0, flags, held: false, reasons };
  }

  const maxPaid = config.maxPaidMinutesPerCall * 60;
  // Never more than our own (server clock) duration, whatever the provider says.
  let paidSeconds = Math.min(billable, maxPaid);
  if (billable > maxPaid) reasons.push(`paid seconds limited to ${maxPaid} s per call`);

  if (input.providerDurationSeconds !== undefined && input.providerDurationSeconds !== null) {
    const provider = wholeNonNegative('providerDurationSeconds', input.providerDurationSeconds);
    if (Math.abs(provider - billable) > config.reconcileToleranceSeconds) {
      flags.push('duration-mismatch');
      reasons.push(`provider duration ${provider} s differs from ours (${billable} s) by more than ${config.reconcileToleranceSeconds} s`);
    }
  }

  const silent = ratioBelow(talk, billable, config.minTalkRatio);
  if (silent) {
    flags.push('silent');
    reasons.push(`talk ${talk} s of ${billable} s is below the minimum ratio ${config.minTalkRatio}: earns nothing`);
    paidSeconds = 0;
  }

  if (callsToCounterpart > config.maxCallsPerCounterpartPerDay) {
    flags.push('repeat-counterpart');
    reasons.push(`call ${callsToCounterpart} to the same counterpart today (more than ${config.maxCallsPerCounterpartPerDay})`);
  }

  if (input.counterpartEnrolled) {
    const lowTalk = ratioBelow(talk, billable, config.enrolledPairMinTalkRatio);
    const tooMany = callsToCounterpart > config.enrolledPairMaxCallsPerDay;
    if (lowTalk || tooMany) {
      flags.push('farming');
      if (lowTalk) reasons.push(`enrolled pair: talk ratio below ${config.enrolledPairMinTalkRatio}`);
      if (tooMany) reasons.push(`enrolled pair: call ${callsToCounterpart} today (more than ${config.enrolledPairMaxCallsPerDay})`);
    }
  }

  let amount = prorate(rate, paidSeconds);
  const remaining = Math.max(0, config.dailyCapMicros - earnedToday);
  if (amount > remaining) {
    flags.push('capped');
    reasons.push(`daily cap: ${amount} µ limited to the ${remaining} µ left today`);
    amount = remaining;
  }

  const held = flags.some((f) => HOLDING_FLAGS.includes(f));
  return { amountMicros: amount, rateMicrosPerMinute: rate, paidSeconds, flags, held, reasons };
}
