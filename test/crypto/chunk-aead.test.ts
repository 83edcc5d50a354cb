import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  CHUNK_HEADER_BYTES,
  CHUNK_TAG_BYTES,
  ChunkOpener,
  ChunkSealer,
  decodeSecrets,
  encodeSecrets,
  inspectChunk,
  newRecordingSecrets,
  openStream,
  recordingDigest,
  type RecordingSecrets,
} from '../../src/crypto/chunk-aead.js';

const A = 'rec_aaaaaaaa';
const B = 'rec_bbbbbbbb';

function sealAll(id: string, s: RecordingSecrets, parts: Buffer[]): Buffer[] {
  const sealer = new ChunkSealer(id, s);
  return parts.map((p, i) => sealer.seal(p, i === parts.length - 1).bytes);
}

function fixture(n = 4) {
  const s = newRecordingSecrets();
  const parts = Array.from({ length: n }, (_, i) => randomBytes(100 + i * 37));
  return { s, parts, chunks: sealAll(A, s, parts), plain: Buffer.concat(parts) };
}

function fails(chunks: Buffer[], s: RecordingSecrets, expected: string, message?: RegExp, opts?: { allowUnfinished?: boolean }) {
  assert.throws(() => openStream(A, s, chunks, opts), (e: Error & { code?: string }) => {
    assert.equal(e.code, expected, `expected ${expected}, got ${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = (c[at] as number) ^ 0x01;
  return c;
}

test('round trip; nothing sealed starts with OggS or holds the plaintext', () => {
  const { s, chunks, plain, parts } = fixture();
  assert.deepEqual(openStream(A, s, chunks), plain);
  const ogg = Buffer.concat([Buffer.from('OggS'), randomBytes(60)]);
  const [sealed] = sealAll(A, s, [ogg]);
  assert.ok(sealed && !sealed.subarray(0, 4).equals(Buffer.from('OggS')) && sealed.indexOf(ogg) === -1);
  assert.equal(chunks[1]?.length, CHUNK_HEADER_BYTES + (parts[1]?.length ?? 0) + CHUNK_TAG_BYTES);
});

test('header layout: magic, version, flags, index, length, recording digest', () => {
  const { chunks, parts } = fixture(3);
  const c = chunks[2] as Buffer;
  assert.equal(c.subarray(0, 4).toString('ascii'), 'MLC1');
  assert.equal(c[4], 1);
  assert.equal(c[5], 1);
  assert.equal(c.readUInt32BE(6), 2);
  assert.equal(c.readUInt32BE(10), parts[2]?.length);
  assert.deepEqual(inspectChunk(c), { index: 2, last: true, length: parts[2]?.length, recordingDigest: recordingDigest(A), size: c.length });
  assert.equal(inspectChunk(chunks[0] as Buffer).last, false);
  assert.equal(recordingDigest(A).length, 16);
});

test('secrets encode to 55 bytes and back; wrong sizes are refused', () => {
  const s = newRecordingSecrets();
  const e = encodeSecrets(s);
  assert.equal(e.length, 55);
  assert.deepEqual(decodeSecrets(e), s);
  assert.throws(() => decodeSecrets(e.subarray(1)), /55 bytes/);
  assert.throws(() => new ChunkSealer(A, { ...s, noncePrefix: randomBytes(8) }), (err: Error & { code?: string }) => err.code === 'CHUNK_SECRETS_INVALID');
});

test('the sealer refuses to seal after the last chunk', () => {
  const sealer = new ChunkSealer(A, newRecordingSecrets());
  assert.equal(sealer.seal(Buffer.alloc(0), true).index, 0);
  assert.ok(sealer.finished);
  assert.throws(() => sealer.seal(Buffer.from('x'), false), (e: Error & { code?: string }) => e.code === 'CHUNK_SEALER_FINISHED');
});

test('swap and reorder → CHUNK_OUT_OF_ORDER', () => {
  const { s, chunks: [c0, c1, c2, c3] } = fixture();
  fails([c0, c2, c1, c3] as Buffer[], s, 'CHUNK_OUT_OF_ORDER', /expected chunk 1, got chunk 2/);
  fails([c0, c1, c3, c2] as Buffer[], s, 'CHUNK_OUT_OF_ORDER', /expected chunk 2, got chunk 3/);
  fails([c1, c0, c2, c3] as Buffer[], s, 'CHUNK_OUT_OF_ORDER', /expected chunk 0/);
});

test('drop → CHUNK_MISSING in the middle, CHUNK_TRUNCATED at the end', () => {
  const { s, chunks: [c0, c1, c2, c3] } = fixture();
  fails([c0, c2, c3] as Buffer[], s, 'CHUNK_MISSING', /chunk 1 is missing/);
  fails([c1, c2, c3] as Buffer[], s, 'CHUNK_MISSING', /chunk 0 is missing/);
  fails([c0, c1, c2] as Buffer[], s, 'CHUNK_TRUNCATED', /after chunk 2 without its last chunk/);
  fails([], s, 'CHUNK_TRUNCATED', /no chunks/);
});

test('duplicate → CHUNK_DUPLICATE, before or after the last chunk', () => {
  const { s, chunks: [c0, c1, c2, c3] } = fixture();
  fails([c0, c1, c1, c2, c3] as Buffer[], s, 'CHUNK_DUPLICATE', /chunk 1 arrived again/);
  fails([c0, c1, c2, c3, c3] as Buffer[], s, 'CHUNK_DUPLICATE', /chunk 3 arrived again/);
  fails([c0, c1, c2, c3, c0] as Buffer[], s, 'CHUNK_DUPLICATE', /chunk 0/);
});

test('truncation: bytes cut off a chunk, data after the last → CHUNK_TRUNCATED', () => {
  const { s, chunks: [c0, c1, c2, c3] } = fixture();
  const cut = (b: Buffer, n: number) => b.subarray(0, b.length - n);
  fails([c0, cut(c1 as Buffer, 1), c2, c3] as Buffer[], s, 'CHUNK_TRUNCATED', /chunk 1 is \d+ bytes, 1 short/);
  fails([c0, c1, c2, cut(c3 as Buffer, 40)] as Buffer[], s, 'CHUNK_TRUNCATED', /chunk 3/);
  fails([c0, (c1 as Buffer).subarray(0, 20), c2, c3] as Buffer[], s, 'CHUNK_TRUNCATED', /position 1.*shorter than a header/);
  fails([c0, c1, c2, c3, randomBytes(80)] as Buffer[], s, 'CHUNK_TRUNCATED', /follows the last chunk \(3\)/);
  // Two recordings' worth of chunks concatenated into one chunk: extra bytes, not a valid chunk.
  fails([c0, Buffer.concat([c1 as Buffer, c2 as Buffer]), c3] as Buffer[], s, 'CHUNK_TAMPERED', /more than its header declares/);
});

test('bit flips in header, nonce fields, ciphertext and tag → CHUNK_TAMPERED', () => {
  const { s, chunks } = fixture();
  const c1 = chunks[1] as Buffer;
  const at = (pos: number) => chunks.map((c, i) => (i === 1 ? flip(c1, pos) : c));
  const cases: Array<[string, number]> = [
    ['magic', 0],
    ['version', 4],
    ['last flag (in the nonce)', 5],
    ['index, low byte (in the nonce)', 9],
    ['index, high byte (in the nonce)', 6],
    ['length, low bit (declares less)', 13],
    ['first ciphertext byte', CHUNK_HEADER_BYTES],
    ['last ciphertext byte', c1.length - CHUNK_TAG_BYTES - 1],
    ['first tag byte', c1.length - CHUNK_TAG_BYTES],
    ['last tag byte', c1.length - 1],
  ];
  for (const [name, pos] of cases) {
    assert.throws(() => openStream(A, s, at(pos)), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CHUNK_TAMPERED', `${name}: got ${e.code}: ${e.message}`);
      return true;
    });
  }
  // A header rewritten to lie consistently (index 1 → 2, so ordering would look fine after a drop).
  const liar = Buffer.from(chunks[2] as Buffer);
  liar.writeUInt32BE(1, 6);
  fails([chunks[0], liar, chunks[3]] as Buffer[], s, 'CHUNK_TAMPERED', /position 1/);
  // Un-setting the last flag to splice more data on: the chunk no longer authenticates.
  const unlast = Buffer.from(chunks[3] as Buffer);
  unlast[5] = 0;
  fails([chunks[0], chunks[1], chunks[2], unlast] as Buffer[], s, 'CHUNK_TAMPERED');
  // Setting the last flag on a middle chunk to truncate there.
  const fakeLast = Buffer.from(chunks[1] as Buffer);
  fakeLast[5] = 1;
  fails([chunks[0], fakeLast] as Buffer[], s, 'CHUNK_TAMPERED', undefined, { allowUnfinished: true });
  // The recording digest is the one header field read before authentication: editing it reads as foreign.
  fails(at(14), s, 'CHUNK_FOREIGN');
});

test('cross-recording substitution (same index) → CHUNK_FOREIGN; same id, other secrets → CHUNK_TAMPERED', () => {
  const a = fixture();
  const bSecrets = newRecordingSecrets();
  const bChunks = sealAll(B, bSecrets, a.parts);
  const mixed = a.chunks.map((c, i) => (i === 2 ? (bChunks[2] as Buffer) : c));
  fails(mixed, a.s, 'CHUNK_FOREIGN', /position 2.*another recording/);
  // Even with B sealed under A's own secrets, B's id is in the associated data.
  const bSameSecrets = sealAll(B, a.s, a.parts);
  fails(a.chunks.map((c, i) => (i === 1 ? (bSameSecrets[1] as Buffer) : c)), a.s, 'CHUNK_FOREIGN');
  // A chunk of another recording of A's id (a re-recording with fresh secrets) cannot authenticate.
  const again = sealAll(A, newRecordingSecrets(), a.parts);
  fails(a.chunks.map((c, i) => (i === 1 ? (again[1] as Buffer) : c)), a.s, 'CHUNK_TAMPERED');
  // Opening B's whole stream as A.
  fails(bChunks, a.s, 'CHUNK_FOREIGN');
});

test('allowUnfinished accepts a missing final chunk, still rejects a gap, a swap or a flip', () => {
  const { s, parts, chunks: [c0, c1, c2, c3] } = fixture();
  const opts = { allowUnfinished: true };
  assert.deepEqual(openStream(A, s, [c0, c1, c2] as Buffer[], opts), Buffer.concat(parts.slice(0, 3)));
  assert.deepEqual(openStream(A, s, [c0, c1, c2, c3] as Buffer[], opts), Buffer.concat(parts));
  assert.deepEqual(openStream(A, s, [], opts), Buffer.alloc(0));
  fails([c0, c2] as Buffer[], s, 'CHUNK_MISSING', /chunk 1/, opts);
  fails([c0, c2, c1] as Buffer[], s, 'CHUNK_OUT_OF_ORDER', undefined, opts);
  fails([c0, flip(c1 as Buffer, 30)] as Buffer[], s, 'CHUNK_TAMPERED', undefined, opts);
});

test('ChunkOpener: incremental, a rejected chunk leaves the position unchanged', () => {
  const { s, parts, chunks: [c0, c1, c2, c3] } = fixture();
  const o = new ChunkOpener(A, s);
  assert.deepEqual(o.open(c0 as Buffer), { index: 0, last: false, plaintext: parts[0] });
  assert.throws(() => o.open(c2 as Buffer), (e: Error & { code?: string }) => e.code === 'CHUNK_OUT_OF_ORDER');
  assert.throws(() => o.open(c0 as Buffer), (e: Error & { code?: string }) => e.code === 'CHUNK_DUPLICATE');
  assert.equal(o.nextIndex, 1);
  o.open(c1 as Buffer);
  o.open(c2 as Buffer);
  assert.throws(() => o.finish(), (e: Error & { code?: string }) => e.code === 'CHUNK_TRUNCATED');
  o.finish({ allowUnfinished: true });
  assert.equal(o.finished, false);
  assert.equal(o.open(c3 as Buffer).last, true);
  assert.ok(o.finished);
  o.finish();
  assert.throws(() => o.open(c3 as Buffer), (e: Error & { code?: string }) => e.code === 'CHUNK_DUPLICATE');
});
