import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { MonologueError } from '../errors.js';
import { newId } from '../ids.js';

/**
 * Recording consent and its history. The user's row holds the current state (what the recording hook
 * reads at answer time); `consent_events` keeps every grant and withdrawal for the user's export.
 */

/** One grant (a policy version) or withdrawal (null) of recording consent. */
export interface ConsentEvent {
  id: string;
  version: string | null;
  at: number;
}

/**
 * Set the user's consent to `version`, or withdraw it with null: the row and a history entry in one
 * transaction. Repeating the current state writes nothing and answers false. `at` is the server clock;
 * one user's events are strictly ordered in time (a change in the same millisecond as the last one is
 * stamped a millisecond later). Throws USER_NOT_FOUND for an unknown or deleted user.
 */
export async function changeConsent(db: Db, userId: string, version: string | null, at: number): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    // A write first: it takes the row lock on PostgreSQL and the write lock on SQLite (the CLI is another
    // process) before the current state is read, so concurrent changes of one user are ordered.
    const locked = await tx.updateTable('users').set({ consent_version: sql`consent_version` }).where('id', '=', userId).where('deleted_at', 'is', null).executeTakeFirst();
    if (Number(locked.numUpdatedRows) === 0) throw new MonologueError('USER_NOT_FOUND', `no user with id ${userId}`);
    const row = await tx.selectFrom('users').select('consent_version').where('id', '=', userId).executeTakeFirstOrThrow();
    if (row.consent_version === version) return false;
    const last = await tx.selectFrom('consent_events').select('at').where('user_id', '=', userId).orderBy('at', 'desc').limit(1).executeTakeFirst();
    const when = last ? Math.max(at, Number(last.at) + 1) : at;
    await tx
      .updateTable('users')
      .set({ consent_version: version, consent_at: version === null ? null : when })
      .where('id', '=', userId)
      .execute();
    await tx.insertInto('consent_events').values({ id: newId('cev'), user_id: userId, version, at: when }).execute();
    return true;
  });
}

/** Every consent grant and withdrawal of the user, oldest first. */
export async function consentHistory(db: Db, userId: string): Promise<ConsentEvent[]> {
  const rows = await db.selectFrom('consent_events').selectAll().where('user_id', '=', userId).orderBy('at').orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, version: r.version, at: Number(r.at) }));
}

/** The first entry of a user created with consent (`users.create`), inside its transaction. */
export async function recordInitialConsent(db: Db, userId: string, version: string, at: number): Promise<void> {
  await db.insertInto('consent_events').values({ id: newId('cev'), user_id: userId, version, at }).execute();
}
