import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFrameCache, type Span } from '../../src/recordings/media-stream.js';

const spans = (n: number): Span[] => [{ index: 0, key: `rec/r${n}/chunk-000000`, offset: 0, length: n, last: true }];

test('the frame cache is bounded and drops the least recently used recording first', () => {
  const c = createFrameCache(2);
  c.set('a', spans(1));
  c.set('b', spans(2));
  assert.deepEqual(c.get('a'), spans(1)); // a is now the most recent
  c.set('c', spans(3));
  assert.equal(c.get('b'), undefined, 'b was least recently used');
  assert.deepEqual(c.get('a'), spans(1));
  assert.deepEqual(c.get('c'), spans(3));
  c.delete('a');
  assert.equal(c.get('a'), undefined);
});
