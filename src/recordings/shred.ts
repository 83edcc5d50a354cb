import type { Db } from '../db/database.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Spool } from '../storage/spool.js';
import type { Grants } from './grants.js';
import { objectKeys } from './catalog.js';
import { NO_EVENTS, type EventSink } from '../events/outbox.js';

/**
 * Crypto-shred (DESIGN §4.4, issue 9 item 4). A recording's chunks are sealed under its own data key,
 * which exists only wrapped in its database row; destroying that wrapped key is the deletion: from that
 * statement on, no copy of the chunks (object store, its backups, a spool, a stolen disk) can be
 * decrypted by anyone, this system included. Only then are its grants closed and its objects removed,
 * which is tidying: if the store is down the shred still stands, and the removal is owed (the row keeps
 * `objects_purged_at` null) until the retention sweeper's retry succeeds.
 *
 * Order and why: key first, so that every later failure (store down, process killed) leaves an
 * unreadable recording, never a readable one that the user was told is gone.
 */
export interface ShredDeps {
  db: Db;
  grants: Pick<Grants, 'closeForRecording'>;
  objects: Pick<ObjectStore, 'deletePrefix'>;
  /**
   * This process's spool. Absent in the CLI: the running service's spool is its own, so the CLI never
   * marks a removal done, and the service's sweeper finishes it (spool included).
   */
  spool?: Pick<Spool, 'discard'>;
  audit: Pick<AuditLog, 'append'>;
  log: Logger;
  /** The server clock. */
  now: () => number;
  /** `recording.deleted` is written in the shred's own transaction. */
  events?: EventSink;
}

export type OwnerShred = 'shredded' | 'live' | 'not-found';

/**
 * A shredded recording's objects are removed again by the sweeper only this long after its key was
 * destroyed: a recording shredded while still being recorded (its account was deleted mid-call) stops
 * with its call, and its last chunks land within this time.
 */
export const PURGE_GRACE_MS = 60_000;

/** Rows purged per sweep at most: a store that is down costs one timeout per row, not per backlog. */
const PURGE_BATCH = 100;

export interface Shredder {
  /**
   * The owner deletes one recording. `not-found` for a missing, foreign or already shredded id (the API
   * answers all three with the one 404); `live` while it is being recorded (409 RECORDING_LIVE, only
   * its owner can learn that). Audited `recording.delete` by `user:<id>`.
   */
  byOwner(userId: string, recordingId: string): Promise<OwnerShred>;
  /** Retention: shreds it if it is finished and was created before `cutoff`. Audited `recording.retention-shred` by `system:retention`. */
  expired(recordingId: string, cutoff: number): Promise<boolean>;
  /**
   * After the key is gone: close grants, drop spooled chunks, remove objects. Never throws. True when
   * all of that succeeded; then, if `final` (default) and this process owns a spool, the removal is
   * marked done. A recording that may still be writing (live when shredded) passes `final: false`.
   */
  purge(recordingId: string, opts?: { final?: boolean }): Promise<boolean>;
  /** The retry path: shredded recordings whose removal is still owed (older than PURGE_GRACE_MS). */
  purgeOwed(): Promise<{ purged: number; failed: number }>;
}

export interface DestroyedKey {
  id: string;
  userId: string;
}

/**
 * The shred itself, in ONE statement: wrapped key and KEK id to null, state `deleted`, `deleted_at`.
 * Scoped by whatever `where` names (always by owner when a user asks). Live recordings are left alone
 * unless `includeLive` (account erasure). Already shredded rows are never matched, so two shredders
 * racing on one recording see exactly one winner. `db` may be a transaction.
 */
export async function destroyKeys(
  db: Db,
  where: { recordingId?: string; userId?: string; createdBefore?: number; includeLive?: boolean },
  at: number,
): Promise<DestroyedKey[]> {
  let q = db
    .updateTable('recordings')
    .set({ wrapped_key: null, kek_id: null, state: 'deleted', deleted_at: at, objects_purged_at: null })
    .where('state', '<>', 'deleted');
  if (!where.includeLive) q = q.where('state', '<>', 'recording');
  if (where.recordingId !== undefined) q = q.where('id', '=', where.recordingId);
  if (where.userId !== undefined) q = q.where('user_id', '=', where.userId);
  if (where.createdBefore !== undefined) q = q.where('created_at', '<', where.createdBefore);
  const rows = await q.returning(['id', 'user_id']).execute();
  return rows.map((r) => ({ id: r.id, userId: r.user_id }));
}

export function createShredder(deps: ShredDeps): Shredder {
  const log = deps.log.child({ mod: 'shred' });

  const purge: Shredder['purge'] = async (recordingId, opts = {}) => {
    let ok = true;
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        ok = false;
        log.warn({ recordingId, step: what, err: errorMessage(err) }, 'shredded recording: removal step failed; the key is gone, the retention sweeper retries the removal');
      }
    };
    // Grants first: a media request in flight for it finds its grant closed (and no key either way).
    await step('grants', () => deps.grants.closeForRecording(recordingId));
    // The spool before the store: discard waits for an upload in flight, which may land; the store's
    // removal then takes it too.
    if (deps.spool) {
      const spool = deps.spool;
      await step('spool', () => spool.discard(objectKeys.prefix(recordingId)));
    }
    await step('objects', () => deps.objects.deletePrefix(objectKeys.prefix(recordingId)));
    if (ok && deps.spool && opts.final !== false) {
      await step('mark', () => deps.db.updateTable('recordings').set({ objects_purged_at: deps.now() }).where('id', '=', recordingId).where('state', '=', 'deleted').execute());
    }
    return ok;
  };

  const events = deps.events ?? NO_EVENTS;
  /** The shred and its `recording.deleted` event commit together, or neither does. */
  const shredOne = (where: Parameters<typeof destroyKeys>[1], reason: 'owner' | 'retention') =>
    deps.db.transaction().execute(async (tx) => {
      const [done] = await destroyKeys(tx, where, deps.now());
      if (done) await events.write(tx, 'recording.deleted', { recordingId: done.id, userId: done.userId, reason });
      return done;
    });

  const detail = (purged: boolean) => (purged ? 'key destroyed; grants closed; objects removed' : 'key destroyed; object removal pending (retried by the retention sweeper)');

  return {
    async byOwner(userId, recordingId) {
      const done = await shredOne({ recordingId, userId }, 'owner');
      if (!done) {
        // Same owner filter as the shred: another user's live recording reads as missing.
        const row = await deps.db.selectFrom('recordings').select('state').where('id', '=', recordingId).where('user_id', '=', userId).executeTakeFirst();
        return row?.state === 'recording' ? 'live' : 'not-found';
      }
      const purged = await purge(recordingId);
      await deps.audit.append({ actor: `user:${userId}`, action: 'recording.delete', userId, recordingId, detail: detail(purged) });
      log.info({ recordingId, purged }, 'recording shredded by its owner');
      return 'shredded';
    },

    async expired(recordingId, cutoff) {
      const done = await shredOne({ recordingId, createdBefore: cutoff }, 'retention');
      if (!done) return false;
      const purged = await purge(recordingId);
      await deps.audit.append({
        actor: 'system:retention',
        action: 'recording.retention-shred',
        userId: done.userId,
        recordingId,
        detail: `older than the retention cutoff ${new Date(cutoff).toISOString()}; ${detail(purged)}`,
      });
      return true;
    },

    purge,

    async purgeOwed() {
      const rows = await deps.db
        .selectFrom('recordings')
        .select('id')
        .where('state', '=', 'deleted')
        .where('objects_purged_at', 'is', null)
        .where('deleted_at', '<=', deps.now() - PURGE_GRACE_MS)
        .orderBy('deleted_at')
        .limit(PURGE_BATCH)
        .execute();
      let purged = 0;
      let failed = 0;
      for (const { id } of rows) {
        if (await purge(id)) purged++;
        else if (++failed >= 3) break; // the store is down: try again next sweep
      }
      return { purged, failed };
    },
  };
}
