import { sql, type Kysely } from 'kysely';
import type { SettlementState, Tables } from '../db/tables.js';
import { toSafeInt } from './ledger.js';
import { utcDay } from './rules.js';
import { walletBalance, type WalletBalance } from './withdrawals.js';

/**
 * The user-facing read model of earnings. Every query filters by the owner in SQL (DESIGN §4 item 3).
 * Days are UTC calendar days of the calls' answer times.
 */

export interface DailyTotal {
  day: string;
  /** Credited or released after review. */
  creditedMicros: number;
  /** Waiting for review. */
  heldMicros: number;
  /** Settled calls that day, whatever their outcome. */
  calls: number;
}

export interface CallEarningRow {
  callId: string;
  day: string;
  billableS: number;
  talkS: number;
  amountMicros: number;
  state: SettlementState;
  flags: string[];
}

export interface Earnings {
  /** The last `days` UTC days up to today (default 30), newest first; days without calls are left out. */
  dailyTotals(userId: string, days?: number): Promise<DailyTotal[]>;
  /** The most recent settled calls (default 50, at most 500), newest first. */
  perCall(userId: string, limit?: number): Promise<CallEarningRow[]>;
}

const DAY_MS = 86_400_000;

function clampInt(v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined || !Number.isFinite(v)) return dflt;
  return Math.min(max, Math.max(min, Math.floor(v)));
}

export function createEarnings(db: Kysely<Tables>, opts: { now?: () => number } = {}): Earnings {
  const now = opts.now ?? Date.now;
  return {
    async dailyTotals(userId, days) {
      const n = clampInt(days, 30, 1, 366);
      const from = utcDay(now() - (n - 1) * DAY_MS);
      const rows = await db
        .selectFrom('settlements')
        .select([
          'day',
          sql<string | number | null>`sum(case when state in ('credited', 'released') then amount_micros else 0 end)`.as('credited'),
          sql<string | number | null>`sum(case when state = 'held' then amount_micros else 0 end)`.as('held'),
          sql<string | number>`count(*)`.as('calls'),
        ])
        .where('user_id', '=', userId)
        .where('day', '>=', from)
        .groupBy('day')
        .orderBy('day', 'desc')
        .execute();
      return rows.map((r) => ({
        day: r.day,
        creditedMicros: toSafeInt(r.credited),
        heldMicros: toSafeInt(r.held),
        calls: toSafeInt(r.calls),
      }));
    },

    async perCall(userId, limit) {
      const n = clampInt(limit, 50, 1, 500);
      const rows = await db
        .selectFrom('settlements')
        .select(['call_id', 'day', 'billable_s', 'talk_s', 'amount_micros', 'state', 'flags'])
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('call_id', 'desc')
        .limit(n)
        .execute();
      return rows.map((r) => {
        let flags: string[] = [];
        try {
          const v: unknown = JSON.parse(r.flags);
          if (Array.isArray(v)) flags = v.filter((x): x is string => typeof x === 'string');
        } catch {
          flags = [];
        }
        return {
          callId: r.call_id,
          day: r.day,
          billableS: toSafeInt(r.billable_s),
          talkS: toSafeInt(r.talk_s),
          amountMicros: toSafeInt(r.amount_micros),
          state: r.state,
          flags,
        };
      });
    },
  };
}

/** What `GET /v1/earnings` answers and `monologue earnings` prints: one user's balance, days and calls. */
export interface EarningsReport {
  balance: WalletBalance;
  days: DailyTotal[];
  calls: CallEarningRow[];
}

export async function earningsReport(db: Kysely<Tables>, userId: string, opts: { now?: () => number; days?: number; calls?: number } = {}): Promise<EarningsReport> {
  const earnings = createEarnings(db, { now: opts.now });
  return { balance: await walletBalance(db, userId), days: await earnings.dailyTotals(userId, opts.days), calls: await earnings.perCall(userId, opts.calls) };
}
