/**
 * Requests inside a dialog, reliable provisionals (RFC 3262) and challenged in-dialog requests, from
 * the trunk's side with real sipp; plus the INVITE checks that need no dialog (420, dialled number).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSipp } from '../helpers/sipp.js';
import { ANSWER, CALL, cleanupsAfterAll, dialAndHangUp, inboundRecorder, outboundRecorder, SDP, startEndpoint } from './harness.js';
import { firstLine, rawInvite, request, statusOf, udpExchange, udpPeer } from './raw.js';


const cleanups = cleanupsAfterAll();

describe('in-dialog requests, PRACK, challenges', { concurrency: true }, () => {
  test('inbound: INFO → 200, in-dialog OPTIONS → 200 (Allow has UPDATE), NOTIFY → 501, stale CSeq → 500, re-INVITE without SDP → our offer, answer in the ACK → remoteOffer, BYE, OPTIONS after → 481', async () => {
    const rec = inboundRecorder((_o, leg) => leg.answer(ANSWER));
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const res = await startSipp({ scenario: 'uac-indialog', port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111', keys: { rtp_port2: '42040' } }).done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    const ended = await rec.waitFor((e) => e.type === 'ended');
    assert.equal(ended.type === 'ended' && ended.reason, 'remote-hangup');
    const offers = rec.events.flatMap((e) => (e.type === 'reoffer' ? [e.sdp] : []));
    assert.equal(offers.length, 1, 'the ACK\'s answer changed the media, and only it reached the call');
    assert.match(offers[0]!, /m=audio 42040 /);
  });

  test('inbound: Require: 100rel → our 180 goes reliably (RSeq), the 200 waits for its PRACK', async () => {
    const rec = inboundRecorder((_o, leg) => { leg.ringing(); leg.answer(ANSWER); });
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const res = await startSipp({ scenario: 'uac-100rel', port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111' }).done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    await rec.waitFor((e) => e.type === 'ended');
    assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'confirmed', 'ended']);
  });

  test('inbound: our reliable 180 never PRACKed → resent with T1 doubling, then 504 at 64×T1 and the call ends unconfirmed', async () => {
    const rec = inboundRecorder((_o, leg) => { leg.ringing(); leg.answer(ANSWER); });
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const peer = await udpPeer('127.0.0.1');
    cleanups.push(() => peer.close());
    const started = Date.now();
    await peer.send(rawInvite({ port: t.port, callId: `prack-${Date.now()}@test`, fromTag: 'np1', via: { host: '127.0.0.1', port: peer.port } }, { headers: ['Require: 100rel'] }), t.port);
    const final = await peer.waitFor('504', (m) => statusOf(m) === 504, 40_000);
    const ms = Date.now() - started;
    assert.ok(ms >= 31_000, `504 after ${ms} ms`);
    assert.match(final, /^SIP\/2\.0 504 /);
    const ringing = peer.received.filter((m) => statusOf(m) === 180);
    // sent at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: 7 copies (6 if the last one races the 504)
    assert.ok(ringing.length >= 6 && ringing.length <= 7, `${ringing.length} copies of the 180: ${peer.received.map(firstLine).join(' | ')}`);
    assert.ok(ringing.every((m) => /^RSeq: \d+\r$/m.test(m) && /^Require: 100rel\r$/m.test(m)));
    assert.equal(peer.received.filter((m) => statusOf(m) === 200).length, 0, 'no 200 before a PRACK');
    assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'unconfirmed']);
    assert.equal(t.ep.activeCalls, 0);
  });

  test('outbound: reliable 180 (Require: 100rel, RSeq) → one PRACK with RAck, none for its retransmission', async () => {
    const { result: res, events } = await dialAndHangUp(cleanups, 'uas-100rel');
    assert.equal(res.code, 0, res.errors + res.stderr);
    assert.deepEqual(events.map((e) => e.type), ['ringing', 'answered']);
  });

  test('outbound: challenged INVITE → the ACK of its 2xx carries the credentials; our BYE challenged 401 → resent with credentials → 200', async () => {
    const { t, result: res } = await dialAndHangUp(cleanups, 'uas-auth-dialog');
    assert.equal(res.code, 0, res.errors + res.stderr);
    assert.equal(res.successful, 1);
    assert.equal(t.ep.activeCalls, 0);
  });

  test('INVITE with Require of an extension we lack → 420 with Unsupported; Require: timer, 100rel is fine', async () => {
    const rec = inboundRecorder((_o, leg) => leg.reject('busy'));
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const bad = await udpExchange(t.port, request('INVITE', t.port, { body: SDP, headers: 'Content-Type: application/sdp\r\nRequire: timer, foo, precondition' }));
    assert.equal(statusOf(bad.at(-1)), 420);
    assert.match(bad.at(-1)!, /^Unsupported: foo, precondition\r$/m);
    const ok = await udpExchange(t.port, request('INVITE', t.port, { body: SDP, headers: 'Content-Type: application/sdp\r\nRequire: timer, 100rel\r\nSupported: timer\r\nSession-Expires: 1800' }));
    assert.deepEqual(ok.map(statusOf), [100, 486]);
    assert.equal(rec.events.length, 1);
  });

  test('the dialled number comes from the Request-URI; To (the original number on a forwarded call) only when the Request-URI has none', async () => {
    const rec = inboundRecorder((_o, leg) => leg.reject('busy'));
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const forwarded = request('INVITE', t.port, { body: SDP, headers: 'Content-Type: application/sdp' }).replace(/^To: <sip:\+15550001111@/m, 'To: <sip:+15550009999@');
    assert.equal(statusOf((await udpExchange(t.port, forwarded)).at(-1)), 486);
    const noNumber = request('INVITE', t.port, { body: SDP, headers: 'Content-Type: application/sdp' }).replace(/^INVITE sip:\+15550001111@/, 'INVITE sip:trunk@').replace(/^To: <sip:\+15550001111@/m, 'To: <sip:+15550007777@');
    assert.equal(statusOf((await udpExchange(t.port, noNumber)).at(-1)), 486);
    const dialled = rec.events.flatMap((e) => (e.type === 'offer' ? [e.offer.to] : []));
    assert.deepEqual(dialled, ['+15550001111', '+15550007777']);
  });
});
