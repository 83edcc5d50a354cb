import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { AuditLog } from '../audit/audit-log.js';
import { newId } from '../ids.js';

export type GrantPurpose = 'play' | 'download';

export interface IssuedGrant {
  grantId: string;
  /** Goes into the media URL; shown once, stored only as its hash. */
  token: string;
  expiresAt: number;
}

/** A grant that just took one request: what the media route may serve, and to whom it is bound. */
export interface GrantUse {
  grantId: string;
  userId: string;
  recordingId: string;
  purpose: GrantPurpose;
}

/**
 * Short-lived rights to read one recording (DESIGN §4.4), bound to (user, recording, purpose). Each
 * served request is counted against the grant; when a grant can serve no more (expired, used up, or its
 * recording deleted) it is closed and its reads become one `recording.read` audit entry with the bytes
 * served.
 */
export interface Grants {
  /** The caller has already checked that `userId` owns a readable `recordingId`. Audited. */
  issue(userId: string, recordingId: string, purpose: GrantPurpose, actor?: string): Promise<IssuedGrant>;
  /** Takes one request from a live grant, atomically; undefined for unknown, expired, used-up or closed grants. */
  use(token: string): Promise<GrantUse | undefined>;
  /** Bytes one request actually sent. */
  served(grantId: string, bytes: number): Promise<void>;
  /** Close every grant of a recording now (it was deleted). */
  closeForRecording(recordingId: string): Promise<void>;
  /** Close grants that expired or are used up, auditing their reads; returns how many were closed. */
  sweep(): Promise<number>;
}

export interface GrantsOptions {
  ttlMs: number;
  maxRequests: number;
  now: () => number;
}

const TOKEN_PREFIX = 'mlg_';

export function createGrants(db: Db, audit: AuditLog, opts: GrantsOptions): Grants {
  const close = async (where: { recordingId?: string; due?: number }): Promise<number> => {
    let q = db.selectFrom('grants').selectAll().where('closed_at', 'is', null);
    if (where.recordingId !== undefined) q = q.where('recording_id', '=', where.recordingId);
    if (where.due !== undefined) {
      const due = where.due;
      q = q.where((eb) => eb.or([eb('expires_at', '<=', due), eb('requests', '>=', opts.maxRequests)]));
    }
    let closed = 0;
    for (const g of await q.execute()) {
      // Only the closer that flips closed_at audits, so two sweepers never write the entry twice.
      const res = await db.updateTable('grants').set({ closed_at: opts.now() }).where('id', '=', g.id).where('closed_at', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) continue;
      closed++;
      if (Number(g.requests) > 0) {
        await audit.append({
          actor: `user:${g.user_id}`,
          action: 'recording.read',
          userId: g.user_id,
          recordingId: g.recording_id,
          detail: `grant ${g.id} (${g.purpose}): ${Number(g.requests)} requests, ${Number(g.bytes_served)} bytes`,
        });
      }
    }
    return closed;
  };
  return {
    async issue(userId, recordingId, purpose, actor = `user:${userId}`) {
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const grant: IssuedGrant = { grantId: newId('grt'), token, expiresAt: opts.now() + opts.ttlMs };
      await db
        .insertInto('grants')
        .values({ id: grant.grantId, token_hash: hashToken(token), user_id: userId, recording_id: recordingId, purpose, created_at: opts.now(), expires_at: grant.expiresAt, requests: 0, bytes_served: 0, closed_at: null })
        .execute();
      await audit.append({ actor, action: 'recording.grant', userId, recordingId, detail: `grant ${grant.grantId} (${purpose}) until ${new Date(grant.expiresAt).toISOString()}` });
      return grant;
    },
    async use(token) {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 100) return undefined;
      const row = await db
        .updateTable('grants')
        .set({ requests: sql`requests + 1` })
        .where('token_hash', '=', hashToken(token))
        .where('closed_at', 'is', null)
        .where('expires_at', '>', opts.now())
        .where('requests', '<', opts.maxRequests)
        .returning(['id', 'user_id', 'recording_id', 'purpose'])
        .executeTakeFirst();
      return row ? { grantId: row.id, userId: row.user_id, recordingId: row.recording_id, purpose: row.purpose } : undefined;
    },
    async served(grantId, bytes) {
      if (bytes <= 0) return;
      await db.updateTable('grants').set({ bytes_served: sql`bytes_served + ${bytes}` }).where('id', '=', grantId).execute();
    },
    async closeForRecording(recordingId) {
      await close({ recordingId });
    },
    sweep: () => close({ due: opts.now() }),
  };
}

/** 256 random bits: a plain SHA-256 is enough to store it, there is nothing to brute-force. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
