import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSipp } from '../helpers/sipp.js';
import { ANSWER, cleanupsAfterAll, inboundRecorder, outboundRecorder, sleep, startEndpoint } from './harness.js';
import { request, statusOf, udpExchange } from './raw.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n';
const cleanups = cleanupsAfterAll();

describe('inbound calls from sipp', { concurrency: true }, () => {
  for (const transport of ['u1', 't1'] as const) {
    test(`${transport}: INVITE → handler → 180/200 → ACK → BYE from sipp → ended()`, async () => {
      const rec = inboundRecorder((_offer, leg) => { leg.ringing(); setTimeout(() => leg.answer(ANSWER), 50); });
      const t = await startEndpoint(rec.handler);
      cleanups.push(() => t.ep.close());
      const res = await startSipp({
        scenario: 'uac-call', port: t.sippPort, remote: `127.0.0.1:${t.port}`, transport,
        service: '+15550001111', pauseMs: 200, keys: { rtp_port: '42000', caller: '+447700900123' },
      }).done;
      assert.equal(res.code, 0, res.errors + res.stderr);
      const offer = await rec.waitFor((e) => e.type === 'offer');
      assert.ok(offer.type === 'offer');
      assert.equal(offer.offer.to, '+15550001111');
      assert.equal(offer.offer.from, '+447700900123');
      assert.match(offer.offer.sdp, /m=audio 42000 /);
      await rec.waitFor((e) => e.type === 'ended');
      assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'confirmed', 'ended']);
      assert.equal(t.ep.activeCalls, 0);
    });
  }

  test('we hang up an answered inbound call (BYE after ACK)', async () => {
    const rec = inboundRecorder((_o, leg) => { leg.answer(ANSWER); setTimeout(() => leg.end(), 100); });
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    // sipp expects to send BYE itself; our BYE arrives first, so the call counts as failed on sipp's side,
    // but sipp must have received a BYE (visible as an unexpected message) and we emit no event.
    const res = await startSipp({ scenario: 'uac-call', port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111', pauseMs: 2000 }).done;
    assert.match(res.errors, /BYE/);
    assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'confirmed']);
  });

  test('CANCEL → cancelled() and 487', async () => {
    const rec = inboundRecorder((_o, leg) => leg.ringing());
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const res = await startSipp({ scenario: 'uac-cancel', port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111' }).done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    await rec.waitFor((e) => e.type === 'cancelled');
    assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'cancelled']);
    assert.equal(t.ep.activeCalls, 0);
  });

  test('INVITE from a source not allowed → no answer at all, handler not called', async () => {
    const rec = inboundRecorder(() => assert.fail('handler called'));
    // The trunk's own host is always allowed: move it off 127.0.0.1 for this one.
    const t = await startEndpoint(rec.handler, { allowedSources: ['192.0.2.10'], trunkHost: '127.0.0.2' });
    cleanups.push(() => t.ep.close());
    const got = await udpExchange(t.port, request('INVITE', t.port, { body: OFFER, headers: 'Content-Type: application/sdp' }), 1200);
    assert.deepEqual(got, []);
    assert.equal(t.ep.dropped['source-not-allowed'], 1);
    assert.deepEqual(rec.events, []);
  });

  test('INVITE to an unparseable number → 404; without SDP → 488; reject(486) → 486', async () => {
    const rec = inboundRecorder((_o, leg) => leg.reject('busy'));
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const bad = request('INVITE', t.port, { body: OFFER, headers: 'Content-Type: application/sdp' }).replace(/^To: <sip:\+15550001111@/m, 'To: <sip:alice@').replace(/^INVITE sip:\+15550001111@/, 'INVITE sip:bob@');
    assert.equal(statusOf((await udpExchange(t.port, bad)).at(-1)), 404);
    assert.equal(statusOf((await udpExchange(t.port, request('INVITE', t.port))).at(-1)), 488);
    const got = await udpExchange(t.port, request('INVITE', t.port, { body: OFFER, headers: 'Content-Type: application/sdp' }));
    assert.deepEqual(got.map(statusOf), [100, 486]);
  });

  test('OPTIONS → 200; BYE/CANCEL for unknown dialog → 481; drain → 503', async () => {
    const rec = inboundRecorder(() => {});
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const opt = await udpExchange(t.port, request('OPTIONS', t.port));
    assert.equal(statusOf(opt[0]), 200);
    assert.match(opt[0]!, /^Allow: .*INVITE/m);
    assert.equal(statusOf((await udpExchange(t.port, request('BYE', t.port, { toTag: 'nope' })))[0]), 481);
    assert.equal(statusOf((await udpExchange(t.port, request('CANCEL', t.port)))[0]), 481);
    t.ep.drain();
    const got = await udpExchange(t.port, request('INVITE', t.port, { body: OFFER, headers: 'Content-Type: application/sdp' }));
    assert.equal(statusOf(got.at(-1)), 503);
    assert.deepEqual(rec.events, []);
  });
});

describe('10% loss (sipp -lost 10)', { concurrency: true }, () => {
  const CALLS = 30;

  test(`${CALLS} inbound calls all complete`, async () => {
    const rec = inboundRecorder((_o, leg) => { leg.ringing(); leg.answer(ANSWER); });
    const t = await startEndpoint(rec.handler);
    cleanups.push(() => t.ep.close());
    const res = await startSipp({
      scenario: 'uac-call', port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111',
      calls: CALLS, rate: 15, limit: 30, lost: 10, pauseMs: 500, timeoutMs: 90_000,
    }).done;
    assert.equal(res.code, 0, `sipp: ${res.successful} ok, ${res.failed} failed\n${res.errors.slice(0, 3000)}`);
    assert.equal(res.successful, CALLS);
    await sleep(1000);
    assert.equal(rec.events.filter((e) => e.type === 'offer').length, CALLS);
    // A lost ACK is recovered by our retransmitted 200 (sipp ACKs it again), so nearly every call is
    // confirmed; only a call whose BYE (500 ms after its lost ACK) beats the re-ACK ends unconfirmed,
    // and it ends by that BYE, never by Timer H.
    const confirmed = rec.events.filter((e) => e.type === 'confirmed').length;
    assert.ok(confirmed >= CALLS * 0.7, `${confirmed} of ${CALLS} confirmed`);
    assert.equal(rec.events.filter((e) => e.type === 'unconfirmed').length, 0);
    assert.equal(rec.events.filter((e) => e.type === 'ended').length, CALLS);
  });

  test(`${CALLS} outbound calls with digest auth all complete`, async () => {
    const t = await startEndpoint(() => assert.fail('no inbound expected'), { inviteTimeoutMs: 40_000 });
    cleanups.push(() => t.ep.close());
    const run = startSipp({ scenario: 'uas-401-answer', port: t.sippPort, remote: `127.0.0.1:${t.port}`, calls: CALLS, lost: 10, timeoutMs: 90_000 });
    cleanups.push(() => run.kill());
    await run.ready;
    const listeners = Array.from({ length: CALLS }, () => outboundRecorder());
    const legs = listeners.map((l, i) => {
      const leg = t.ep.trunk.dial({ to: `+1555000${String(1000 + i)}`, from: '+15550002222', sdp: OFFER }, l);
      return { leg, l };
    });
    await Promise.all(legs.map(async ({ leg, l }) => {
      await l.waitFor((e) => e.type === 'answered' || e.type === 'failed', 60_000);
      leg.end();
    }));
    const answered = listeners.filter((l) => l.events.some((e) => e.type === 'answered')).length;
    const res = await run.done;
    assert.equal(answered, CALLS, JSON.stringify(listeners.map((l) => l.events.map((e) => e.type))));
    assert.equal(res.code, 0, `sipp: ${res.successful} ok, ${res.failed} failed\n${res.errors.slice(0, 3000)}`);
  });
});
