import type { Db } from '../db/database.js';
import type { PhoneVault } from '../crypto/phone-vault.js';
import type { SettlementState } from '../db/tables.js';
import { toSafeInt } from '../payouts/ledger.js';
import type { Direction } from './records.js';

/**
 * The user's call log as the owner API shows it (GET /v1/calls, the export): one read model joining the
 * call record, its recording, its settlement and its ledger credit. Every query filters by the owner.
 */

export interface CallEarning {
  amountMicros: number;
  /** The settlement's state (`credited`, `held`, `released`, `rejected`, `unpaid`), as GET /v1/earnings says it. */
  state: SettlementState;
}

export interface CallHistoryItem {
  id: string;
  direction: Direction;
  /** The other party's number (E.164, or `anonymous`), decrypted: it is the owner's own call log. */
  counterpart: string;
  /** Server clock, epoch ms. */
  createdAt: number;
  ringingAt: number | null;
  answeredAt: number | null;
  endedAt: number | null;
  /** Settled: the settlement's; else answer → hangup; 0 for a call never answered; null while live. */
  billableSeconds: number | null;
  endReason: string | null;
  /** Why the call was not (or not wholly) recorded: `no-consent`, `consent-revoked`, `consent-outdated`, `policy`, `no-key`, `failed`. */
  recordingNote: string | null;
  /** The call's recording unless there is none or it was deleted. */
  recordingId: string | null;
  earning: CallEarning | null;
}

/** Keyset position, newest first: the creation time and id of the last item served. */
export interface HistoryPosition {
  at: number;
  id: string;
}

export interface CallHistory {
  /** Up to `limit` calls after `after` (newest first), and the position to go on from if there are more. */
  page(userId: string, opts: { limit: number; after?: HistoryPosition | undefined }): Promise<{ items: CallHistoryItem[]; next: HistoryPosition | undefined }>;
  get(userId: string, callId: string): Promise<CallHistoryItem | undefined>;
  /** Every call of the user, newest first, read in pages (the export). */
  all(userId: string): Promise<CallHistoryItem[]>;
}

type CallRow = {
  id: string;
  direction: Direction;
  counterpart_cipher: string;
  created_at: number;
  ringing_at: number | null;
  answered_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
  recording_note: string | null;
};

const CALL_COLUMNS = ['id', 'direction', 'counterpart_cipher', 'created_at', 'ringing_at', 'answered_at', 'ended_at', 'end_reason', 'recording_note'] as const;

export function createCallHistory(db: Db, vault: PhoneVault): CallHistory {
  const num = (v: number | null) => (v === null ? null : Number(v));

  /** The recordings, settlements and credits of these calls, all of the owner's, in three queries. */
  const assemble = async (userId: string, rows: CallRow[]): Promise<CallHistoryItem[]> => {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [recordings, settlements, entries] = await Promise.all([
      db.selectFrom('recordings').select(['id', 'call_id']).where('user_id', '=', userId).where('call_id', 'in', ids).where('state', '<>', 'deleted').where('deleted_at', 'is', null).orderBy('created_at').execute(),
      db.selectFrom('settlements').select(['call_id', 'billable_s', 'amount_micros', 'state']).where('user_id', '=', userId).where('call_id', 'in', ids).execute(),
      db.selectFrom('ledger_entries').select(['call_id', 'type', 'state', 'amount_micros']).where('user_id', '=', userId).where('call_id', 'in', ids).where('type', 'in', ['call_credit', 'reversal']).execute(),
    ]);
    const recordingOf = new Map<string, string>();
    for (const r of recordings) if (!recordingOf.has(r.call_id)) recordingOf.set(r.call_id, r.id);
    const settlementOf = new Map(settlements.map((s) => [s.call_id, s]));
    const creditsOf = new Map<string, typeof entries>();
    for (const e of entries) if (e.call_id !== null) creditsOf.set(e.call_id, [...(creditsOf.get(e.call_id) ?? []), e]);

    return rows.map((r): CallHistoryItem => {
      const answeredAt = num(r.answered_at);
      const endedAt = num(r.ended_at);
      const settled = settlementOf.get(r.id);
      let billableSeconds: number | null = null;
      if (settled) billableSeconds = toSafeInt(settled.billable_s, 'billable_s');
      else if (answeredAt !== null && endedAt !== null) billableSeconds = Math.max(0, Math.floor((endedAt - answeredAt) / 1000));
      else if (endedAt !== null) billableSeconds = 0;
      return {
        id: r.id,
        direction: r.direction,
        counterpart: vault.open(r.counterpart_cipher, r.id),
        createdAt: Number(r.created_at),
        ringingAt: num(r.ringing_at),
        answeredAt,
        endedAt,
        billableSeconds,
        endReason: r.end_reason,
        recordingNote: r.recording_note,
        recordingId: recordingOf.get(r.id) ?? null,
        earning: earning(settled, creditsOf.get(r.id)),
      };
    });
  };

  const page: CallHistory['page'] = async (userId, { limit, after }) => {
    let q = db.selectFrom('calls').select(CALL_COLUMNS).where('user_id', '=', userId);
    if (after) q = q.where((eb) => eb.or([eb('created_at', '<', after.at), eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)])]));
    // One more than asked: whether there is a next page, without a count.
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const more = rows.length > limit;
    const items = await assemble(userId, rows.slice(0, limit));
    const last = items.at(-1);
    return { items, next: more && last ? { at: last.createdAt, id: last.id } : undefined };
  };

  return {
    page,
    async get(userId, callId) {
      const row = await db.selectFrom('calls').select(CALL_COLUMNS).where('id', '=', callId).where('user_id', '=', userId).executeTakeFirst();
      return row ? (await assemble(userId, [row]))[0] : undefined;
    },
    async all(userId) {
      const out: CallHistoryItem[] = [];
      let after: HistoryPosition | undefined;
      for (;;) {
        const p = await page(userId, { limit: 500, after });
        out.push(...p.items);
        if (!p.next) return out;
        after = p.next;
      }
    },
  };
}

/**
 * What the call earned. A settled call says it in its settlement; a credit without one (written by
 * other means than settling, e.g. an import) reads as `held` while pending, `rejected` once reversed,
 * and `credited` otherwise; its amount is then the net of the credit and any reversal.
 */
function earning(
  settled: { amount_micros: number; state: SettlementState } | undefined,
  entries: Array<{ type: string; state: string; amount_micros: number }> | undefined,
): CallEarning | null {
  if (settled) return { amountMicros: toSafeInt(settled.amount_micros, 'amount_micros'), state: settled.state };
  const credit = entries?.find((e) => e.type === 'call_credit');
  if (!credit) return null;
  const net = entries!.reduce((sum, e) => sum + toSafeInt(e.amount_micros, 'amount_micros'), 0);
  const reversed = entries!.some((e) => e.type === 'reversal');
  return { amountMicros: net, state: reversed ? 'rejected' : credit.state === 'pending' ? 'held' : 'credited' };
}
