import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientMessage } from '../../src/signaling/protocol.js';

test('valid client messages parse', () => {
  for (const m of [
    { type: 'auth', token: 'mlt_x' },
    { type: 'call.start', ref: 'r1', to: '+15550001111', sdp: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n' },
    { type: 'call.hangup', callId: 'call_1' },
    { type: 'call.accept', callId: 'call_1', sdp: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n' },
    { type: 'call.reject', callId: 'call_1' },
    { type: 'call.dtmf', callId: 'call_1', digits: '0123456789*#ABCD' },
    { type: 'call.dtmf', callId: 'call_1', digits: '1'.repeat(32) },
    { type: 'ping' },
  ]) {
    const r = parseClientMessage(JSON.stringify(m));
    assert.equal(r.ok, true, JSON.stringify(m));
  }
});

test('bad client messages get a code and a useful message', () => {
  const cases: Array<[string, string, RegExp?]> = [
    ['not json', 'BAD_JSON'],
    ['[1,2]', 'BAD_MESSAGE'],
    ['"str"', 'BAD_MESSAGE'],
    ['{"type":"nope"}', 'UNKNOWN_TYPE', /nope/],
    ['{}', 'UNKNOWN_TYPE'],
    ['{"type":"call.start","ref":"r","to":"+1555"}', 'BAD_MESSAGE', /sdp/],
    ['{"type":"call.hangup"}', 'BAD_MESSAGE', /callId/],
    ['{"type":"ping","extra":1}', 'BAD_MESSAGE'],
    [JSON.stringify({ type: 'auth', token: 'x'.repeat(300) }), 'BAD_MESSAGE', /token/],
    // DTMF: only RFC 4733 events 0-15, at least one, at most 32 per message.
    ['{"type":"call.dtmf","callId":"c","digits":"12e"}', 'BAD_MESSAGE', /digits/],
    ['{"type":"call.dtmf","callId":"c","digits":"1 2"}', 'BAD_MESSAGE', /digits/],
    ['{"type":"call.dtmf","callId":"c","digits":"abcd"}', 'BAD_MESSAGE', /digits/],
    ['{"type":"call.dtmf","callId":"c","digits":""}', 'BAD_MESSAGE', /digits/],
    [JSON.stringify({ type: 'call.dtmf', callId: 'c', digits: '1'.repeat(33) }), 'BAD_MESSAGE', /digits/],
    ['{"type":"call.dtmf","callId":"c","digits":5}', 'BAD_MESSAGE', /digits/],
    ['{"type":"call.dtmf","digits":"5"}', 'BAD_MESSAGE', /callId/],
    ['{"type":"call.dtmf","callId":"c","digits":"5","tone":1}', 'BAD_MESSAGE'],
  ];
  for (const [text, code, re] of cases) {
    const r = parseClientMessage(text);
    assert.equal(r.ok, false, text);
    if (!r.ok) {
      assert.equal(r.code, code, text);
      if (re) assert.match(r.message, re);
    }
  }
  const withRef = parseClientMessage('{"type":"call.start","ref":"abc","to":5}');
  assert.equal(!withRef.ok && withRef.ref, 'abc');
});
