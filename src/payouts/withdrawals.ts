import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { LedgerEntriesTable, LedgerState, Tables } from '../db/tables.js';
import type { AuditLog } from '../audit/audit-log.js';
import { MonologueError } from '../errors.js';
import { createLedger, isPostgres, toSafeInt } from './ledger.js';
import { NO_EVENTS, type EventSink } from '../events/outbox.js';

/**
 * Withdrawals: a user asks for money out of their available balance; an operator (CLI or admin API)
 * later marks the payout paid or failed. Everything is an entry in the append-only ledger:
 *
 *  - request:  a `payout` entry of −amount, state `pending`, idem key `payout:<userId>:<sha256(key)>`.
 *  - paid:     that entry moves `pending` → `paid`.
 *  - failed:   that entry moves `pending` → `available` AND a compensating `adjustment` of +amount,
 *              state `available`, idem key `payout:<payoutId>:failed` (memo: the reason) is written in
 *              the same transaction. The two cancel inside `available`, so the money is withdrawable
 *              again and no state's sum keeps a trace of a payout that never happened. A payout entry
 *              in `available` is therefore a failed one; the compensation is its marker and record.
 *
 * Paid and failed are both guarded by `state = 'pending'`: each payout is settled once, one way.
 *
 * Requests are serialised per user (the balance check and the insert are one critical section):
 * PostgreSQL takes `pg_advisory_xact_lock(namespace, hash(user))`; SQLite writes first in the
 * transaction so the database write lock is held before the balance is read (another process — the
 * CLI — included).
 */

export type PayoutState = 'pending' | 'paid' | 'failed';

export interface Payout {
  id: string;
  userId: string;
  /** What was asked for: a positive integer of micro-units (the ledger holds its negative). */
  amountMicros: number;
  state: PayoutState;
  createdAt: number;
}

/**
 * The user's money, integer micro-units.
 *  pending:        credits not yet withdrawable (under review), net of reversals.
 *  available:      cleared credits, less what was paid out.
 *  paid:           paid out to the user.
 *  pendingPayout:  requested, not yet paid or failed.
 *  withdrawable:   available − pendingPayout: what POST /v1/payouts may take now.
 *  total:          pending + available + paid: everything earned (net of reversals).
 */
export interface WalletBalance {
  pendingMicros: number;
  availableMicros: number;
  paidMicros: number;
  pendingPayoutMicros: number;
  withdrawableMicros: number;
  totalMicros: number;
}

export interface RequestResult {
  /** The payout as it was created (state `pending`): a repeat with the same key returns exactly this. */
  payout: Payout;
  /** False: the key had been used; nothing was written. */
  created: boolean;
}

export interface SettleResult {
  payout: Payout;
  /** The compensating entry of a failed payout. */
  compensationId?: string;
}

export interface Withdrawals {
  balance(userId: string): Promise<WalletBalance>;
  /** Errors: PAYOUT_AMOUNT_INVALID, IDEMPOTENCY_KEY_REQUIRED, IDEMPOTENCY_KEY_REUSED, PAYOUT_BELOW_MINIMUM, INSUFFICIENT_BALANCE. */
  request(userId: string, idempotencyKey: string, amountMicros: number): Promise<RequestResult>;
  /** The user's own payouts, newest first, strictly after the keyset position `after`. */
  listOwn(userId: string, opts: { limit: number; after?: { at: number; id: string } }): Promise<Payout[]>;
  /** Every user's payouts for the operator, oldest first (the order to pay them), at most `limit`. */
  listAll(opts?: { state?: PayoutState; limit?: number }): Promise<Payout[]>;
  get(payoutId: string): Promise<Payout | undefined>;
  /** Errors: PAYOUT_NOT_FOUND, PAYOUT_NOT_PENDING (already paid or failed). */
  markPaid(payoutId: string, actor: string): Promise<SettleResult>;
  /** Errors: PAYOUT_NOT_FOUND, PAYOUT_NOT_PENDING, PAYOUT_REASON_INVALID. */
  markFailed(payoutId: string, actor: string, reason?: string): Promise<SettleResult>;
}

export interface WithdrawalsOptions {
  db: Kysely<Tables>;
  audit: AuditLog;
  minimumPayoutMicros: number;
  now?: () => number;
  /** `payout.updated` is written in the transaction that moves the payout. */
  events?: EventSink;
}

/** 1–128 visible ASCII characters (as Stripe and the IETF Idempotency-Key draft allow). */
export const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,128}$/;
export const MAX_REASON_LENGTH = 500;

// Namespace of the two-key advisory lock form: disjoint from the audit log's one-key lock by definition.
const PG_PAYOUT_LOCK_NS = 0x6d6c_6f70; // "mlop"

/** The ledger key of a request: bound to the user, so two users' equal keys never meet. */
export function payoutIdemKey(userId: string, idempotencyKey: string): string {
  return `payout:${userId}:${createHash('sha256').update(idempotencyKey).digest('base64url')}`;
}

export function failureIdemKey(payoutId: string): string {
  return `payout:${payoutId}:failed`;
}

const STATE_OF: Record<LedgerState, PayoutState> = { pending: 'pending', paid: 'paid', available: 'failed' };
const LEDGER_STATE: Record<PayoutState, LedgerState> = { pending: 'pending', paid: 'paid', failed: 'available' };

function toPayout(r: Pick<LedgerEntriesTable, 'id' | 'user_id' | 'amount_micros' | 'state' | 'created_at'>): Payout {
  return { id: r.id, userId: r.user_id, amountMicros: -toSafeInt(r.amount_micros, 'amount_micros'), state: STATE_OF[r.state], createdAt: toSafeInt(r.created_at, 'created_at') };
}

function lockKey(userId: string): number {
  return createHash('sha256').update(userId).digest().readInt32BE(0);
}

/** The user's balance from one aggregate statement (one snapshot on PostgreSQL). */
export async function walletBalance(db: Kysely<Tables>, userId: string): Promise<WalletBalance> {
  const rows = await db
    .selectFrom('ledger_entries')
    .select(['state', 'type', sql<string | number | null>`sum(amount_micros)`.as('total')])
    .where('user_id', '=', userId)
    .groupBy(['state', 'type'])
    .execute();
  let pending = 0;
  let available = 0;
  let paidOut = 0;
  let paidOther = 0;
  let pendingPayout = 0;
  for (const r of rows) {
    const v = toSafeInt(r.total, 'balance');
    const payout = r.type === 'payout';
    if (r.state === 'available') available += v;
    else if (r.state === 'pending') {
      if (payout) pendingPayout -= v;
      else pending += v;
    } else if (payout) paidOut -= v;
    else paidOther += v;
  }
  const availableMicros = available - paidOut;
  const paidMicros = paidOut + paidOther;
  return {
    pendingMicros: pending,
    availableMicros,
    paidMicros,
    pendingPayoutMicros: pendingPayout,
    withdrawableMicros: availableMicros - pendingPayout,
    totalMicros: pending + availableMicros + paidMicros,
  };
}

export function createWithdrawals(opts: WithdrawalsOptions): Withdrawals {
  const { db, audit, minimumPayoutMicros } = opts;
  const events = opts.events ?? NO_EVENTS;
  const payoutEvent = (tx: Kysely<Tables>, p: Payout) =>
    events.write(tx, 'payout.updated', { payoutId: p.id, userId: p.userId, amountMicros: p.amountMicros, state: p.state });
  const now = opts.now ?? Date.now;
  const pg = isPostgres(db);

  async function lockUser(tx: Transaction<Tables>, userId: string): Promise<void> {
    if (pg) await sql`select pg_advisory_xact_lock(${PG_PAYOUT_LOCK_NS}::int4, ${lockKey(userId)}::int4)`.execute(tx);
    // SQLite: a write before any read takes the write lock for the whole transaction.
    else await tx.updateTable('users').set({ deleted_at: sql`deleted_at` }).where('id', '=', userId).execute();
  }

  async function payoutRow(ex: Kysely<Tables>, payoutId: string) {
    return ex.selectFrom('ledger_entries').selectAll().where('id', '=', payoutId).where('type', '=', 'payout').executeTakeFirst();
  }

  /** pending → `to`, once; the reason it cannot be is an error naming the payout's state. */
  async function settle(payoutId: string, to: 'paid' | 'failed', actor: string, reason: string | undefined): Promise<SettleResult> {
    const result = await db.transaction().execute(async (tx) => {
      const moved = await tx
        .updateTable('ledger_entries')
        .set({ state: LEDGER_STATE[to] })
        .where('id', '=', payoutId)
        .where('type', '=', 'payout')
        .where('state', '=', 'pending')
        .returningAll()
        .executeTakeFirst();
      if (!moved) {
        const row = await payoutRow(tx, payoutId);
        if (!row) throw new MonologueError('PAYOUT_NOT_FOUND', `no payout ${payoutId}; "monologue payouts list" shows them`);
        throw new MonologueError('PAYOUT_NOT_PENDING', `payout ${payoutId} is already ${STATE_OF[row.state]}; a payout is marked paid or failed once only`);
      }
      const payout = toPayout(moved);
      await payoutEvent(tx, payout);
      if (to === 'paid') return { payout };
      const back = await createLedger(tx, now).credit({
        userId: payout.userId,
        type: 'adjustment',
        state: 'available',
        amountMicros: payout.amountMicros,
        idemKey: failureIdemKey(payout.id),
        memo: `returns failed payout ${payout.id}${reason ? `: ${reason}` : ''}`,
      });
      return { payout, compensationId: back.entry.id };
    });
    await audit.append({
      actor,
      action: to === 'paid' ? 'payout.paid' : 'payout.failed',
      userId: result.payout.userId,
      detail: `${result.payout.id} ${result.payout.amountMicros} micros${reason ? `: ${reason}` : ''}`,
    });
    return result;
  }

  return {
    balance: (userId) => walletBalance(db, userId),

    async request(userId, idempotencyKey, amountMicros) {
      if (!IDEMPOTENCY_KEY_RE.test(idempotencyKey)) {
        throw new MonologueError('IDEMPOTENCY_KEY_REQUIRED', 'send an Idempotency-Key header of 1-128 visible ASCII characters, unique per withdrawal');
      }
      if (!Number.isSafeInteger(amountMicros) || amountMicros <= 0) {
        throw new MonologueError('PAYOUT_AMOUNT_INVALID', 'amountMicros must be a positive integer number of micro-units');
      }
      const key = payoutIdemKey(userId, idempotencyKey);
      const result = await db.transaction().execute(async (tx): Promise<RequestResult> => {
        await lockUser(tx, userId);
        const ledger = createLedger(tx, now);
        const existing = await ledger.byKey(key);
        if (existing) {
          if (existing.type !== 'payout' || existing.userId !== userId || -existing.amountMicros !== amountMicros) {
            throw new MonologueError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used for a different withdrawal; use a new key for a new request');
          }
          return { payout: { id: existing.id, userId, amountMicros, state: 'pending', createdAt: existing.createdAt }, created: false };
        }
        if (amountMicros < minimumPayoutMicros) {
          throw new MonologueError('PAYOUT_BELOW_MINIMUM', `the smallest withdrawal is ${minimumPayoutMicros} micros`);
        }
        const balance = await walletBalance(tx, userId);
        if (amountMicros > balance.withdrawableMicros) {
          throw new MonologueError('INSUFFICIENT_BALANCE', `at most ${Math.max(0, balance.withdrawableMicros)} micros can be withdrawn now`);
        }
        const { entry, created } = await ledger.credit({ userId, type: 'payout', state: 'pending', amountMicros: -amountMicros, idemKey: key, memo: 'withdrawal requested' });
        const payout: Payout = { id: entry.id, userId, amountMicros, state: 'pending', createdAt: entry.createdAt };
        if (created) await payoutEvent(tx, payout);
        return { payout, created };
      });
      if (result.created) {
        await audit.append({ actor: `user:${userId}`, action: 'payout.request', userId, detail: `${result.payout.id} ${amountMicros} micros` });
      }
      return result;
    },

    async listOwn(userId, { limit, after }) {
      let q = db
        .selectFrom('ledger_entries')
        .select(['id', 'user_id', 'amount_micros', 'state', 'created_at'])
        .where('user_id', '=', userId)
        .where('type', '=', 'payout');
      if (after) q = q.where((eb) => eb.or([eb('created_at', '<', after.at), eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)])]));
      const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
      return rows.map(toPayout);
    },

    async listAll({ state, limit = 1000 } = {}) {
      let q = db.selectFrom('ledger_entries').select(['id', 'user_id', 'amount_micros', 'state', 'created_at']).where('type', '=', 'payout');
      if (state) q = q.where('state', '=', LEDGER_STATE[state]);
      const rows = await q.orderBy('created_at').orderBy('id').limit(limit).execute();
      return rows.map(toPayout);
    },

    async get(payoutId) {
      const row = await payoutRow(db, payoutId);
      return row ? toPayout(row) : undefined;
    },

    markPaid: (payoutId, actor) => settle(payoutId, 'paid', actor, undefined),

    async markFailed(payoutId, actor, reason) {
      if (reason !== undefined && (reason.length > MAX_REASON_LENGTH || /[\x00-\x1f\x7f]/.test(reason))) {
        throw new MonologueError('PAYOUT_REASON_INVALID', `a reason is one line of at most ${MAX_REASON_LENGTH} characters`);
      }
      return settle(payoutId, 'failed', actor, reason || undefined);
    },
  };
}
