import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientMessage } from '../../src/signaling/protocol.js';

test('recording.pause / recording.resume parse, with a callId and nothing else', () => {
  for (const type of ['recording.pause', 'recording.resume']) {
    const ok = parseClientMessage(JSON.stringify({ type, callId: 'call_1' }));
    assert.deepEqual(ok, { ok: true, message: { type, callId: 'call_1' } });
    for (const [bad, where] of [
      [{ type }, /callId/],
      [{ type, callId: '' }, /callId/],
      [{ type, callId: 'c'.repeat(65) }, /callId/],
      [{ type, callId: 5 }, /callId/],
      [{ type, callId: 'call_1', behavior: 'skip' }, /./],
    ] as const) {
      const r = parseClientMessage(JSON.stringify(bad));
      assert.equal(r.ok, false, JSON.stringify(bad));
      if (!r.ok) {
        assert.equal(r.code, 'BAD_MESSAGE');
        assert.match(r.message, where);
      }
    }
  }
});
