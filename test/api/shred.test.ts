/**
 * DELETE /v1/recordings/{id} is a crypto-shred: the wrapped key is destroyed first, then grants, objects
 * and spooled chunks go. A backup of the object store taken before the delete stays undecryptable with
 * everything the system still holds. On the filesystem store and on a real S3-compatible server, where
 * the store is also down at the moment of the delete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startApiRig, type ApiRig, type SeededOwner } from './fixture.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';
import { walkFiles } from '../../src/storage/fs-util.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import { newId } from '../../src/ids.js';
import { PURGE_GRACE_MS } from '../../src/recordings/shred.js';
import {
  assertSameAsMissing,
  assertUndecryptable,
  backupStore,
  chunksOf,
  cli,
  decryptFromBackup,
  randomGrant,
  randomRecId,
  recordingRow,
  spooledOf,
} from './shred-helpers.js';

const s3Overrides = (s3: S3TestServer) => ({
  storage: {
    kind: 's3' as const,
    spoolMinBackoffMs: 50,
    spoolMaxBackoffMs: 500,
    s3: { endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, requestTimeoutMs: 1000 },
  },
});

/** What every shred must leave, whatever the store. */
async function assertShredded(rig: ApiRig, owner: SeededOwner, id: string, backup: Map<string, Buffer>, grantToken: string) {
  const row = await recordingRow(rig, id);
  assert.equal(row.wrapped_key, null, 'wrapped key destroyed');
  assert.equal(row.kek_id, null);
  assert.equal(row.state, 'deleted');
  assert.ok(Number(row.deleted_at) > 0);
  assert.deepEqual(await rig.service.objects.list(objectKeys.prefix(id)), [], 'no object of it is left in the store');
  assert.deepEqual(await spooledOf(rig, id), [], 'nothing of it in the spool');
  await assert.rejects(decryptFromBackup(rig, backup, id), { code: 'RECORDING_SHREDDED' });
  const attempts = await assertUndecryptable(rig, backup, id);
  assert.ok(attempts >= chunksOf(backup, id).length, `${attempts} decryption attempts`);

  // The API: the same 404 as for an id that never existed, on every route that names it.
  const missing = randomRecId();
  await assertSameAsMissing(rig, 'GET', (x) => `/v1/recordings/${x}`, id, missing, { token: owner.token });
  await assertSameAsMissing(rig, 'POST', (x) => `/v1/recordings/${x}/grants`, id, missing, { token: owner.token, body: { purpose: 'play' } });
  await assertSameAsMissing(rig, 'DELETE', (x) => `/v1/recordings/${x}`, id, missing, { token: owner.token });
  // The grant issued before the delete is closed: its media URL answers like a made-up one. (The owner's
  // token rides along: a media route needs none, and without a media route the scope answers 404 to it too.)
  await assertSameAsMissing(rig, 'GET', (x) => `/v1/media/${x}`, grantToken, randomGrant(), { token: owner.token });
  assert.equal(await rig.service.grants.use(grantToken), undefined, 'the grant serves nothing');

  const audit = await rig.service.audit.forUser(owner.id, { limit: 100 });
  const entry = audit.find((e) => e.action === 'recording.delete' && e.recordingId === id);
  assert.ok(entry, 'the delete is audited');
  assert.equal(entry.actor, `user:${owner.id}`);
}

test('shred on the filesystem store: key gone, objects gone, a pre-delete copy undecryptable, the same 404 as a missing id', { timeout: 90_000 }, async (t) => {
  const rig = await startApiRig();
  const backupDir = mkdtempSync(join(tmpdir(), 'monologue-backup-'));
  try {
    const alice = await rig.seedOwner('+15550110001', { calls: 2 });
    const bob = await rig.seedOwner('+15550110002', { calls: 1 });
    const target = alice.recordings[0]!;
    const kept = alice.recordings[1]!;
    const grant = await rig.service.grants.issue(alice.id, target.id, 'play');

    // The backup: the store's folder copied as it is on disk.
    const storeRoot = join(resolve(rig.service.config.dataDir), 'objects');
    cpSync(storeRoot, backupDir, { recursive: true });
    const backup = new Map<string, Buffer>();
    for (const rel of await walkFiles(join(backupDir, 'objects'))) backup.set(rel, readFileSync(join(backupDir, 'objects', rel)));
    assert.ok(chunksOf(backup, target.id).length === target.chunkCount, 'the copy holds every chunk');
    assert.ok((await decryptFromBackup(rig, backup, target.id)).equals(target.ogg), 'before the delete the copy decrypts to the recording');

    // Another user cannot delete it: the answer of a missing id, and nothing changes.
    await assertSameAsMissing(rig, 'DELETE', (x) => `/v1/recordings/${x}`, target.id, randomRecId(), { token: bob.token });
    assert.notEqual((await recordingRow(rig, target.id)).wrapped_key, null, 'a foreign delete changed nothing');
    assert.equal((await rig.service.objects.list(objectKeys.prefix(target.id))).length, target.chunkCount + 1);

    const t0 = performance.now();
    const res = await rig.request('DELETE', `/v1/recordings/${target.id}`, { token: alice.token });
    t.diagnostic(`DELETE /v1/recordings/{id} on the filesystem store (${target.chunkCount} chunks + manifest): ${(performance.now() - t0).toFixed(1)} ms`);
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assert.ok(Number((await recordingRow(rig, target.id)).objects_purged_at) > 0, 'removal confirmed');
    assert.equal(existsSync(join(storeRoot, 'objects', 'rec', target.id)), false, 'its folder is gone from the store');
    await assertShredded(rig, alice, target.id, backup, grant.token);

    // The operator CLI says so, with its code and a message that says there is nothing to recover.
    for (const args of [['recording', 'decrypt', target.id, '--out', join(backupDir, 'out.opus')]]) {
      const r = cli(rig, {}, ...args);
      assert.equal(r.status, 1, r.stderr);
      const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { code: string; message: string };
      assert.equal(err.code, 'RECORDING_SHREDDED');
      assert.match(err.message, /crypto-shredded/);
      assert.match(err.message, /nothing to recover/);
      assert.match(err.message, /recording\.delete or recording\.retention-shred/);
      assert.equal(existsSync(join(backupDir, 'out.opus')), false, 'no output file');
    }

    // The others are untouched: alice's other recording, bob's.
    for (const r of [kept, bob.recordings[0]!]) {
      assert.notEqual((await recordingRow(rig, r.id)).wrapped_key, null);
      assert.ok((await decryptFromBackup(rig, await backupStore(rig), r.id)).equals(r.ogg), `${r.id} still decrypts`);
    }
  } finally {
    await rig.close();
    rmSync(backupDir, { recursive: true, force: true });
  }
});

test('a live recording: its owner gets 409 RECORDING_LIVE, anyone else the 404 of a missing id; nothing changes', async () => {
  const rig = await startApiRig();
  try {
    const alice = await rig.seedOwner('+15550110011', { calls: 1 });
    const bob = await rig.seedOwner('+15550110012', { calls: 1 });
    // A recording as the recorder starts it: a key, state `recording`.
    const liveId = newId('rec');
    const source = await recordingRow(rig, alice.recordings[0]!.id);
    await rig.service.catalog.create({ id: liveId, callId: newId('call'), userId: alice.id, wrappedKey: source.wrapped_key!, kekId: source.kek_id! });

    const res = await rig.request('DELETE', `/v1/recordings/${liveId}`, { token: alice.token });
    assert.equal(res.status, 409);
    assert.deepEqual(await res.json(), { code: 'RECORDING_LIVE', message: 'this recording is still being recorded; hang up the call, then delete it' });
    await assertSameAsMissing(rig, 'DELETE', (x) => `/v1/recordings/${x}`, liveId, randomRecId(), { token: bob.token });
    const row = await recordingRow(rig, liveId);
    assert.equal(row.state, 'recording');
    assert.notEqual(row.wrapped_key, null);
    // Malformed ids are the same 404 too.
    await assertSameAsMissing(rig, 'DELETE', (x) => `/v1/recordings/${x}`, 'rec_short', randomRecId(), { token: alice.token });
    // Without a token: the one 401.
    const anon = await rig.request('DELETE', `/v1/recordings/${alice.recordings[0]!.id}`);
    assert.equal(anon.status, 401);
    assert.notEqual((await recordingRow(rig, alice.recordings[0]!.id)).wrapped_key, null);
  } finally {
    await rig.close();
  }
});

test('shred on S3, with S3 down at the delete: the key is gone at once, the spooled chunk is dropped, the sweeper removes the objects later', { timeout: 120_000 }, async (t) => {
  const s3 = await startS3Server();
  const rig = await startApiRig({ overrides: s3Overrides(s3) });
  try {
    const alice = await rig.seedOwner('+15550110021', { calls: 2 });
    const bob = await rig.seedOwner('+15550110022', { calls: 1 });
    const target = alice.recordings[0]!;
    const grant = await rig.service.grants.issue(alice.id, target.id, 'download');
    const backup = await backupStore(rig);
    assert.ok((await decryptFromBackup(rig, backup, target.id)).equals(target.ogg), 'before the delete the copy decrypts');

    await assertSameAsMissing(rig, 'DELETE', (x) => `/v1/recordings/${x}`, target.id, randomRecId(), { token: bob.token });
    assert.notEqual((await recordingRow(rig, target.id)).wrapped_key, null);

    // S3 goes down; a chunk of the recording waits in the spool (a late upload).
    await s3.stop();
    const late = objectKeys.chunk(target.id, 999);
    await rig.service.spool.enqueue(late, backup.get(objectKeys.chunk(target.id, 0))!);
    assert.deepEqual(await spooledOf(rig, target.id), [late]);

    const t1 = performance.now();
    const res = await rig.request('DELETE', `/v1/recordings/${target.id}`, { token: alice.token });
    t.diagnostic(`DELETE /v1/recordings/{id} with S3 down: ${(performance.now() - t1).toFixed(1)} ms`);
    assert.equal(res.status, 204, 'the delete succeeds with the store down: the key is what counts');
    const row = await recordingRow(rig, target.id);
    assert.equal(row.wrapped_key, null);
    assert.equal(row.state, 'deleted');
    assert.equal(row.objects_purged_at, null, 'the object removal is owed');
    assert.deepEqual(await spooledOf(rig, target.id), [], 'the spooled chunk is dropped');
    assert.equal(rig.service.spool.pending, 0);
    const entry = (await rig.service.audit.forUser(alice.id, { limit: 50 })).find((e) => e.action === 'recording.delete' && e.recordingId === target.id);
    assert.match(entry?.detail ?? '', /object removal pending/);

    await s3.start();
    assert.ok((await rig.service.objects.list(objectKeys.prefix(target.id))).length > 0, 'the objects are still in S3 (undecryptable)');
    await assertUndecryptable(rig, await backupStore(rig), target.id);
    // Within the grace period the sweeper leaves it; after it, the removal is done.
    assert.equal((await rig.service.retention.sweep()).purged, 0);
    rig.clock.offsetMs += PURGE_GRACE_MS + 1000;
    const report = await rig.service.retention.sweep();
    assert.equal(report.purged, 1);
    assert.equal(report.shredded, 0, 'nothing is old enough for retention');
    assert.ok(Number((await recordingRow(rig, target.id)).objects_purged_at) > 0);
    assert.equal((await rig.service.retention.sweep()).purged, 0, 'done once');

    await assertShredded(rig, alice, target.id, backup, grant.token);
    assert.equal(backup.has(late), false);
    assert.equal((await rig.service.objects.list(late)).length, 0, 'the spooled chunk never reached S3');

    const r = cli(rig, {}, 'recording', 'decrypt', target.id, '--out', join(rig.service.config.dataDir, 'x.opus'));
    assert.equal(r.status, 1);
    assert.equal((JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { code: string }).code, 'RECORDING_SHREDDED');

    const bobs = bob.recordings[0]!;
    assert.ok((await decryptFromBackup(rig, await backupStore(rig), bobs.id)).equals(bobs.ogg), 'bob’s recording untouched');

    // With S3 up: everything at once, as on the filesystem.
    const second = alice.recordings[1]!;
    const secondGrant = await rig.service.grants.issue(alice.id, second.id, 'play');
    const t0 = performance.now();
    const up = await rig.request('DELETE', `/v1/recordings/${second.id}`, { token: alice.token });
    t.diagnostic(`DELETE /v1/recordings/{id} on S3 (${second.chunkCount} chunks + manifest): ${(performance.now() - t0).toFixed(1)} ms`);
    assert.equal(up.status, 204);
    assert.ok(Number((await recordingRow(rig, second.id)).objects_purged_at) > 0, 'removal confirmed at once');
    await assertShredded(rig, alice, second.id, backup, secondGrant.token);
    assert.ok((await decryptFromBackup(rig, await backupStore(rig), bobs.id)).equals(bobs.ogg));
  } finally {
    await rig.close();
    await s3.close();
  }
});
