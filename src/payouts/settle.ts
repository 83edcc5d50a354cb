import type { Kysely, Transaction } from 'kysely';
import type { SettlementState, SettlementsTable, Tables } from '../db/tables.js';
import type { Logger } from '../log.js';
import { MonologueError } from '../errors.js';
import { callEntryKey, isPostgres, toSafeInt, type Ledger } from './ledger.js';
import { computeEarning, HOLDING_FLAGS, utcDay, type PayoutsConfig } from './rules.js';
import { NO_EVENTS, type EventSink } from '../events/outbox.js';

/**
 * Settling a finished call: judge it once (rules.ts), record the judgement (`settlements`, one row
 * per call) and credit the ledger at most once, in one transaction. A retried or raced settle of the
 * same call returns the first result. Per-user work is serialized (PostgreSQL: a row lock on the
 * user; SQLite: transactions are serial), so the daily cap holds across concurrent calls.
 */

export interface SettleInput {
  callId: string;
  userId: string;
  /** Server clock, epoch ms: SIP answer and hangup. The call's day is the UTC day of `answeredAt`. */
  answeredAt: number;
  endedAt: number;
  /** Voice activity on the user's own leg, ms. */
  talkMs: number;
  /** Time the owner paused the recording, ms: it earns nothing, so it leaves the billable time. */
  pausedMs?: number;
  /** Informational: the call row's `counterpart_hash` is authoritative. */
  counterpartHash: string;
  counterpartEnrolled: boolean;
  /** Defaults to the call row's `provider_duration_s`. */
  providerDurationSeconds?: number | undefined;
}

export interface SettleResult {
  /** `credited` | `held` | `unpaid` when created; a repeat returns the settlement's current state. */
  state: SettlementState;
  amountMicros: number;
  flags: string[];
  /** False: the call was already settled; nothing was written. */
  created: boolean;
}

export interface Settlement {
  callId: string;
  userId: string;
  day: string;
  billableS: number;
  talkS: number;
  rateMicrosPerMinute: number;
  amountMicros: number;
  state: SettlementState;
  flags: string[];
  createdAt: number;
  reviewedAt: number | null;
  reviewer: string | null;
}

export interface ReviewResult {
  settlement: Settlement;
  /** False: it was already in the requested state (an idempotent repeat). */
  changed: boolean;
}

export interface FlagResult {
  settlement: Settlement;
  /** False: the flag was already there. */
  changed: boolean;
}

export interface Settler {
  settle(input: SettleInput): Promise<SettleResult>;
  /** A flag that arrives after settlement: a credited (or released) call goes back to `held`, its credit to pending. */
  flag(callId: string, flag: string): Promise<FlagResult>;
  get(callId: string): Promise<Settlement | undefined>;
  review: {
    /** held → released; the credit becomes available. Repeating it is a no-op. */
    release(callId: string, reviewer: string): Promise<ReviewResult>;
    /** held → rejected; a `reversal` of −amount (pending) cancels the pending credit. Repeating it is a no-op. */
    reject(callId: string, reviewer: string): Promise<ReviewResult>;
    /** Held settlements, oldest first. */
    list(limit?: number): Promise<Settlement[]>;
  };
}

export interface SettlerOptions {
  db: Kysely<Tables>;
  ledger: Ledger;
  config: PayoutsConfig;
  log: Pick<Logger, 'info' | 'warn'>;
  now?: () => number;
  /** `earnings.updated` is written in the transaction that settles or re-judges a call. */
  events?: EventSink;
}

/** States whose amount counts against the day's cap. */
const COUNTED: SettlementState[] = ['credited', 'held', 'released'];

function parseFlags(s: string): string[] {
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function toSettlement(r: SettlementsTable): Settlement {
  return {
    callId: r.call_id,
    userId: r.user_id,
    day: r.day,
    billableS: toSafeInt(r.billable_s),
    talkS: toSafeInt(r.talk_s),
    rateMicrosPerMinute: toSafeInt(r.rate_micros_per_min),
    amountMicros: toSafeInt(r.amount_micros),
    state: r.state,
    flags: parseFlags(r.flags),
    createdAt: toSafeInt(r.created_at),
    reviewedAt: r.reviewed_at === null ? null : toSafeInt(r.reviewed_at),
    reviewer: r.reviewer,
  };
}

const FLAG_RE = /^[a-z][a-z0-9-]{0,63}$/;

export function createSettler(opts: SettlerOptions): Settler {
  const { db, ledger, config, log } = opts;
  const now = opts.now ?? Date.now;
  const pg = isPostgres(db);
  const events = opts.events ?? NO_EVENTS;
  const earningsEvent = (trx: Kysely<Tables>, s: Settlement) =>
    events.write(trx, 'earnings.updated', { callId: s.callId, userId: s.userId, amountMicros: s.amountMicros, state: s.state, flags: s.flags });

  /** Serialize per user: on PostgreSQL a row lock held to the end of the transaction. */
  async function lockUser(trx: Transaction<Tables>, userId: string): Promise<boolean> {
    let q = trx.selectFrom('users').select('id').where('id', '=', userId);
    if (pg) q = q.forUpdate();
    return (await q.executeTakeFirst()) !== undefined;
  }

  async function readSettlement(trx: Kysely<Tables>, callId: string): Promise<Settlement | undefined> {
    const row = await trx.selectFrom('settlements').selectAll().where('call_id', '=', callId).executeTakeFirst();
    return row ? toSettlement(row) : undefined;
  }

  /** The settlement's user, read without a lock, to know whom to lock. */
  async function ownerOf(callId: string): Promise<string> {
    const row = await db.selectFrom('settlements').select('user_id').where('call_id', '=', callId).executeTakeFirst();
    if (!row) throw new MonologueError('PAYOUT_NOT_SETTLED', `call ${callId} has no settlement`);
    return row.user_id;
  }

  function asResult(s: Settlement, created: boolean): SettleResult {
    return { state: s.state, amountMicros: s.amountMicros, flags: s.flags, created };
  }

  async function settle(input: SettleInput): Promise<SettleResult> {
    for (const [k, v] of [['answeredAt', input.answeredAt], ['endedAt', input.endedAt], ['talkMs', input.talkMs]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new MonologueError('PAYOUT_INPUT_INVALID', `${k} must be a finite number`);
    }
    return db.transaction().execute(async (trx) => {
      if (!(await lockUser(trx, input.userId))) {
        throw new MonologueError('PAYOUT_UNKNOWN_USER', `user ${input.userId} does not exist`);
      }
      const call = await trx
        .selectFrom('calls')
        .select(['id', 'counterpart_hash', 'provider_duration_s'])
        .where('id', '=', input.callId)
        .where('user_id', '=', input.userId)
        .executeTakeFirst();
      if (!call) throw new MonologueError('PAYOUT_UNKNOWN_CALL', `call ${input.callId} is not a call of this user`);

      const existing = await readSettlement(trx, input.callId);
      if (existing) return asResult(existing, false);

      if (call.counterpart_hash !== input.counterpartHash) {
        log.warn({ callId: input.callId }, 'payouts: counterpart hash differs from the call record; using the record');
      }
      const day = utcDay(input.answeredAt);
      const pausedMs = Math.max(0, input.pausedMs ?? 0);
      const billableS = Math.max(0, Math.floor((input.endedAt - input.answeredAt - pausedMs) / 1000));
      const talkS = Math.max(0, Math.floor(input.talkMs / 1000));

      const earned = await trx
        .selectFrom('settlements')
        .select((eb) => eb.fn.sum<string | number | null>('amount_micros').as('total'))
        .where('user_id', '=', input.userId)
        .where('day', '=', day)
        .where('state', 'in', COUNTED)
        .executeTakeFirstOrThrow();
      const earnedTodayMicros = toSafeInt(earned.total, 'earned today');

      const prior = await trx
        .selectFrom('settlements as s')
        .innerJoin('calls as c', 'c.id', 's.call_id')
        .select((eb) => eb.fn.countAll<string | number>().as('n'))
        .where('s.user_id', '=', input.userId)
        .where('s.day', '=', day)
        .where('c.counterpart_hash', '=', call.counterpart_hash)
        .executeTakeFirstOrThrow();
      const callsToCounterpartToday = toSafeInt(prior.n, 'call count') + 1;

      const providerGross = input.providerDurationSeconds ?? call.provider_duration_s ?? undefined;
      // The provider counts paused time too: compare like with like.
      const providerDuration = providerGross === undefined ? undefined : Math.max(0, providerGross - Math.round(pausedMs / 1000));
      const earning = computeEarning(
        {
          billableSeconds: billableS,
          talkSeconds: talkS,
          counterpartEnrolled: input.counterpartEnrolled,
          earnedTodayMicros,
          callsToCounterpartToday,
          providerDurationSeconds: providerDuration,
        },
        config,
      );
      const state: SettlementState = earning.held ? 'held' : earning.amountMicros > 0 ? 'credited' : 'unpaid';
      const at = now();
      const inserted = await trx
        .insertInto('settlements')
        .values({
          call_id: input.callId,
          user_id: input.userId,
          day,
          billable_s: billableS,
          talk_s: talkS,
          rate_micros_per_min: earning.rateMicrosPerMinute,
          amount_micros: earning.amountMicros,
          state,
          flags: JSON.stringify(earning.flags),
          created_at: at,
          reviewed_at: null,
          reviewer: null,
        })
        .onConflict((oc) => oc.column('call_id').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!inserted) {
        // Another writer (another process on the same SQLite file) won; report its judgement.
        const won = await readSettlement(trx, input.callId);
        if (!won) throw new MonologueError('PAYOUT_CONFLICT', `settlement of ${input.callId} conflicted but cannot be read`);
        return asResult(won, false);
      }
      if (earning.amountMicros > 0) {
        await ledger.with(trx).credit({
          userId: input.userId,
          callId: input.callId,
          type: 'call_credit',
          state: earning.held ? 'pending' : 'available',
          amountMicros: earning.amountMicros,
          memo: `${billableS} s at ${earning.rateMicrosPerMinute} µ/min${earning.flags.length ? ` [${earning.flags.join(',')}]` : ''}`,
        });
      }
      log.info(
        { callId: input.callId, day, billableS, talkS, amountMicros: earning.amountMicros, state, flags: earning.flags },
        'payouts: call settled',
      );
      const settled = toSettlement(inserted);
      await earningsEvent(trx, settled);
      return asResult(settled, true);
    });
  }

  async function flag(callId: string, flagCode: string): Promise<FlagResult> {
    if (!FLAG_RE.test(flagCode)) throw new MonologueError('PAYOUT_FLAG_INVALID', `not a flag code: ${JSON.stringify(flagCode)}`);
    const userId = await ownerOf(callId);
    return db.transaction().execute(async (trx) => {
      await lockUser(trx, userId);
      const s = await readSettlement(trx, callId);
      if (!s) throw new MonologueError('PAYOUT_NOT_SETTLED', `call ${callId} has no settlement`);
      if (s.flags.includes(flagCode)) return { settlement: s, changed: false };
      const flags = [...s.flags, flagCode];
      // A holding flag sends a paid-out-able call back to review; a rejected or unpaid call stays as it is.
      const rehold = HOLDING_FLAGS.includes(flagCode) && (s.state === 'credited' || s.state === 'released');
      const nextState: SettlementState = rehold ? 'held' : s.state;
      await trx
        .updateTable('settlements')
        .set({ flags: JSON.stringify(flags), state: nextState })
        .where('call_id', '=', callId)
        .where('state', '=', s.state)
        .execute();
      if (rehold) {
        const entry = await ledger.with(trx).byKey(callEntryKey(callId, 'call_credit'));
        if (entry) {
          const held = await ledger.with(trx).hold(entry.id);
          if (!held) log.warn({ callId, entryState: entry.state }, 'payouts: late flag on a credit that can no longer be held');
        }
      }
      log.info({ callId, flag: flagCode, state: nextState }, 'payouts: call flagged');
      const settlement = { ...s, flags, state: nextState };
      await earningsEvent(trx, settlement);
      return { settlement, changed: true };
    });
  }

  async function decide(callId: string, reviewer: string, to: 'released' | 'rejected'): Promise<ReviewResult> {
    const userId = await ownerOf(callId);
    return db.transaction().execute(async (trx) => {
      await lockUser(trx, userId);
      const s = await readSettlement(trx, callId);
      if (!s) throw new MonologueError('PAYOUT_NOT_SETTLED', `call ${callId} has no settlement`);
      if (s.state === to) return { settlement: s, changed: false };
      if (s.state !== 'held') {
        throw new MonologueError('PAYOUT_NOT_HELD', `call ${callId} is ${s.state}, not held for review`);
      }
      const at = now();
      await trx
        .updateTable('settlements')
        .set({ state: to, reviewed_at: at, reviewer })
        .where('call_id', '=', callId)
        .where('state', '=', 'held')
        .execute();
      const l = ledger.with(trx);
      const credit = await l.byKey(callEntryKey(callId, 'call_credit'));
      if (credit) {
        if (to === 'released') {
          await l.setState(credit.id, 'pending', 'available');
        } else {
          await l.credit({
            userId: s.userId,
            callId,
            type: 'reversal',
            state: 'pending',
            amountMicros: -credit.amountMicros,
            memo: `rejected by ${reviewer}`,
          });
        }
      }
      log.info({ callId, reviewer, state: to }, 'payouts: review decided');
      const settlement = { ...s, state: to, reviewedAt: at, reviewer };
      await earningsEvent(trx, settlement);
      return { settlement, changed: true };
    });
  }

  return {
    settle,
    flag,
    get: (callId) => readSettlement(db, callId),
    review: {
      release: (callId, reviewer) => decide(callId, reviewer, 'released'),
      reject: (callId, reviewer) => decide(callId, reviewer, 'rejected'),
      async list(limit = 100) {
        const rows = await db
          .selectFrom('settlements')
          .selectAll()
          .where('state', '=', 'held')
          .orderBy('created_at')
          .orderBy('call_id')
          .limit(limit)
          .execute();
        return rows.map(toSettlement);
      },
    },
  };
}
