import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { Logger } from '../log.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { LiveControl } from '../api/deps.js';
import { destroyKeys, type Shredder } from '../recordings/shred.js';
import type { EventSink } from '../events/outbox.js';

/** What an account erasure did (counts only: this is logged and audited). */
export interface Erasure {
  recordings: number;
  calls: number;
  sessions: number;
  ledgerEntries: number;
}

export interface EraseDeps {
  db: Db;
  shredder: Shredder;
  live: Pick<LiveControl, 'sessionsRevoked'>;
  audit: Pick<AuditLog, 'append'>;
  log: Logger;
  now: () => number;
  /** One `recording.deleted` per shredded recording, in the erasure's transaction. */
  events?: EventSink;
}

/** What replaces an erased phone hash or ciphertext: no data, unique per row (phone_hash is UNIQUE), never a valid hash or seal. */
export const erasedValue = (rowId: string) => `deleted:${rowId}`;

/**
 * Erases a user's account (`DELETE /v1/me`). In ONE transaction, so a crash leaves all or nothing:
 *   - every recording's wrapped key destroyed (live ones too: the call is ended right after);
 *   - the user's phone hash and ciphertext replaced by `deleted:<userId>`, enrolment and consent
 *     cleared, `deleted_at` set (the row stays: ledger entries and audit entries refer to it);
 *   - the counterpart hash and ciphertext of every one of their calls replaced by `deleted:<callId>`;
 *   - every ledger memo of theirs nulled (amounts, states and types stay, for accounting);
 *   - every session revoked.
 * Then, outside it: live sockets closed (their calls end), grants closed, objects and spooled chunks
 * removed, and the audit entries written. Returns undefined when the account was already erased.
 *
 * Kept, and why: ledger entries (accounting; no personal data once memos are gone), settlements (amounts
 * and flag codes), audit entries (the chain cannot be edited; entries never hold numbers), consent
 * events (version and time: the record that the recordings were made with consent), call rows without
 * their counterpart (times, durations, SIP status: what the trunk bills). Another user's call log
 * that holds this number is that user's data and is not touched.
 */
export async function eraseUser(deps: EraseDeps, userId: string): Promise<Erasure | undefined> {
  const at = deps.now();
  const done = await deps.db.transaction().execute(async (tx) => {
    const erased = await tx
      .updateTable('users')
      .set({ phone_hash: erasedValue(userId), phone_cipher: erasedValue(userId), enrolled: 0, consent_version: null, consent_at: null, deleted_at: at })
      .where('id', '=', userId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (Number(erased.numUpdatedRows) === 0) return undefined;
    const finished = new Set(
      (await tx.selectFrom('recordings').select('id').where('user_id', '=', userId).where('state', 'in', ['complete', 'incomplete', 'failed']).execute()).map((r) => r.id),
    );
    const shredded = await destroyKeys(tx, { userId, includeLive: true }, at);
    for (const r of shredded) await deps.events?.write(tx, 'recording.deleted', { recordingId: r.id, userId, reason: 'account-erased' });
    const calls = await tx
      .updateTable('calls')
      // erasedValue(callId), computed in SQL so that it is one statement for all their calls.
      .set({ counterpart_hash: sql<string>`'deleted:' || id`, counterpart_cipher: sql<string>`'deleted:' || id` })
      .where('user_id', '=', userId)
      .executeTakeFirst();
    const ledger = await tx.updateTable('ledger_entries').set({ memo: null }).where('user_id', '=', userId).where('memo', 'is not', null).executeTakeFirst();
    const sessions = await tx.updateTable('sessions').set({ revoked_at: at }).where('user_id', '=', userId).where('revoked_at', 'is', null).returning('id').execute();
    return {
      // Anything not seen finished just before the shred (live, or started meanwhile) counts as live.
      shredded: shredded.map((r) => ({ id: r.id, live: !finished.has(r.id) })),
      calls: Number(calls.numUpdatedRows),
      ledgerEntries: Number(ledger.numUpdatedRows),
      sessions: sessions.map((s) => s.id),
    };
  });
  if (!done) return undefined;

  // Sockets first: their calls end now, so live recordings stop.
  deps.live.sessionsRevoked(done.sessions);
  for (const r of done.shredded) {
    // A recording live at the erasure may still be writing its last chunks: remove what is there now,
    // and leave the removal owed so that the sweeper takes the rest after PURGE_GRACE_MS.
    const purged = await deps.shredder.purge(r.id, { final: !r.live });
    await deps.audit.append({
      actor: `user:${userId}`,
      action: 'recording.delete',
      userId,
      recordingId: r.id,
      detail: `account deleted; key destroyed; ${purged && !r.live ? 'objects removed' : 'object removal pending (retried by the retention sweeper)'}`,
    });
  }
  const erasure: Erasure = { recordings: done.shredded.length, calls: done.calls, sessions: done.sessions.length, ledgerEntries: done.ledgerEntries };
  await deps.audit.append({
    actor: `user:${userId}`,
    action: 'user.delete',
    userId,
    detail: `account erased: ${erasure.recordings} recordings shredded, ${erasure.calls} calls' counterparts erased, ${erasure.sessions} sessions revoked, ${erasure.ledgerEntries} ledger memos cleared`,
  });
  deps.log.child({ mod: 'erase' }).info({ userId, ...erasure }, 'account erased');
  return erasure;
}
