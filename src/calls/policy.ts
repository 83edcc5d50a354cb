import type { CallRecords } from './records.js';

/** The paid-dialing policy (DESIGN §4.9), as configured under `calls`. */
export interface DialingPolicyOptions {
  /** E.164 country codes, digits only (`"1"`): anything else is refused. */
  allowedCountryCodes: readonly string[];
  /** E.164 prefixes with `+` (`"+1900"`) refused even inside an allowed country. */
  deniedPrefixes: readonly string[];
  /** An answered call ends `max-duration` after this long. */
  maxCallSeconds: number;
  /** Per user per UTC day, counted from the call records. */
  dailyMaxCallAttempts: number;
  dailyMaxMinutes: number;
}

/** Why a `call.start` was refused: a stable code for the dialer and words a person can act on. */
export interface Refusal {
  code: 'DESTINATION_NOT_ALLOWED' | 'DAILY_LIMIT';
  message: string;
}

/** One attempt let through the daily caps, holding the user's daily lock until `done()`. */
export interface DailyAdmission {
  refusal?: Refusal;
  /**
   * Call once the attempt's record is written, or the attempt was given up: only then may the user's
   * next attempt be counted, so it sees this one in the database. Idempotent.
   */
  done(): void;
}

/** A live answered outbound call of one user, as the minutes plan needs it. */
export interface LiveAnswered {
  id: string;
  answeredAt: number;
}

/**
 * Decides whether a user may dial a number now. Destinations are pure checks; the daily caps count the
 * user's call records of the current UTC day in the database (so they hold across restarts and nodes),
 * one admission per user at a time (so concurrent starts in this process cannot overshoot).
 */
export class DialingPolicy {
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    private readonly records: CallRecords,
    private readonly options: DialingPolicyOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** See {@link destinationRefusal}. */
  destination(callee: string, ownNumber: string): Refusal | undefined {
    return destinationRefusal(callee, ownNumber, this.options);
  }

  /**
   * Check the user's daily caps and hold their lock: the next admission of the same user waits until
   * this one's `done()`. A refused admission has already let go.
   */
  async admit(userId: string): Promise<DailyAdmission> {
    const previous = this.locks.get(userId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.locks.set(userId, tail);
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      release();
      if (this.locks.get(userId) === tail) this.locks.delete(userId);
    };
    await previous;
    try {
      const denied = await this.dailyRefusal(userId);
      if (denied) done();
      return denied ? { refusal: denied, done } : { done };
    } catch (err) {
      done();
      throw err;
    }
  }

  /**
   * When each of the user's live answered calls must end so that, together, they do not run past the
   * day's minutes: what is left is shared evenly between them. Calls not live in this process (ended,
   * or live on another node) count from their records.
   */
  async plan(userId: string, live: readonly LiveAnswered[]): Promise<Map<string, number>> {
    const now = this.now();
    const others = await this.tally(userId, now, live.map((c) => c.id));
    const spent = others.answeredMs + live.reduce((sum, c) => sum + Math.max(0, now - c.answeredAt), 0);
    const share = Math.max(0, this.options.dailyMaxMinutes * 60_000 - spent) / Math.max(1, live.length);
    return new Map(live.map((c) => [c.id, now + share]));
  }

  private async dailyRefusal(userId: string): Promise<Refusal | undefined> {
    const { dailyMaxCallAttempts: attempts, dailyMaxMinutes: minutes } = this.options;
    const today = await this.tally(userId, this.now());
    if (today.attempts >= attempts) {
      return refusal('DAILY_LIMIT', `at most ${attempts} calls a day; the count starts again at 00:00 UTC`);
    }
    if (today.answeredMs >= minutes * 60_000) {
      return refusal('DAILY_LIMIT', `at most ${minutes} minutes of calls a day; the count starts again at 00:00 UTC`);
    }
    return undefined;
  }

  /** The user's attempts of the UTC day holding `now`, counted in the database (see CallRecords.outboundTally). */
  private tally(userId: string, now: number, except?: readonly string[]) {
    return this.records.outboundTally(userId, utcDayStart(now), { now, maxCallMs: this.options.maxCallSeconds * 1000, ...(except && { except }) });
  }
}

/** Refuses destinations outside the allowed countries, under a denied prefix, or the caller's own number. */
export function destinationRefusal(
  callee: string,
  ownNumber: string,
  options: Pick<DialingPolicyOptions, 'allowedCountryCodes' | 'deniedPrefixes'>,
): Refusal | undefined {
  const digits = callee.slice(1);
  const allowed = options.allowedCountryCodes;
  // E.164 country codes are prefix-free, so a plain prefix test names at most one country.
  if (!allowed.some((cc) => digits.startsWith(cc))) {
    const list = allowed.length ? allowed.map((cc) => `+${cc}`).join(', ') : 'none';
    return refusal('DESTINATION_NOT_ALLOWED', `this service only dials numbers in country codes ${list}`);
  }
  const prefix = options.deniedPrefixes.find((p) => callee.startsWith(p));
  if (prefix) {
    return refusal('DESTINATION_NOT_ALLOWED', `numbers starting ${prefix} are not dialled (premium-rate, satellite or high-risk range)`);
  }
  if (callee === ownNumber) return refusal('DESTINATION_NOT_ALLOWED', 'you cannot call your own number');
  return undefined;
}

/** 00:00 UTC of the day holding `at`. */
export function utcDayStart(at: number): number {
  return at - (at % 86_400_000);
}

function refusal(code: Refusal['code'], message: string): Refusal {
  return { code, message };
}
