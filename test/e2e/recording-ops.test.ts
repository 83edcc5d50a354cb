import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { startWrtcRig } from '../helpers/wrtc-rig.js';
import { startS3Server } from '../helpers/s3.js';
import { decryptAndDecode, waitForRecording } from '../helpers/recording.js';
import { until } from '../helpers/until.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import type { Config, DeepPartial } from '../../src/config/load.js';

/** The shared rig with one enrolled user's dialer, as these tests use it. */
async function rig(overrides: DeepPartial<Config>) {
  const r = await startWrtcRig(overrides);
  const { dialer, userId } = await r.dialer('+15550001111');
  return {
    service: r.service,
    user: { id: userId },
    dialer,
    call: () => r.call(dialer),
    hangup: (callId: string) => r.hangup(dialer, callId),
    close: () => r.close(),
  };
}

const kinds = (d: WrtcDialer, callId: string) =>
  d.messages.filter((m) => 'callId' in m && m.callId === callId && m.type.startsWith('recording.')).map((m) => `${m.type}:${'reason' in m ? m.reason : ''}`);

test('the dialer hears recording.started and recording.stopped; the call record says nothing is missing', async () => {
  const r = await rig({});
  try {
    const callId = await r.call();
    await new Promise((res) => setTimeout(res, 2500));
    await r.hangup(callId);
    const row = await waitForRecording(r.service, callId);
    assert.equal(row.state, 'complete');
    await until('recording.started and recording.stopped at the dialer', () => kinds(r.dialer, callId).length >= 2, 5000);
    assert.deepEqual(kinds(r.dialer, callId), ['recording.started:', 'recording.stopped:call-ended']);
  } finally {
    await r.close();
  }
});

test('fail closed: with no key-encryption key the call goes on unrecorded, and the dialer and the record say so', async () => {
  const r = await rig({ recording: { chunkSeconds: 2, kekDir: '/dev/null/kek' } });
  try {
    const callId = await r.call();
    await new Promise((res) => setTimeout(res, 1000));
    assert.equal(r.service.switchboard.call(callId)?.state, 'answered', 'the call is up');
    await r.hangup(callId);
    assert.deepEqual(kinds(r.dialer, callId), ['recording.stopped:no-key']);
    assert.equal(await r.service.catalog.byCall(callId), undefined);
    assert.equal((await r.service.records.get(r.user.id, callId))?.recordingNote, 'no-key');
  } finally {
    await r.close();
  }
});

test('S3: a 20 s storage outage mid-call loses nothing; every chunk arrives and the recording decrypts whole', { timeout: 120_000 }, async () => {
  const s3 = await startS3Server();
  const r = await rig({
    storage: {
      kind: 's3',
      spoolMinBackoffMs: 200,
      spoolMaxBackoffMs: 2000,
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, requestTimeoutMs: 1000 },
    },
  });
  try {
    const callId = await r.call();
    const storedChunks = async () => (await r.service.objects.list('')).filter((k) => k.includes('chunk-')).length;
    await until('a first chunk in S3', async () => (await storedChunks()) > 0, 15_000, 200);
    await s3.stop();
    // The outage lasts until ten chunks (2 s each: ~20 s of the call) wait in the spool.
    await until('10 chunks waiting in the spool while S3 is down', () => r.service.spool.pending >= 10, 40_000, 200);
    await s3.start();
    await until('the spool emptied into S3 while the call goes on', () => r.service.spool.pending === 0, 30_000, 200);
    await r.hangup(callId);
    const row = await waitForRecording(r.service, callId, 30_000);
    assert.equal(row.state, 'complete');
    assert.ok(row.chunkCount >= 12, `${row.chunkCount} chunks for ~25 s`);
    await r.service.spool.drain(30_000);
    const keys = await r.service.objects.list(objectKeys.prefix(row.id));
    assert.equal(keys.filter((k) => k.includes('chunk-')).length, row.chunkCount, 'every chunk is in S3');
    assert.ok(keys.includes(objectKeys.manifest(row.id)));
    const { pcm } = await decryptAndDecode(r.service, row.id);
    assert.ok(pcm.length / 48 > row.durationMs - 1000, `decrypted ${Math.round(pcm.length / 48)} ms of ${row.durationMs} ms`);
  } finally {
    await r.close();
    await s3.close();
  }
});

test('KEK rotation: old and new recordings decrypt after "keys rotate"; the old KEK can then be retired', async () => {
  const r = await rig({});
  const env = {
    ...process.env,
    MONOLOGUE_DATA_DIR: r.service.config.dataDir,
    DATABASE_URL: r.service.config.database.url,
  };
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, encoding: 'utf8' });
  try {
    const first = await r.call();
    await new Promise((res) => setTimeout(res, 1500));
    await r.hangup(first);
    const oldRow = await waitForRecording(r.service, first);
    await r.service.spool.drain(10_000);

    const rotated = cli('keys', 'rotate');
    assert.equal(rotated.status, 0, rotated.stderr);
    const { previous, current, rewrapped } = JSON.parse(rotated.stdout) as { previous: string; current: string; rewrapped: number };
    assert.notEqual(previous, current);
    assert.equal(rewrapped, 1);

    const second = await r.call();
    await new Promise((res) => setTimeout(res, 1500));
    await r.hangup(second);
    const newRow = await waitForRecording(r.service, second);
    assert.equal(newRow.kekId, current, 'new recordings use the new KEK');
    assert.equal((await r.service.catalog.get(oldRow.id))?.kekId, current, 'old recordings were rewrapped');
    await r.service.spool.drain(10_000);

    const retired = cli('keys', 'retire', previous);
    assert.equal(retired.status, 0, retired.stderr);
    assert.equal(JSON.parse(cli('keys', 'retire', current).stderr).code, 'KEK_CURRENT');
    for (const id of [oldRow.id, newRow.id]) {
      const verify = cli('recording', 'verify', id);
      assert.equal(verify.status, 0, verify.stderr);
      assert.equal(JSON.parse(verify.stdout).complete, true);
      assert.ok((await decryptAndDecode(r.service, id)).pcm.length > 48_000);
    }

    // Decrypted audio is created 0600, never written into an existing file unless --force replaces it.
    const dir = mkdtempSync(join(tmpdir(), 'decrypt-'));
    try {
      const fresh = join(dir, 'fresh.opus');
      assert.equal(cli('recording', 'decrypt', newRow.id, '--out', fresh).status, 0);
      assert.equal(statSync(fresh).mode & 0o777, 0o600);
      const existing = join(dir, 'existing.opus');
      writeFileSync(existing, 'keep me', { mode: 0o644 });
      const refused = cli('recording', 'decrypt', newRow.id, '--out', existing);
      assert.equal(refused.status, 1);
      assert.equal(JSON.parse(refused.stderr).code, 'OUTPUT_EXISTS');
      assert.equal(readFileSync(existing, 'utf8'), 'keep me');
      assert.equal(cli('recording', 'decrypt', newRow.id, '--out', existing, '--force').status, 0);
      assert.equal(statSync(existing).mode & 0o777, 0o600, 'replaced by a new owner-only file');
      assert.deepEqual(readFileSync(existing), readFileSync(fresh));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // Failed reads are audited with their code: an unknown id, and a tampered chunk.
    assert.equal(JSON.parse(cli('recording', 'verify', 'rec_nosuchrecording').stderr).code, 'RECORDING_NOT_FOUND');
    await r.service.objects.put(objectKeys.chunk(newRow.id, 1), randomBytes(200));
    const tampered = cli('recording', 'verify', newRow.id);
    assert.equal(tampered.status, 1);
    const tamperCode = (JSON.parse(tampered.stderr) as { code: string }).code;

    const audit = await r.service.db.db.selectFrom('audit_log').select(['action', 'recording_id', 'detail']).execute();
    assert.ok(audit.some((a) => a.action === 'recording.verify' && a.recording_id === oldRow.id && a.detail === 'ok'), 'reads are audited');
    assert.ok(audit.some((a) => a.action === 'recording.decrypt' && a.recording_id === newRow.id));
    assert.ok(audit.some((a) => a.action === 'recording.verify' && a.recording_id === 'rec_nosuchrecording' && a.detail === 'failed: RECORDING_NOT_FOUND'));
    assert.ok(audit.some((a) => a.action === 'recording.verify' && a.recording_id === newRow.id && a.detail === `failed: ${tamperCode}`), `tamper audited (${tamperCode})`);
    assert.ok(audit.some((a) => a.action === 'keys.rotate'));
  } finally {
    await r.close();
  }
});
