/** RFC 4028 negotiation and the "does this SDP change the media" rule, as pure functions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { negotiateAsUas, negotiatedAsUac, sessionExpiresOf, unsupportedRequired } from '../../src/sip/session-timer.js';
import { changesMedia } from '../../src/sip/sdp-change.js';
import type { SipHeaders, SipRequest, SipResponse } from '../../src/sip/sip-types.js';

const CFG = { seconds: 1800, minSeconds: 90 };
const rq = (headers: SipHeaders): SipRequest => ({ method: 'INVITE', uri: 'sip:x@127.0.0.1', headers });
const rs = (headers: SipHeaders): SipResponse => ({ status: 200, reason: 'OK', headers });

test('Session-Expires parsing: value, refresher, compact form, garbage', () => {
  assert.deepEqual(sessionExpiresOf({ 'session-expires': '1800;refresher=uas' }), { seconds: 1800, refresher: 'uas' });
  assert.deepEqual(sessionExpiresOf({ x: ' 90 ; refresher = UAC' }), { seconds: 90, refresher: 'uac' });
  assert.deepEqual(sessionExpiresOf({ 'session-expires': '600' }), { seconds: 600 });
  assert.equal(sessionExpiresOf({ 'session-expires': 'soon' }), undefined);
  assert.equal(sessionExpiresOf({}), undefined);
});

test('UAS: 422 below our minimum; refresher as the UAC chose, else us; Require: timer only when the UAC supports it; intervals bounded', () => {
  assert.deepEqual(negotiateAsUas(rq({ 'session-expires': '30' }), CFG), { reject: { status: 422, headers: { 'Min-SE': '90' } } });
  const theirs = negotiateAsUas(rq({ 'session-expires': '90;refresher=uac', supported: 'timer' }), CFG);
  assert.deepEqual(theirs, { session: { seconds: 90, weRefresh: false }, headers: { 'session-expires': '90;refresher=uac', require: 'timer' } });
  const ours = negotiateAsUas(rq({ 'session-expires': '600', supported: 'timer' }), CFG);
  assert.ok('session' in ours && ours.session?.weRefresh === true && ours.session.seconds === 600);
  // Without `timer` in Supported the UAC cannot refresh, whatever it wrote.
  const unsupported = negotiateAsUas(rq({ 'session-expires': '600;refresher=uac' }), CFG);
  assert.ok('session' in unsupported && unsupported.session?.weRefresh === true && unsupported.headers.require === undefined);
  const huge = negotiateAsUas(rq({ 'session-expires': '999999999', 'min-se': '999999999', supported: 'timer' }), CFG);
  assert.ok('session' in huge && huge.session!.seconds === 86_400);
  assert.deepEqual(negotiateAsUas(rq({}), CFG), { session: undefined, headers: {} });
});

test('UAC: the 2xx names the refresher (absent: us); no Session-Expires, no timer; a tiny interval is raised to our minimum', () => {
  assert.deepEqual(negotiatedAsUac(rs({ 'session-expires': '900;refresher=uas' }), CFG), { seconds: 900, weRefresh: false });
  assert.deepEqual(negotiatedAsUac(rs({ 'session-expires': '900' }), CFG), { seconds: 900, weRefresh: true });
  assert.deepEqual(negotiatedAsUac(rs({ 'session-expires': '1;refresher=uac' }), CFG), { seconds: 90, weRefresh: true });
  assert.equal(negotiatedAsUac(rs({}), CFG), undefined);
});

test('Require: only timer and 100rel are ours', () => {
  assert.deepEqual(unsupportedRequired({ require: 'timer, 100rel' }), []);
  assert.deepEqual(unsupportedRequired({ require: 'Timer, precondition,foo' }), ['precondition', 'foo']);
});

test('an SDP changes the media only with a new o= version and different media', () => {
  const a = 'v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
  assert.equal(changesMedia(a, a.replace('s=-', 's=refresh')), false, 'same version');
  assert.equal(changesMedia(a, a.replace('o=x 1 1', 'o=x 1 2')), false, 'new version, same media');
  assert.equal(changesMedia(a, a.replace('o=x 1 1', 'o=x 1 2').replace('7000', '7002')), true, 'new port');
  assert.equal(changesMedia(a, a.replace('o=x 1 1', 'o=x 1 2') + 'a=sendonly\r\n'), true, 'hold');
  assert.equal(changesMedia(undefined, a), true);
  assert.equal(changesMedia(a, 'garbage'), true);
});
