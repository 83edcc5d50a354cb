/**
 * GET /v1/media/{grant} byte ranges against the real service: every range returns exactly those bytes of
 * the sealed Ogg Opus file (chunk boundaries crossed, suffix, open-ended); the file assembled from ranges
 * decodes with libopus and holds the recording's tone; 416 for ranges that select nothing; a damaged
 * chunk cuts the stream (never bad bytes) and is logged with its code; no key → 503 NO_KEY.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import opus from '@discordjs/opus';
import { decodeSecrets, ChunkSealer, inspectChunk } from '../../src/crypto/chunk-aead.js';
import { openKeyring } from '../../src/crypto/kek.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import { kekDir } from '../../src/recordings/storage-setup.js';
import { goertzel } from '../helpers/tone.js';
import { opusPackets } from '../helpers/ogg.js';
import { until } from '../helpers/until.js';
import { startApiRig, type ApiRig, type SeededOwner, type SeededRecording } from './fixture.js';

function decode(ogg: Buffer): Int16Array {
  const decoder = new opus.OpusEncoder(48000, 1);
  const pcm = Buffer.concat(opusPackets(ogg).map((p) => decoder.decode(p)));
  return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
}

describe('media byte ranges', () => {
  let rig: ApiRig;
  let owner: SeededOwner;
  let rec: SeededRecording;
  /** Plaintext offset where each chunk starts, from the stored chunks' headers. */
  let boundaries: number[];
  const logs: Array<Record<string, unknown>> = [];

  before(async () => {
    const logDestination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    rig = await startApiRig({ logDestination });
    owner = await rig.seedOwner('+15550200001', { calls: 3, seconds: 6, toneHz: 700 });
    rec = owner.recordings[0]!;
    boundaries = [];
    let offset = 0;
    for (let i = 0; i < rec.chunkCount; i++) {
      boundaries.push(offset);
      offset += inspectChunk(await rig.service.objects.get(objectKeys.chunk(rec.id, i))).length;
    }
    assert.equal(offset, rec.ogg.length);
    assert.ok(rec.chunkCount >= 5, `${rec.chunkCount} chunks`);
  });
  after(async () => rig?.close());

  const issue = async (recordingId = rec.id) => {
    const res = await rig.request('POST', `/v1/recordings/${recordingId}/grants`, { token: owner.token, body: { purpose: 'play' } });
    assert.equal(res.status, 201);
    return ((await res.json()) as { url: string }).url;
  };
  const get = (url: string, range?: string, extra: Record<string, string> = {}) => rig.request('GET', url, { headers: { ...(range !== undefined && { range }), ...extra } });

  test('each range is exactly those bytes: start, across chunk boundaries, suffix, open-ended, one byte, past the end', async () => {
    const url = await issue();
    const size = rec.ogg.length;
    const [, b1, b2, b3] = boundaries as [number, number, number, number];
    const cases: Array<[string, number, number]> = [
      ['bytes=0-99', 0, 99],
      [`bytes=${b1 - 10}-${b3 + 10}`, b1 - 10, b3 + 10], // crosses two chunk boundaries
      [`bytes=${b2}-${b2}`, b2, b2], // the first byte of a chunk
      [`bytes=${b2 - 1}-${b2 - 1}`, b2 - 1, b2 - 1], // the last byte of the one before
      [`bytes=${b2}-`, b2, size - 1],
      ['bytes=-333', size - 333, size - 1],
      [`bytes=${size - 1}-`, size - 1, size - 1],
      [`bytes=100-${size + 10_000}`, 100, size - 1],
      [`bytes=-${size + 5}`, 0, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await get(url, range);
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${size}`, range);
      assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
      assert.equal(res.headers.get('accept-ranges'), 'bytes');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), rec.ogg.subarray(start, end + 1), range);
    }
  });

  test('the file put together from ranges decodes with libopus and holds the recording’s 700 Hz tone', async () => {
    const url = await issue();
    const size = rec.ogg.length;
    // Cuts at odd places, never on a chunk boundary: each request starts mid-chunk.
    const cuts = [0, 37, boundaries[1]! + 3, Math.floor(size / 2) + 1, boundaries[4]! - 5, size - 1000];
    const parts: Buffer[] = [];
    for (const [i, start] of cuts.entries()) {
      const next = cuts[i + 1];
      const res = await get(url, next === undefined ? `bytes=${start}-` : `bytes=${start}-${next - 1}`);
      assert.equal(res.status, 206);
      parts.push(Buffer.from(await res.arrayBuffer()));
    }
    const file = Buffer.concat(parts);
    assert.deepEqual(file, rec.ogg);
    const pcm = decode(file);
    assert.ok(pcm.length >= 48000 * 5.5, `${pcm.length / 48} ms decoded`);
    const tone = goertzel(pcm, 700, 48000);
    const other = goertzel(pcm, 1100, 48000);
    assert.ok(10 * Math.log10(tone / other) > 30, `700 Hz is ${(10 * Math.log10(tone / other)).toFixed(1)} dB over 1100 Hz`);
    // And it is not another recording of the same user (each seeded with its own tone).
    const others = owner.recordings.slice(1);
    for (const o of others) assert.notDeepEqual(file, o.ogg);
  });

  test('416 with Content-Range bytes */size for a range that selects nothing; several ranges, If-Range or nonsense → 200 whole', async () => {
    const url = await issue();
    const size = rec.ogg.length;
    for (const range of [`bytes=${size}-`, `bytes=${size}-${size + 10}`, 'bytes=-0']) {
      const res = await get(url, range);
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get('content-range'), `bytes */${size}`);
      assert.equal(((await res.json()) as { code: string }).code, 'RANGE_NOT_SATISFIABLE');
    }
    for (const [range, extra] of [['bytes=0-9,20-29', {}], ['bytes=0-9', { 'if-range': '"x"' }], ['bytes=9-0', {}], ['chunks=0-1', {}]] as const) {
      const res = await get(url, range, extra);
      assert.equal(res.status, 200, range);
      assert.equal(res.headers.get('content-range'), null);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), rec.ogg, range);
    }
  });

  test('an incomplete recording (the service stopped mid-call) serves the chunks it has', async () => {
    const other = await rig.seedOwner('+15550200002', { calls: 1, seconds: 5, toneHz: 900 });
    const cut = other.recordings[0]!;
    const kept = cut.chunkCount - 2;
    let end = 0;
    for (let i = 0; i < kept; i++) end += inspectChunk(await rig.service.objects.get(objectKeys.chunk(cut.id, i))).length;
    // As after a crash: the tail (with the last-flagged chunk) never reached storage.
    for (let i = kept; i < cut.chunkCount; i++) await rig.service.objects.delete(objectKeys.chunk(cut.id, i));
    await rig.service.catalog.finish(cut.id, { state: 'incomplete', chunkCount: kept, durationMs: kept * 1000, talkMs: kept * 1000, failure: 'interrupted' });
    const res = await rig.request('POST', `/v1/recordings/${cut.id}/grants`, { token: other.token, body: { purpose: 'play' } });
    assert.equal(res.status, 201);
    const { url } = (await res.json()) as { url: string };
    const whole = await get(url);
    assert.equal(whole.status, 200);
    const file = Buffer.from(await whole.arrayBuffer());
    assert.deepEqual(file, cut.ogg.subarray(0, end));
    const pcm = decode(file);
    assert.ok(pcm.length >= 48000 * (kept - 0.5), `${pcm.length / 48} ms`);
    assert.ok(goertzel(pcm, 900, 48000) > 1000 * goertzel(pcm, 1300, 48000), 'its tone');
    const tail = await get(url, 'bytes=-50');
    assert.equal(tail.headers.get('content-range'), `bytes ${end - 50}-${end - 1}/${end}`);
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), cut.ogg.subarray(end - 50, end));
  });

  test('a chunk damaged in storage: the stream is cut where it lies, never with wrong bytes, and logged with its code', async () => {
    const victim = owner.recordings[1]!;
    const key = objectKeys.chunk(victim.id, 3);
    const good = await rig.service.objects.get(key);
    const bad = Buffer.from(good);
    bad[bad.length - 20] = (bad[bad.length - 20] as number) ^ 1;
    await rig.service.objects.put(key, bad);
    try {
      const url = await issue(victim.id);
      const res = await get(url);
      assert.equal(res.status, 200, 'the headers were sent before chunk 3 was reached');
      const received: Buffer[] = [];
      const reader = res.body!.getReader();
      await assert.rejects(
        (async () => {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            received.push(Buffer.from(value));
          }
        })(),
        'the body does not end cleanly',
      );
      const got = Buffer.concat(received);
      assert.ok(got.length < victim.ogg.length);
      assert.deepEqual(got, victim.ogg.subarray(0, got.length), 'what arrived is the true prefix');
      await until('the cut is logged with its code', () => logs.some((l) => l.code === 'CHUNK_TAMPERED' && l.recordingId === victim.id), 5000);

      // A range that does not touch chunk 3 is served (each chunk authenticates alone); one that starts in
      // it fails before any header is sent: a clean 500, not audio.
      const before = await get(url, `bytes=0-${boundaries[3]! - 1}`);
      assert.equal(before.status, 206);
      assert.deepEqual(Buffer.from(await before.arrayBuffer()), victim.ogg.subarray(0, boundaries[3]!));
      const inside = await get(url, `bytes=${boundaries[3]! + 1}-`);
      assert.equal(inside.status, 500);
      assert.equal(inside.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.equal(inside.headers.get('content-disposition'), null);
      assert.deepEqual(await inside.json(), { code: 'INTERNAL', message: 'internal error; the server logged it' });
    } finally {
      await rig.service.objects.put(key, good);
    }
  });

  test('a complete recording whose last chunk lacks the last flag is refused (500, logged CHUNK_TRUNCATED)', async () => {
    const victim = owner.recordings[2]!;
    const keyring = openKeyring(kekDir(rig.service.config), { create: false });
    const row = (await rig.service.catalog.get(victim.id))!;
    const secrets = decodeSecrets(keyring.unwrap({ kekId: row.kekId!, blob: row.wrappedKey! }, victim.id));
    // Re-seal every chunk with the recording's own key, none flagged last: authentic, but cut short.
    const sealer = new ChunkSealer(victim.id, secrets);
    let offset = 0;
    for (let i = 0; i < victim.chunkCount; i++) {
      const length = inspectChunk(await rig.service.objects.get(objectKeys.chunk(victim.id, i))).length;
      await rig.service.objects.put(objectKeys.chunk(victim.id, i), sealer.seal(victim.ogg.subarray(offset, offset + length), false).bytes);
      offset += length;
    }
    const url = await issue(victim.id);
    const res = await get(url);
    assert.equal(res.status, 500);
    assert.equal(((await res.json()) as { code: string }).code, 'INTERNAL');
    assert.ok(logs.some((l) => l.code === 'CHUNK_TRUNCATED' && l.recordingId === victim.id));
  });

  test('no key-encryption key: 503 NO_KEY, logged; the grant route still answers 404 to strangers first', async () => {
    const url = await issue();
    const dir = kekDir(rig.service.config);
    const kek = openKeyring(dir, { create: false }).currentId;
    renameSync(join(dir, `${kek}.key`), join(dir, `.${kek}.away`));
    try {
      const res = await get(url);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { code: string }).code, 'NO_KEY');
      assert.ok(logs.some((l) => l.code === 'NO_KEY' && l.recordingId === rec.id));
      const stranger = await rig.request('GET', `/v1/media/mlg_${randomBytes(32).toString('base64url')}`);
      assert.equal(stranger.status, 404);
    } finally {
      renameSync(join(dir, `.${kek}.away`), join(dir, `${kek}.key`));
    }
    assert.equal((await get(url, 'bytes=0-3')).status, 206, 'served again once the key is back');
  });
});
