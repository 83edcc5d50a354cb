import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sdpTransform from 'sdp-transform';
import { addBundle } from '../../src/media/sdp.js';

const RELAY_ANSWER = [
  'v=0',
  'o=- 1545997027 1 IN IP4 127.0.0.1',
  's=tester',
  't=0 0',
  'a=group:LS 0',
  'a=group:BUNDLE 7',
  'm=audio 30000 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 127.0.0.1',
  'a=rtpmap:111 opus/48000/2',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:0123456789abcdef012345',
  'a=fingerprint:sha-256 AA:BB',
  'a=setup:active',
  'a=sendrecv',
  'a=rtcp-mux',
  '',
].join('\r\n');

test('addBundle: a mid and one BUNDLE group naming it; other groups, lines and line breaks kept', () => {
  const out = addBundle(RELAY_ANSWER);
  const p = sdpTransform.parse(out);
  const m = p.media[0]!;
  assert.equal(String(m.mid), '0');
  assert.deepEqual(p.groups?.map((g) => `${g.type} ${g.mids}`).sort(), ['BUNDLE 0', 'LS 0']);
  assert.ok(out.endsWith('a=mid:0\r\n'), 'the mid ends the media section, before the final line break');
  assert.ok(!/[^\r]\n/.test(out), 'CRLF throughout');
  assert.equal(m.rtp[0]?.codec, 'opus');
  assert.equal(m.fingerprint?.hash, 'AA:BB');
  assert.equal(m.setup, 'active');
});

test('addBundle: an existing mid is kept, an empty one becomes 0; no m-line leaves the SDP as it was', () => {
  const withMid = RELAY_ANSWER.replace('a=rtcp-mux\r\n', 'a=rtcp-mux\r\na=mid:audio\r\n');
  assert.match(addBundle(withMid), /\r\na=group:BUNDLE audio\r\n/);
  assert.equal(addBundle(withMid).match(/a=mid:/g)?.length, 1);
  const emptyMid = RELAY_ANSWER.replace('a=rtcp-mux\r\n', 'a=mid:\r\na=rtcp-mux\r\n');
  assert.equal(sdpTransform.parse(addBundle(emptyMid)).media[0]?.mid, 0);
  const lf = RELAY_ANSWER.replace(/\r\n/g, '\n');
  assert.ok(!addBundle(lf).includes('\r'), 'LF in, LF out');
  const none = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
  assert.equal(addBundle(none), none);
});
