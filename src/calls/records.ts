import { sql, type UpdateResult } from 'kysely';
import type { Db } from '../db/database.js';
import type { CallsTable } from '../db/tables.js';
import { prepare, type Prepared, type SlotOf } from '../db/prepared.js';
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

/** The columns a record update may set, and the row's id. */
type CallPatchRow = Partial<CallsTable> & { id: string };

export function createCallRecords(db: Db, vault: PhoneVault): CallRecords {
  // The statements every call setup runs, built and compiled once (see db/prepared.ts).
  const insertCall = prepare(db, (slot: SlotOf<Pick<CallsTable, 'id' | 'user_id' | 'direction' | 'counterpart_hash' | 'counterpart_cipher' | 'created_at'>>) =>
    db.insertInto('calls').values({
      id: slot('id'),
      user_id: slot('user_id'),
      direction: slot('direction'),
      counterpart_hash: slot('counterpart_hash'),
      counterpart_cipher: slot('counterpart_cipher'),
      created_at: slot('created_at'),
    }),
  );
  const updates = new Map<string, Prepared<CallPatchRow, UpdateResult>>();
  const tally = prepare(db, (slot: SlotOf<{ userId: string; since: number; now: number; maxCallMs: number }>) =>
    outboundTallyQuery(db, slot('userId'), slot('since'), { now: slot('now'), maxCallMs: slot('maxCallMs') }),
  );
  return {
    async create(c) {
      await insertCall.execute({
        id: c.id,
        user_id: c.userId,
        direction: c.direction,
        counterpart_hash: vault.hash(c.counterpart),
        counterpart_cipher: vault.seal(c.counterpart, c.id),
        created_at: c.createdAt,
      });
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
      const columns = Object.keys(set) as Array<keyof typeof set>;
      if (columns.length === 0) return;
      // One prepared statement per set of columns: a call's updates come in a few shapes.
      const shape = columns.join(',');
      let update = updates.get(shape);
      if (!update) {
        update = prepare(db, (slot: SlotOf<CallPatchRow>) =>
          db.updateTable('calls').set(Object.fromEntries(columns.map((c) => [c, slot(c)]))).where('id', '=', slot('id')),
        );
        updates.set(shape, update);
      }
      await update.execute({ ...set, id });
    },
    async outboundTally(userId, since, opts) {
      const row = opts.except?.length
        ? await outboundTallyQuery(db, userId, since, opts).executeTakeFirstOrThrow()
        : (await tally.execute({ userId, since, now: opts.now, maxCallMs: opts.maxCallMs })).rows[0];
      if (!row) throw new Error('the daily tally returned no row');
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

/**
 * The daily caps' sum (see `CallRecords.outboundTally`) as a query, so a test can ask each database how it runs
 * it: every column it reads is in the `calls_user_day` index (migration 0008), an index-only scan.
 */
export function outboundTallyQuery(db: Db, userId: string, since: number, { now, maxCallMs, except = [] }: { now: number; maxCallMs: number; except?: readonly string[] }) {
  // Served by the (user_id, created_at, …) index. Plain CASE arithmetic: the same SQL on SQLite and PostgreSQL.
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
  return q;
}
