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

export interface Tokens {
  issue(userId: string, ttlMs: number): Promise<IssuedToken>;
  /** The user id behind a live token, or undefined for unknown, expired or revoked ones. */
  verify(token: string): Promise<string | undefined>;
  revoke(sessionId: string): Promise<boolean>;
}

const TOKEN_PREFIX = 'mlt_';

export function createTokens(db: Db, now: () => number = Date.now): Tokens {
  return {
    async issue(userId, ttlMs) {
      const user = await db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
      if (!user) throw new MonologueError('USER_NOT_FOUND', `no user with id ${userId}`);
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const issued = { sessionId: newId('ses'), userId, token, expiresAt: now() + ttlMs };
      await db
        .insertInto('sessions')
        .values({ id: issued.sessionId, user_id: userId, token_hash: hashToken(token), created_at: now(), expires_at: issued.expiresAt, revoked_at: null })
        .execute();
      return issued;
    },
    async verify(token) {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 128) return undefined;
      const row = await db
        .selectFrom('sessions')
        .select(['user_id', 'expires_at', 'revoked_at'])
        .where('token_hash', '=', hashToken(token))
        .executeTakeFirst();
      if (!row || row.revoked_at !== null || Number(row.expires_at) <= now()) return undefined;
      return row.user_id;
    },
    async revoke(sessionId) {
      const res = await db.updateTable('sessions').set({ revoked_at: now() }).where('id', '=', sessionId).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },
  };
}

/** Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
