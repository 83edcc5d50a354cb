import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkSealer, newRecordingSecrets, openStream } from '../../src/crypto/chunk-aead.js';

const ID = 'rec_property';

/** Splits `data` at the given cut points (any order, duplicates allowed → empty chunks) and seals the parts. */
function sealAt(data: Uint8Array, cuts: number[]) {
  const s = newRecordingSecrets();
  const bounds = [0, ...cuts.map((c) => c % (data.length + 1)).sort((a, b) => a - b), data.length];
  const sealer = new ChunkSealer(ID, s);
  const chunks = bounds.slice(1).map((end, i) => sealer.seal(Buffer.from(data.subarray(bounds[i], end)), i === bounds.length - 2).bytes);
  return { s, chunks };
}

test('seal at random cut points, then openStream, round-trips exactly', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 * 1024, size: 'max' }), fc.array(fc.nat(), { maxLength: 15 }), (data, cuts) => {
      const { s, chunks } = sealAt(data, cuts);
      assert.equal(chunks.length, cuts.length + 1);
      assert.deepEqual(openStream(ID, s, chunks), Buffer.from(data));
    }),
    { numRuns: 100 },
  );
});

test('any non-identity permutation of two or more chunks fails', () => {
  const permuted = fc
    .integer({ min: 2, max: 12 })
    .chain((n) => fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n })))
    .filter(([, order]) => order.some((v, i) => v !== i));
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), permuted, (data, [n, order]) => {
      const cuts = Array.from({ length: n - 1 }, (_, i) => Math.floor((data.length * (i + 1)) / n));
      const { s, chunks } = sealAt(data, cuts);
      const shuffled = order.map((i) => chunks[i] as Buffer);
      assert.throws(
        () => openStream(ID, s, shuffled),
        (e: Error & { code?: string }) => e.code === 'CHUNK_OUT_OF_ORDER',
      );
      assert.throws(() => openStream(ID, s, shuffled, { allowUnfinished: true }), (e: Error & { code?: string }) => e.code === 'CHUNK_OUT_OF_ORDER');
    }),
    { numRuns: 100 },
  );
});
