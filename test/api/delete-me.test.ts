/**
 * DELETE /v1/me: every recording shredded, the phone number and the counterparts of the user's calls gone
 * from every column of every table, every token dead and live sockets closed at once, ledger entries kept
 * without personal data, and another user's data untouched. On SQLite and PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startApiRig, type ApiRig } from './fixture.js';
import { signalClient } from '../helpers/signal-client.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import { newId } from '../../src/ids.js';
import { PURGE_GRACE_MS } from '../../src/recordings/shred.js';
import { backupStore, decryptFromBackup, recordingRow, snapshot } from './shred-helpers.js';

/** Every value of every row of every table (the migrator's included), as text, with its table. */
async function dumpDatabase(rig: ApiRig): Promise<Array<{ table: string; text: string }>> {
  const db = rig.service.db.db;
  const out: Array<{ table: string; text: string }> = [];
  for (const t of await db.introspection.getTables({ withInternalKyselyTables: true })) {
    const rows = await db.selectFrom(t.name as 'users').selectAll().execute();
    for (const row of rows) out.push({ table: t.name, text: JSON.stringify(row) });
  }
  return out;
}

const tablesHolding = (dump: Array<{ table: string; text: string }>, needle: string) => [...new Set(dump.filter((r) => r.text.includes(needle)).map((r) => r.table))];

/** The number as written, its digits, and its national digits: none may be anywhere. */
const spellings = (e164: string) => [e164, e164.slice(1), e164.slice(2)];

for (const database of ['sqlite', 'postgres'] as const) {
  test(`${database}: DELETE /v1/me erases the account: sockets closed, tokens dead, number gone from every table, recordings shredded, ledger kept`, { timeout: 90_000 }, async (t) => {
    const rig = await startApiRig({ database });
    try {
      const alice = await rig.seedOwner('+15550120001', { calls: 3, creditMicros: 2_500_000 });
      const bob = await rig.seedOwner('+15550120002', { calls: 2 });
      const db = rig.service.db.db;
      const vault = rig.service.vault;
      // A second device of alice's, connected.
      const second = await rig.service.tokens.issue(alice.id, 3_600_000);
      const ws = await signalClient(rig.service.httpPort);
      await ws.auth(second.token);
      // A call in progress with its recording still being written (as the recorder starts one).
      const liveCall = newId('call');
      await rig.service.records.create({ id: liveCall, userId: alice.id, direction: 'outbound', counterpart: '+15552999999', createdAt: Date.now() });
      const liveId = newId('rec');
      const source = await recordingRow(rig, alice.recordings[0]!.id);
      await rig.service.catalog.create({ id: liveId, callId: liveCall, userId: alice.id, wrappedKey: source.wrapped_key!, kekId: source.kek_id! });
      await rig.service.objects.put(objectKeys.chunk(liveId, 0), randomBytes(100));

      // What must disappear: alice's number in every spelling, its keyed hash and ciphertext, and the
      // counterparts of her calls the same way.
      const userRow = await db.selectFrom('users').selectAll().where('id', '=', alice.id).executeTakeFirstOrThrow();
      const callRows = await db.selectFrom('calls').selectAll().where('user_id', '=', alice.id).execute();
      assert.equal(callRows.length, 4);
      const counterparts = await Promise.all(callRows.map(async (c) => (await rig.service.records.get(alice.id, c.id))!.counterpart));
      const sealed = [userRow.phone_hash, userRow.phone_cipher, ...callRows.flatMap((c) => [c.counterpart_hash, c.counterpart_cipher])];
      assert.equal(userRow.phone_hash, vault.hash(alice.phone));
      const plain = [...spellings(alice.phone), ...counterparts.flatMap(spellings)];
      const before = await dumpDatabase(rig);
      // The search works: the hash and ciphertexts are found where they live.
      for (const n of sealed) assert.ok(tablesHolding(before, n).length > 0, `found before the delete: ${n.slice(0, 12)}…`);
      for (const n of plain) assert.deepEqual(tablesHolding(before, n), [], 'numbers are never stored in the clear');
      const ledgerBefore = await rig.service.ledger.entries(alice.id);
      const balanceBefore = await rig.service.ledger.balance(alice.id);
      assert.equal(ledgerBefore.length, 3);
      const store = await backupStore(rig);

      const t0 = performance.now();
      const res = await rig.request('DELETE', '/v1/me', { token: alice.token });
      t.diagnostic(`DELETE /v1/me (${database}, 4 recordings, 4 calls): ${(performance.now() - t0).toFixed(1)} ms`);
      assert.equal(res.status, 204);
      assert.equal(await res.text(), '');

      // The live socket is closed now (not at the next token check), as a revoked token's.
      const closed = await Promise.race([ws.closed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('socket still open 3 s after the delete')), 3000))]);
      assert.equal(closed.code, 4001);
      assert.equal(closed.reason, 'token revoked');

      // Every token of hers is the one 401, byte for byte the answer to a made-up token.
      const made = await snapshot(await rig.request('GET', '/v1/me', { token: `mlt_${randomBytes(32).toString('base64url')}` }));
      assert.equal(made.status, 401);
      for (const token of [alice.token, second.token]) {
        assert.deepEqual(await snapshot(await rig.request('GET', '/v1/me', { token })), made);
        assert.deepEqual(await snapshot(await rig.request('DELETE', '/v1/me', { token })), made);
      }
      await assert.rejects(rig.service.tokens.issue(alice.id, 60_000), { code: 'USER_NOT_FOUND' });
      assert.equal(await rig.service.users.byId(alice.id), undefined);
      assert.equal(await rig.service.users.byPhone(alice.phone), undefined);

      // Not findable in any column of any table.
      const after = await dumpDatabase(rig);
      for (const n of [...sealed, ...plain]) assert.deepEqual(tablesHolding(after, n), [], `still held: ${n.slice(0, 12)}…`);
      const erased = await db.selectFrom('users').selectAll().where('id', '=', alice.id).executeTakeFirstOrThrow();
      assert.equal(erased.phone_hash, `deleted:${alice.id}`);
      assert.equal(erased.phone_cipher, `deleted:${alice.id}`);
      assert.equal(erased.consent_version, null);
      assert.equal(erased.consent_at, null);
      assert.equal(Number(erased.enrolled), 0);
      assert.ok(Number(erased.deleted_at) > 0);
      for (const c of await db.selectFrom('calls').selectAll().where('user_id', '=', alice.id).execute()) {
        assert.equal(c.counterpart_hash, `deleted:${c.id}`);
        assert.equal(c.counterpart_cipher, `deleted:${c.id}`);
      }
      assert.equal(Number((await db.selectFrom('sessions').select((eb) => eb.fn.countAll().as('n')).where('user_id', '=', alice.id).where('revoked_at', 'is', null).executeTakeFirstOrThrow()).n), 0);

      // Recordings: shredded, objects gone.
      for (const r of alice.recordings) {
        const row = await recordingRow(rig, r.id);
        assert.equal(row.state, 'deleted');
        assert.equal(row.wrapped_key, null);
        assert.deepEqual(await rig.service.objects.list(objectKeys.prefix(r.id)), []);
        await assert.rejects(decryptFromBackup(rig, store, r.id), { code: 'RECORDING_SHREDDED' });
      }

      // The live one too; it stays deleted when its recorder finishes, and the sweeper removes what it
      // wrote once the grace period is over.
      const live = await recordingRow(rig, liveId);
      assert.equal(live.state, 'deleted');
      assert.equal(live.wrapped_key, null);
      assert.equal(live.objects_purged_at, null, 'removal still owed: the recorder may still be writing');
      await rig.service.catalog.finish(liveId, { state: 'complete', chunkCount: 2, durationMs: 2000, talkMs: 2000 });
      assert.equal((await recordingRow(rig, liveId)).state, 'deleted', 'finishing does not bring it back');
      await rig.service.objects.put(objectKeys.chunk(liveId, 1), randomBytes(100));
      rig.clock.offsetMs += PURGE_GRACE_MS + 1000;
      assert.equal((await rig.service.retention.sweep()).purged, 1);
      assert.deepEqual(await rig.service.objects.list(objectKeys.prefix(liveId)), []);

      // Ledger: every entry still there with its amount and state, nothing personal in it.
      const ledgerAfter = await rig.service.ledger.entries(alice.id);
      assert.deepEqual(ledgerAfter.map((e) => [e.id, e.type, e.state, e.amountMicros, e.callId]), ledgerBefore.map((e) => [e.id, e.type, e.state, e.amountMicros, e.callId]));
      assert.ok(ledgerAfter.every((e) => e.memo === null));
      assert.deepEqual(await rig.service.ledger.balance(alice.id), balanceBefore);

      // Audited: each recording and the account.
      const audit = await rig.service.audit.forUser(alice.id, { limit: 100 });
      assert.equal(audit.filter((e) => e.action === 'recording.delete' && e.actor === `user:${alice.id}`).length, 4);
      assert.match(audit.find((e) => e.action === 'user.delete')?.detail ?? '', /4 recordings shredded, 4 calls' counterparts erased, 2 sessions revoked/);
      assert.deepEqual(await rig.service.audit.verify(), { ok: true, entries: (await rig.service.audit.verify()).entries });

      // Bob is untouched.
      const bobMe = await rig.request('GET', '/v1/me', { token: bob.token });
      assert.equal(bobMe.status, 200);
      assert.equal(((await bobMe.json()) as { phone: string }).phone, bob.phone);
      assert.equal((await rig.service.users.byPhone(bob.phone))?.id, bob.id);
      for (const r of bob.recordings) assert.ok((await decryptFromBackup(rig, await backupStore(rig), r.id)).equals(r.ogg));
      for (const c of bob.calls) assert.match((await rig.service.records.get(bob.id, c))!.counterpart, /^\+1555/);
      assert.equal((await rig.service.ledger.entries(bob.id)).length, 2);

      // The number is free again: it may enrol anew, as a new user with nothing of the old one.
      const again = await rig.service.users.create({ phone: alice.phone, enrolled: false });
      assert.notEqual(again.id, alice.id);
    } finally {
      await rig.close();
    }
  });
}
