/**
 * ChunkOpener({ from }): a reader that starts mid-recording (an HTTP byte range) keeps every guarantee
 * for the chunks it opens: authenticated under this recording, index bound in the nonce, last flag bound,
 * order enforced from `from`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ChunkOpener, ChunkSealer, newRecordingSecrets, type RecordingSecrets } from '../../src/crypto/chunk-aead.js';

const A = 'rec_aaaaaaaaaaaaaaaa';
const B = 'rec_bbbbbbbbbbbbbbbb';

function sealed(id: string, s: RecordingSecrets, n: number) {
  const parts = Array.from({ length: n }, (_, i) => randomBytes(50 + i * 11));
  const sealer = new ChunkSealer(id, s);
  return { parts, chunks: parts.map((p, i) => sealer.seal(p, i === n - 1).bytes) };
}

const code = (expected: string) => (e: Error & { code?: string }) => {
  assert.equal(e.code, expected, `expected ${expected}, got ${e.code}: ${e.message}`);
  return true;
};

test('from the middle: opens chunk i and the ones after it, in order, to the last flag', () => {
  const s = newRecordingSecrets();
  const { parts, chunks } = sealed(A, s, 6);
  const o = new ChunkOpener(A, s, { from: 3 });
  assert.equal(o.nextIndex, 3);
  for (let i = 3; i < 6; i++) {
    const c = o.open(chunks[i]!);
    assert.equal(c.index, i);
    assert.deepEqual(c.plaintext, parts[i]);
    assert.equal(c.last, i === 5);
  }
  assert.equal(o.finished, true);
  o.finish();
});

test('from the middle: any chunk other than the expected one is refused, and the position holds', () => {
  const s = newRecordingSecrets();
  const { chunks } = sealed(A, s, 6);
  const o = new ChunkOpener(A, s, { from: 3 });
  assert.throws(() => o.open(chunks[2]!), code('CHUNK_OUT_OF_ORDER'), 'a chunk before the start');
  assert.throws(() => o.open(chunks[0]!), code('CHUNK_OUT_OF_ORDER'));
  assert.throws(() => o.open(chunks[4]!), code('CHUNK_OUT_OF_ORDER'), 'a chunk ahead');
  assert.equal(o.nextIndex, 3);
  o.open(chunks[3]!);
  assert.throws(() => o.open(chunks[3]!), code('CHUNK_DUPLICATE'), 'the same chunk twice');
});

test('from the middle: a header edited to claim the expected index does not authenticate (the index is in the nonce)', () => {
  const s = newRecordingSecrets();
  const { chunks } = sealed(A, s, 6);
  const moved = Buffer.from(chunks[4]!);
  moved.writeUInt32BE(3, 6);
  assert.throws(() => new ChunkOpener(A, s, { from: 3 }).open(moved), code('CHUNK_TAMPERED'));
});

test('from the middle: the last flag cannot be added or removed, and finish() needs it', () => {
  const s = newRecordingSecrets();
  const { chunks } = sealed(A, s, 4);
  const unflagged = Buffer.from(chunks[3]!);
  unflagged[5] = 0;
  assert.throws(() => new ChunkOpener(A, s, { from: 3 }).open(unflagged), code('CHUNK_TAMPERED'));
  const flagged = Buffer.from(chunks[2]!);
  flagged[5] = 1;
  assert.throws(() => new ChunkOpener(A, s, { from: 2 }).open(flagged), code('CHUNK_TAMPERED'));
  const o = new ChunkOpener(A, s, { from: 1 });
  o.open(chunks[1]!);
  o.open(chunks[2]!);
  assert.throws(() => o.finish(), code('CHUNK_TRUNCATED'), 'a range that stops short of the last chunk is not a whole stream');
  o.finish({ allowUnfinished: true });
  assert.throws(() => new ChunkOpener(A, s, { from: 2 }).finish(), code('CHUNK_TRUNCATED'));
});

test('from the middle: another recording’s chunk at the same index, or this chunk under another id, is refused', () => {
  const s = newRecordingSecrets();
  const { chunks } = sealed(A, s, 4);
  const other = sealed(B, s, 4).chunks;
  assert.throws(() => new ChunkOpener(A, s, { from: 2 }).open(other[2]!), code('CHUNK_FOREIGN'));
  assert.throws(() => new ChunkOpener(B, s, { from: 2 }).open(chunks[2]!), code('CHUNK_FOREIGN'));
  assert.throws(() => new ChunkOpener(A, newRecordingSecrets(), { from: 2 }).open(chunks[2]!), code('CHUNK_TAMPERED'), 'another key');
});

test('a start outside 0..2^32-1 is refused', () => {
  const s = newRecordingSecrets();
  for (const from of [-1, 1.5, 2 ** 32]) assert.throws(() => new ChunkOpener(A, s, { from }), code('CHUNK_LIMIT'));
});
