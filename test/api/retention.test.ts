/**
 * Retention: recordings older than recording.retentionDays by the server clock are shredded by a sweep,
 * each audited `recording.retention-shred` by `system:retention`; younger and live ones are kept;
 * retentionDays 0 keeps everything; the CLI `monologue retention sweep` does the same with its clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApiRig, type ApiRig } from './fixture.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import { newId } from '../../src/ids.js';
import { createShredder, PURGE_GRACE_MS } from '../../src/recordings/shred.js';
import { createRetention } from '../../src/recordings/retention.js';
import { createLogger } from '../../src/log.js';
import { cli, recordingRow } from './shred-helpers.js';

const DAY = 86_400_000;

async function assertKept(rig: ApiRig, ids: string[]) {
  for (const id of ids) {
    const row = await recordingRow(rig, id);
    assert.notEqual(row.wrapped_key, null, `${id} kept`);
    assert.notEqual(row.state, 'deleted');
  }
}

async function assertRetentionShredded(rig: ApiRig, userId: string, ids: string[]) {
  const audit = (await rig.service.audit.forUser(userId, { limit: 100 })).filter((e) => e.action === 'recording.retention-shred');
  for (const id of ids) {
    const row = await recordingRow(rig, id);
    assert.equal(row.state, 'deleted', `${id} shredded`);
    assert.equal(row.wrapped_key, null);
    assert.equal(row.kek_id, null);
    assert.deepEqual(await rig.service.objects.list(objectKeys.prefix(id)), [], `${id}: objects removed`);
    const entries = audit.filter((e) => e.recordingId === id);
    assert.equal(entries.length, 1, `${id}: audited once`);
    assert.equal(entries[0]!.actor, 'system:retention');
    assert.match(entries[0]!.detail ?? '', /older than the retention cutoff/);
  }
}

test('a sweep shreds recordings older than retentionDays, keeps younger and live ones, audits each; CLI and retentionDays 0 too', { timeout: 90_000 }, async () => {
  const rig = await startApiRig({ overrides: { recording: { retentionDays: 30, retentionSweepMinutes: 60 } } });
  try {
    const alice = await rig.seedOwner('+15550130001', { calls: 2 });
    // A recording still being recorded, as old as alice's: never shredded by age.
    const liveId = newId('rec');
    const source = await recordingRow(rig, alice.recordings[0]!.id);
    await rig.service.catalog.create({ id: liveId, callId: newId('call'), userId: alice.id, wrappedKey: source.wrapped_key!, kekId: source.kek_id! });

    // 31 days later (server clock), bob records.
    rig.clock.offsetMs = 31 * DAY;
    const bob = await rig.seedOwner('+15550130002', { calls: 2 });
    const bobIds = bob.recordings.map((r) => r.id);
    const aliceIds = alice.recordings.map((r) => r.id);

    const report = await rig.service.retention.sweep();
    assert.equal(report.shredded, 2);
    const expected = Date.now() + rig.clock.offsetMs - 30 * DAY;
    assert.ok(Math.abs(Date.parse(report.cutoff!) - expected) < 10_000, `cutoff ${report.cutoff} is 30 days before the server clock`);
    await assertRetentionShredded(rig, alice.id, aliceIds);
    await assertKept(rig, [...bobIds, liveId]);
    assert.equal((await rig.service.audit.forUser(bob.id, { limit: 100 })).filter((e) => e.action === 'recording.retention-shred').length, 0);
    assert.equal((await recordingRow(rig, liveId)).state, 'recording');
    // Again: nothing more to do, nothing audited twice (checked inside).
    assert.equal((await rig.service.retention.sweep()).shredded, 0);
    await assertRetentionShredded(rig, alice.id, aliceIds);

    // retentionDays 0 keeps everything, whatever the clock says.
    rig.clock.offsetMs = 1000 * DAY;
    const s = rig.service;
    const log = createLogger('silent');
    const now = () => Date.now() + rig.clock.offsetMs;
    const shredder = createShredder({ db: s.db.db, grants: s.grants, objects: s.objects, spool: s.spool, audit: s.audit, log, now });
    const keepForever = createRetention({ db: s.db.db, shredder, log, now }, { retentionDays: 0, sweepMinutes: 60 });
    assert.deepEqual(await keepForever.sweep(), { shredded: 0, purged: 0, purgeFailed: 0, cutoff: null });
    await assertKept(rig, bobIds);

    // The CLI, on its own (real) clock: carol's recordings made 31 days ago by the server clock are old to it.
    rig.clock.offsetMs = -31 * DAY;
    const carol = await rig.seedOwner('+15550130003', { calls: 2 });
    const carolIds = carol.recordings.map((r) => r.id);
    const run = cli(rig, { MONOLOGUE_RECORDING__RETENTION_DAYS: '30' }, 'retention', 'sweep');
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { retentionDays: number; shredded: number; cutoff: string };
    assert.equal(out.retentionDays, 30);
    assert.equal(out.shredded, 2);
    await assertRetentionShredded(rig, carol.id, carolIds);
    await assertKept(rig, [...bobIds, liveId]);
    // The CLI does not own the service's spool: the service's sweeper confirms the removal after the grace.
    for (const id of carolIds) assert.equal((await recordingRow(rig, id)).objects_purged_at, null);
    rig.clock.offsetMs = PURGE_GRACE_MS + 1000;
    const confirm = await rig.service.retention.sweep();
    assert.equal(confirm.purged, 2);
    assert.equal(confirm.shredded, 0);
    for (const id of carolIds) assert.ok(Number((await recordingRow(rig, id)).objects_purged_at) > 0);
    assert.deepEqual(await rig.service.audit.verify(), { ok: true, entries: (await rig.service.audit.verify()).entries });
  } finally {
    await rig.close();
  }
});
