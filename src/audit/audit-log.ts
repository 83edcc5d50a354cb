import { sql, type Kysely } from 'kysely';
import type { Tables } from '../db/tables.js';
import { isPostgres } from '../payouts/ledger.js';
import { chainHash, GENESIS_HASH, type ChainedFields } from './chain-hash.js';

/**
 * What is audited (DESIGN §4.4): every access to a recording and every change to a user's data.
 * Actors: `user:<id>`, `admin`, `operator:<login>`, `system:<job>`.
 */
export type AuditAction =
  | 'recording.grant'
  | 'recording.read'
  | 'recording.delete'
  | 'recording.decrypt'
  | 'recording.verify'
  | 'recording.retention-shred'
  | 'user.export'
  | 'user.delete'
  | 'user.consent'
  | 'payout.request'
  | 'payout.paid'
  | 'payout.failed'
  | 'admin.user-create'
  | 'admin.token-issue'
  | 'admin.token-revoke'
  | 'admin.user-lookup'
  | 'keys.rotate'
  | 'keys.retire';

export interface AuditInput {
  actor: string;
  action: AuditAction;
  /** Whose data the event is about: what `GET /v1/me/audit` selects on. */
  userId?: string | null;
  recordingId?: string | null;
  /** Free text for people; never a phone number, token or key. */
  detail?: string | null;
}

export interface AuditEntry extends ChainedFields {
  prevHash: string;
  hash: string;
}

export type AuditVerdict =
  | { ok: true; entries: number }
  | { ok: false; entries: number; brokenAt: number; reason: 'hash-mismatch' | 'link-mismatch' | 'missing-entry' | 'head-mismatch' };

export interface AuditLog {
  /** Appends one entry, serialised against every other appender (other processes included). */
  append(entry: AuditInput): Promise<AuditEntry>;
  /** Entries about one user's data, newest first; `beforeSeq` pages backwards. */
  forUser(userId: string, opts: { limit: number; beforeSeq?: number }): Promise<AuditEntry[]>;
  /** Walks the whole chain from the first entry; names the first broken link. */
  verify(): Promise<AuditVerdict>;
}

// Any fixed 64-bit number: the lock that serialises appends on PostgreSQL, held to the end of the transaction.
const PG_AUDIT_LOCK = 7_364_110_201;

export function createAuditLog(db: Kysely<Tables>, now: () => number = Date.now): AuditLog {
  const pg = isPostgres(db);
  return {
    async append(input) {
      return db.transaction().execute(async (tx) => {
        if (pg) await sql`select pg_advisory_xact_lock(${PG_AUDIT_LOCK})`.execute(tx);
        // A write first: on SQLite it takes the database write lock before the head is read.
        await tx.updateTable('audit_head').set({ seq: sql`seq` }).where('id', '=', 1).execute();
        const head = await tx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
        const fields: ChainedFields = {
          seq: Number(head.seq) + 1,
          at: now(),
          actor: input.actor,
          action: input.action,
          userId: input.userId ?? null,
          recordingId: input.recordingId ?? null,
          detail: input.detail ?? null,
        };
        const entry: AuditEntry = { ...fields, prevHash: head.hash, hash: chainHash(head.hash, fields) };
        await tx
          .insertInto('audit_log')
          .values({ seq: entry.seq, at: entry.at, actor: entry.actor, action: entry.action, user_id: entry.userId, recording_id: entry.recordingId, detail: entry.detail, prev_hash: entry.prevHash, hash: entry.hash })
          .execute();
        await tx.updateTable('audit_head').set({ seq: entry.seq, hash: entry.hash }).where('id', '=', 1).execute();
        return entry;
      });
    },
    async forUser(userId, { limit, beforeSeq }) {
      let q = db.selectFrom('audit_log').selectAll().where('user_id', '=', userId);
      if (beforeSeq !== undefined) q = q.where('seq', '<', beforeSeq);
      return (await q.orderBy('seq', 'desc').limit(limit).execute()).map(toEntry);
    },
    async verify() {
      let prev = GENESIS_HASH;
      let expected = 1;
      let entries = 0;
      // Pages of 1,000 by seq: a long chain is never held in memory at once.
      for (;;) {
        const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>=', expected).orderBy('seq').limit(1000).execute();
        if (rows.length === 0) break;
        for (const row of rows) {
          const e = toEntry(row);
          if (e.seq !== expected) return { ok: false, entries, brokenAt: expected, reason: 'missing-entry' };
          if (e.prevHash !== prev) return { ok: false, entries, brokenAt: e.seq, reason: 'link-mismatch' };
          if (chainHash(prev, e) !== e.hash) return { ok: false, entries, brokenAt: e.seq, reason: 'hash-mismatch' };
          prev = e.hash;
          expected++;
          entries++;
        }
      }
      const head = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
      if (!head || Number(head.seq) !== entries || head.hash !== prev) {
        return { ok: false, entries, brokenAt: entries + 1, reason: 'head-mismatch' };
      }
      return { ok: true, entries };
    },
  };
}

function toEntry(r: Tables['audit_log']): AuditEntry {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    actor: r.actor,
    action: r.action,
    userId: r.user_id,
    recordingId: r.recording_id,
    detail: r.detail,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
