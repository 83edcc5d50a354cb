/** The SDP direction rules the relay answers mid-call offers with, and the hold test the switchboard uses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerDirection, isHold, mediaFlow, withDirection, withSettledDtlsRole } from '../../src/media/sdp.js';

function sdp(opts: { ip?: string; media?: string; session?: string } = {}): string {
  return [
    'v=0',
    'o=trunk 1 2 IN IP4 127.0.0.1',
    's=-',
    `c=IN IP4 ${opts.ip ?? '127.0.0.1'}`,
    't=0 0',
    ...(opts.session ? [`a=${opts.session}`] : []),
    'm=audio 4000 RTP/AVP 0',
    'a=rtpmap:0 PCMU/8000',
    ...(opts.media ? [`a=${opts.media}`] : []),
    '',
  ].join('\r\n');
}

test('RFC 3264 answer directions, media level over session level, sendrecv by default', () => {
  const cases: [string, Parameters<typeof sdp>[0], string, string, boolean][] = [
    ['sendrecv', { media: 'sendrecv' }, 'sendrecv', 'sendrecv', false],
    ['none', {}, 'sendrecv', 'sendrecv', false],
    ['sendonly', { media: 'sendonly' }, 'sendonly', 'recvonly', true],
    ['recvonly', { media: 'recvonly' }, 'recvonly', 'sendonly', false],
    ['inactive', { media: 'inactive' }, 'inactive', 'inactive', true],
    ['session sendonly', { session: 'sendonly' }, 'sendonly', 'recvonly', true],
    ['media beats session', { session: 'inactive', media: 'sendrecv' }, 'sendrecv', 'sendrecv', false],
    ['c=0.0.0.0 (RFC 2543 hold)', { ip: '0.0.0.0' }, 'sendonly', 'recvonly', true],
    ['c=0.0.0.0 and recvonly', { ip: '0.0.0.0', media: 'recvonly' }, 'inactive', 'inactive', true],
  ];
  for (const [name, o, flow, answer, hold] of cases) {
    assert.equal(mediaFlow(sdp(o)), flow, `${name}: flow`);
    assert.equal(answerDirection(sdp(o)), answer, `${name}: answer`);
    assert.equal(isHold(sdp(o)), hold, `${name}: hold`);
  }
});

test('withDirection sets the media line and drops a contradicting session attribute', () => {
  const out = withDirection(sdp({ session: 'sendonly', media: 'sendrecv' }), 'recvonly');
  assert.equal(mediaFlow(out), 'recvonly');
  assert.equal(out.match(/a=(sendrecv|sendonly|recvonly|inactive)/g)?.length, 1, out);
});

test('withSettledDtlsRole: actpass becomes the role opposite the relay answer', () => {
  const offer = sdp({ media: 'setup:actpass' });
  assert.match(withSettledDtlsRole(offer, sdp({ media: 'setup:passive' })), /a=setup:active/);
  assert.match(withSettledDtlsRole(offer, sdp({ media: 'setup:active' })), /a=setup:passive/);
  assert.equal(withSettledDtlsRole(offer, sdp()), offer, 'no role in the answer: unchanged');
});
