import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { toSafeInt } from '../payouts/ledger.js';
import type { PhoneVault } from '../crypto/phone-vault.js';
import type { EndReason } from './ports.js';

export type Direction = 'outbound' | 'inbound';

/** A call attempt as stored: the counterpart only as keyed hash and ciphertext. */
export interface CallRecord {
  id: string;
  userId: string;
  direction: Direction;
  counterpart: string;
  sipCallId: string | null;
  createdAt: number;
  ringingAt: number | null;
  answeredAt: number | null;
  endedAt: number | null;
  endReason: EndReason | null;
  sipStatus: number | null;
  recordingNote: string | null;
}

export interface CallRecordPatch {
  sipCallId?: string;
  ringingAt?: number;
  answeredAt?: number;
  endedAt?: number;
  endReason?: EndReason;
  sipStatus?: number;
  recordingNote?: string;
}

export interface CallRecords {
  create(input: { id: string; userId: string; direction: Direction; counterpart: string; createdAt: number }): Promise<void>;
  update(id: string, patch: CallRecordPatch): Promise<void>;
  /** Owner-scoped read: another user's id reads as missing. */
  get(userId: string, id: string): Promise<CallRecord | undefined>;
  /**
   * What the daily caps count, summed in the database rather than read row by row: the user's outbound
   * attempts created at or after `since`, and their answered time. An attempt still open (live here or on
   * another node, or left open by a crash, which would otherwise count all day) counts up to `now`, but not
   * past `maxCallMs` after its answer. `except`: calls left out (the live ones a plan counts itself).
   */
  outboundTally(userId: string, since: number, opts: { now: number; maxCallMs: number; except?: readonly string[] }): Promise<OutboundTally>;
}

/** The user's outbound attempts over a period: how many, and how long they were answered in all. */
export interface OutboundTally {
  attempts: number;
  answeredMs: number;
}

export function createCallRecords(db: Db, vault: PhoneVault): CallRecords {
  return {
    async create(c) {
      await db
        .insertInto('calls')
        .values({
          id: c.id,
          user_id: c.userId,
          direction: c.direction,
          counterpart_hash: vault.hash(c.counterpart),
          counterpart_cipher: vault.seal(c.counterpart, c.id),
          sip_call_id: null,
          created_at: c.createdAt,
          ringing_at: null,
          answered_at: null,
          ended_at: null,
          end_reason: null,
          sip_status: null,
          recording_note: null,
        })
        .execute();
    },
    async update(id, p) {
      const set = {
        ...(p.sipCallId !== undefined && { sip_call_id: p.sipCallId }),
        ...(p.ringingAt !== undefined && { ringing_at: p.ringingAt }),
        ...(p.answeredAt !== undefined && { answered_at: p.answeredAt }),
        ...(p.endedAt !== undefined && { ended_at: p.endedAt }),
        ...(p.endReason !== undefined && { end_reason: p.endReason }),
        ...(p.sipStatus !== undefined && { sip_status: p.sipStatus }),
        ...(p.recordingNote !== undefined && { recording_note: p.recordingNote }),
      };
      if (Object.keys(set).length === 0) return;
      await db.updateTable('calls').set(set).where('id', '=', id).execute();
    },
    async outboundTally(userId, since, { now, maxCallMs, except = [] }) {
      // Served by the (user_id, created_at) index. Plain CASE arithmetic: the same SQL on SQLite and PostgreSQL.
      const end = sql`case when ended_at is not null then ended_at when answered_at + ${maxCallMs} < ${now} then answered_at + ${maxCallMs} else ${now} end`;
      let q = db
        .selectFrom('calls')
        .select([
          sql<number | string>`count(*)`.as('attempts'),
          sql<number | string | null>`sum(case when answered_at is null then 0 when ${end} > answered_at then ${end} - answered_at else 0 end)`.as('answered_ms'),
        ])
        .where('user_id', '=', userId)
        .where('created_at', '>=', since)
        .where('direction', '=', 'outbound');
      if (except.length > 0) q = q.where('id', 'not in', except);
      const row = await q.executeTakeFirstOrThrow();
      // PostgreSQL sums bigint as numeric, which arrives as a string.
      return { attempts: toSafeInt(row.attempts, 'attempts'), answeredMs: toSafeInt(row.answered_ms, 'answered_ms') };
    },
    async get(userId, id) {
      const r = await db.selectFrom('calls').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
      if (!r) return undefined;
      const num = (v: number | null) => (v === null ? null : Number(v));
      return {
        id: r.id,
        userId: r.user_id,
        direction: r.direction,
        counterpart: vault.open(r.counterpart_cipher, r.id),
        sipCallId: r.sip_call_id,
        createdAt: Number(r.created_at),
        ringingAt: num(r.ringing_at),
        answeredAt: num(r.answered_at),
        endedAt: num(r.ended_at),
        endReason: r.end_reason as EndReason | null,
        sipStatus: num(r.sip_status),
        recordingNote: r.recording_note,
      };
    },
  };
}
