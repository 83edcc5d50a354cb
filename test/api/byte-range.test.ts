import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/api/byte-range.js';

const none = { kind: 'none' };
const unsat = { kind: 'unsatisfiable' };
const r = (start: number, end: number) => ({ kind: 'range', start, end });

test('one range: a-b, a-, -n, clamped to the file (RFC 9110 §14.1.2)', () => {
  const size = 1000;
  const cases: Array<[string, unknown]> = [
    ['bytes=0-0', r(0, 0)],
    ['bytes=0-499', r(0, 499)],
    ['bytes=500-999', r(500, 999)],
    ['bytes=500-5000', r(500, 999)],
    ['bytes=999-', r(999, 999)],
    ['bytes=10-', r(10, 999)],
    ['bytes=-1', r(999, 999)],
    ['bytes=-500', r(500, 999)],
    ['bytes=-5000', r(0, 999)],
    ['BYTES=1-2', r(1, 2)],
    [' bytes= 1-2 ', r(1, 2)],
  ];
  for (const [h, want] of cases) assert.deepEqual(parseRange(h, size), want, h);
});

test('nothing selectable: 416', () => {
  for (const [h, size] of [['bytes=1000-', 1000], ['bytes=1000-1001', 1000], ['bytes=-0', 1000], ['bytes=0-', 0], ['bytes=-1', 0]] as const) {
    assert.deepEqual(parseRange(h, size), unsat, `${h} of ${size}`);
  }
});

test('ignored (the whole file): absent, unparsable, another unit, reversed, several ranges, absurd numbers', () => {
  for (const h of [undefined, '', 'bytes', 'bytes=', 'bytes=-', 'bytes=a-b', 'items=0-1', 'bytes=5-4', 'bytes=0-1,5-6', 'bytes=0-1, 5-6', 'bytes=1-2-3', 'bytes=+1-2', `bytes=${'9'.repeat(16)}-`, 'bytes=0x10-20']) {
    assert.deepEqual(parseRange(h, 1000), none, String(h));
  }
});
