import { test } from 'node:test';
import assert from 'node:assert/strict';
import { publicRandomBytes, publicRandomHex } from '../../src/crypto/random-pool.js';

test('pooled random values are distinct, the asked length, and never rewritten by later draws', () => {
  const first = publicRandomBytes(16);
  const kept = Buffer.from(first);
  const seen = new Set<string>([kept.toString('hex')]);
  // Several pool refills (4 KiB each): every value is new and the first one is untouched.
  for (let i = 0; i < 2000; i++) {
    const v = publicRandomBytes(16);
    assert.equal(v.length, 16);
    const hex = v.toString('hex');
    assert.ok(!seen.has(hex), 'no value repeats');
    seen.add(hex);
  }
  assert.deepEqual(first, kept, 'a refill allocates a new pool instead of overwriting the old one');
  assert.match(publicRandomHex(12), /^[0-9a-f]{24}$/);
  assert.equal(publicRandomBytes(0).length, 0);
  assert.equal(publicRandomBytes(1000).length, 1000, 'large requests bypass the pool');
});

test('pooled random bytes look uniform: every byte value turns up, none far too often', () => {
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < 4096; i++) for (const b of publicRandomBytes(32)) counts[b]!++;
  // 131,072 bytes: 512 expected per value; a CSPRNG stays well inside ±25% (about 11 standard deviations).
  assert.ok(Math.min(...counts) > 384 && Math.max(...counts) < 640, `${Math.min(...counts)}..${Math.max(...counts)}`);
});

test('a byte count that is not a non-negative integer is refused', () => {
  assert.throws(() => publicRandomBytes(-1), RangeError);
  assert.throws(() => publicRandomBytes(1.5), RangeError);
});
