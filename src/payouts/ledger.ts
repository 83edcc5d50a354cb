import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { LedgerEntriesTable, LedgerEntryType, LedgerState, Tables } from '../db/tables.js';
import { MonologueError } from '../errors.js';
import { newId } from '../ids.js';

/**
 * The append-only money ledger. Amounts are integer micro-units and never change once written; only
 * `state` moves forward. Balances are sums of entries, never stored. Every entry has a unique
 * `idem_key`, so a retried or raced credit is written at most once (DESIGN §4 item 6).
 */

export interface LedgerEntry {
  id: string;
  userId: string;
  callId: string | null;
  type: LedgerEntryType;
  state: LedgerState;
  amountMicros: number;
  idemKey: string;
  memo: string | null;
  createdAt: number;
}

export interface CreditInput {
  userId: string;
  /** Required for `call_credit` and `reversal`; optional for `adjustment` and `payout`. */
  callId?: string | null;
  type: LedgerEntryType;
  state: LedgerState;
  /** A safe integer (negative for reversals and payouts). */
  amountMicros: number;
  memo?: string | null;
  /**
   * The idempotency key. Call entries (`call_credit`, `reversal`) always use `call:<callId>:<type>`
   * (a different key given here is refused); `adjustment` and `payout` need one from the caller.
   */
  idemKey?: string;
}

export interface CreditResult {
  entry: LedgerEntry;
  /** False: an entry with this key already existed and is returned unchanged. */
  created: boolean;
}

export interface Balance {
  pendingMicros: number;
  availableMicros: number;
  paidMicros: number;
  totalMicros: number;
}

export interface Ledger {
  credit(input: CreditInput): Promise<CreditResult>;
  /** Only pending → available and available → paid; false when the entry is not in `from`. */
  setState(entryId: string, from: LedgerState, to: LedgerState): Promise<boolean>;
  /** Review hold: available → pending (an entry under review cannot be withdrawn); false otherwise. */
  hold(entryId: string): Promise<boolean>;
  byKey(idemKey: string): Promise<LedgerEntry | undefined>;
  balance(userId: string): Promise<Balance>;
  entries(userId: string): Promise<LedgerEntry[]>;
  /** The same ledger bound to a transaction (or another executor). */
  with(db: Kysely<Tables>): Ledger;
}

const ALLOWED: ReadonlyArray<readonly [LedgerState, LedgerState]> = [
  ['pending', 'available'],
  ['available', 'paid'],
];

export function callEntryKey(callId: string, type: LedgerEntryType): string {
  return `call:${callId}:${type}`;
}

/** An integer from a database aggregate: SQLite gives numbers, PostgreSQL `sum(bigint)` gives a numeric string. */
export function toSafeInt(v: unknown, what = 'amount'): number {
  if (v === null || v === undefined) return 0;
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new MonologueError('LEDGER_NOT_INTEGER', `${what} is not a safe integer: ${String(v)}`);
  }
  return n;
}

export function isPostgres(db: Kysely<Tables>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

function toEntry(r: LedgerEntriesTable): LedgerEntry {
  return {
    id: r.id,
    userId: r.user_id,
    callId: r.call_id,
    type: r.type,
    state: r.state,
    amountMicros: toSafeInt(r.amount_micros, 'amount_micros'),
    idemKey: r.idem_key,
    memo: r.memo,
    createdAt: toSafeInt(r.created_at, 'created_at'),
  };
}

export function createLedger(db: Kysely<Tables>, now: () => number = Date.now): Ledger {
  const byKey = async (idemKey: string): Promise<LedgerEntry | undefined> => {
    const row = await db.selectFrom('ledger_entries').selectAll().where('idem_key', '=', idemKey).executeTakeFirst();
    return row ? toEntry(row) : undefined;
  };

  return {
    async credit(input) {
      if (!Number.isSafeInteger(input.amountMicros)) {
        throw new MonologueError('LEDGER_AMOUNT_INVALID', `amount must be an integer number of micro-units, got ${String(input.amountMicros)}`);
      }
      const callEntry = input.type === 'call_credit' || input.type === 'reversal';
      let key: string;
      if (callEntry) {
        if (!input.callId) throw new MonologueError('LEDGER_KEY_MISSING', `a ${input.type} entry needs a call id`);
        key = callEntryKey(input.callId, input.type);
        if (input.idemKey !== undefined && input.idemKey !== key) {
          throw new MonologueError('LEDGER_KEY_INVALID', `a ${input.type} entry's key is always ${key}`);
        }
      } else {
        if (!input.idemKey) throw new MonologueError('LEDGER_KEY_MISSING', `an ${input.type} entry needs an idempotency key`);
        key = input.idemKey;
      }
      // INSERT … ON CONFLICT DO NOTHING, then read: a concurrent duplicate waits for the first
      // writer's unique-index entry and inserts nothing; it can never write a second row.
      const inserted = await db
        .insertInto('ledger_entries')
        .values({
          id: newId('led'),
          user_id: input.userId,
          call_id: input.callId ?? null,
          type: input.type,
          state: input.state,
          amount_micros: input.amountMicros,
          idem_key: key,
          memo: input.memo ?? null,
          created_at: now(),
        })
        .onConflict((oc) => oc.column('idem_key').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted) return { entry: toEntry(inserted), created: true };
      const existing = await byKey(key);
      if (!existing) throw new MonologueError('LEDGER_CONFLICT', `ledger entry ${key} conflicted but cannot be read`);
      return { entry: existing, created: false };
    },

    async setState(entryId, from, to) {
      if (!ALLOWED.some(([f, t]) => f === from && t === to)) {
        throw new MonologueError('LEDGER_TRANSITION_INVALID', `a ledger entry cannot move ${from} → ${to}`);
      }
      const r = await db.updateTable('ledger_entries').set({ state: to }).where('id', '=', entryId).where('state', '=', from).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async hold(entryId) {
      const r = await db
        .updateTable('ledger_entries')
        .set({ state: 'pending' })
        .where('id', '=', entryId)
        .where('state', '=', 'available')
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    byKey,

    async balance(userId) {
      const rows = await db
        .selectFrom('ledger_entries')
        .select(['state', sql<string | number | null>`sum(amount_micros)`.as('total')])
        .where('user_id', '=', userId)
        .groupBy('state')
        .execute();
      const b: Balance = { pendingMicros: 0, availableMicros: 0, paidMicros: 0, totalMicros: 0 };
      for (const r of rows) {
        const v = toSafeInt(r.total, 'balance');
        if (r.state === 'pending') b.pendingMicros = v;
        else if (r.state === 'available') b.availableMicros = v;
        else if (r.state === 'paid') b.paidMicros = v;
      }
      b.totalMicros = b.pendingMicros + b.availableMicros + b.paidMicros;
      return b;
    },

    async entries(userId) {
      const rows = await db
        .selectFrom('ledger_entries')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toEntry);
    },

    with(other) {
      return createLedger(other, now);
    },
  };
}
