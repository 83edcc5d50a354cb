import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/database.js';
import { newId } from '../ids.js';
import { MonologueError } from '../errors.js';

export interface IssuedToken {
  sessionId: string;
  userId: string;
  /** Shown once; only its hash is stored. */
  token: string;
  expiresAt: number;
}

/** A live token's session: what a connection authenticated by it must be closed with. */
export interface Session {
  sessionId: string;
  userId: string;
  expiresAt: number;
}

/** Why a session no longer holds. A session that is gone (its user deleted) reads as revoked. */
export type SessionEnd = 'revoked' | 'expired';

export interface Tokens {
  issue(userId: string, ttlMs: number): Promise<IssuedToken>;
  /** The session behind a live token, or undefined for unknown, expired or revoked ones. */
  session(token: string): Promise<Session | undefined>;
  /** The user id behind a live token, or undefined for unknown, expired or revoked ones. */
  verify(token: string): Promise<string | undefined>;
  revoke(sessionId: string): Promise<boolean>;
  /** Of these sessions, the ones that no longer hold now, and why: one primary-key query per 500 ids. */
  ended(sessionIds: readonly string[]): Promise<Map<string, SessionEnd>>;
}

const TOKEN_PREFIX = 'mlt_';

export function createTokens(db: Db, now: () => number = Date.now): Tokens {
  const session = async (token: string): Promise<Session | undefined> => {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 128) return undefined;
    const row = await db
      .selectFrom('sessions')
      .select(['id', 'user_id', 'expires_at', 'revoked_at'])
      .where('token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row || row.revoked_at !== null || Number(row.expires_at) <= now()) return undefined;
    return { sessionId: row.id, userId: row.user_id, expiresAt: Number(row.expires_at) };
  };
  return {
    async issue(userId, ttlMs) {
      // An erased account gets no new token (src/accounts/erase.ts).
      const user = await db.selectFrom('users').select('id').where('id', '=', userId).where('deleted_at', 'is', null).executeTakeFirst();
      if (!user) throw new MonologueError('USER_NOT_FOUND', `no user with id ${userId}`);
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const issued = { sessionId: newId('ses'), userId, token, expiresAt: now() + ttlMs };
      await db
        .insertInto('sessions')
        .values({ id: issued.sessionId, user_id: userId, token_hash: hashToken(token), created_at: now(), expires_at: issued.expiresAt, revoked_at: null })
        .execute();
      return issued;
    },
    session,
    async verify(token) {
      return (await session(token))?.userId;
    },
    async revoke(sessionId) {
      const res = await db.updateTable('sessions').set({ revoked_at: now() }).where('id', '=', sessionId).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },
    async ended(sessionIds) {
      const out = new Map<string, SessionEnd>();
      for (let i = 0; i < sessionIds.length; i += 500) {
        const batch = sessionIds.slice(i, i + 500);
        const rows = await db.selectFrom('sessions').select(['id', 'expires_at', 'revoked_at']).where('id', 'in', batch).execute();
        const at = now();
        const found = new Map(rows.map((r) => [r.id, r]));
        for (const id of batch) {
          const r = found.get(id);
          if (!r || r.revoked_at !== null) out.set(id, 'revoked');
          else if (Number(r.expires_at) <= at) out.set(id, 'expired');
        }
      }
      return out;
    },
  };
}

/** Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
