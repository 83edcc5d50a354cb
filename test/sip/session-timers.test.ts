/**
 * RFC 4028 session timers against real sipp, with short intervals (our minimum lowered to 2 s) so the
 * mechanics run in seconds; test/e2e/session-timers.test.ts runs the real 90 s intervals with media.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSipp } from '../helpers/sipp.js';
import { ANSWER, CALL, cleanupsAfterAll, inboundRecorder, outboundRecorder, SDP, startEndpoint, type TestEndpoint } from './harness.js';
import { request, statusOf, udpExchange } from './raw.js';

const SHORT = { seconds: 1800, minSeconds: 2 };

const cleanups = cleanupsAfterAll();

async function outbound(scenario: string, keys: Record<string, string>) {
  const t = await startEndpoint(() => { throw new Error('no inbound expected'); }, { sessionTimers: SHORT });
  cleanups.push(() => t.ep.close());
  const run = startSipp({ scenario, port: t.sippPort, remote: `127.0.0.1:${t.port}`, keys, timeoutMs: 30_000 });
  cleanups.push(() => run.kill());
  await run.ready;
  const l = outboundRecorder();
  const leg = t.ep.trunk.dial(CALL, l);
  return { t, run, l, leg };
}

async function inbound(scenario: string, keys: Record<string, string>): Promise<{ t: TestEndpoint; rec: ReturnType<typeof inboundRecorder>; res: Awaited<ReturnType<typeof startSipp>['done']> }> {
  const rec = inboundRecorder((_o, leg) => leg.answer(ANSWER));
  const t = await startEndpoint(rec.handler, { sessionTimers: SHORT });
  cleanups.push(() => t.ep.close());
  const res = await startSipp({ scenario, port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111', keys, timeoutMs: 30_000 }).done;
  return { t, rec, res };
}

describe('session timers (RFC 4028), short intervals', { concurrency: true }, () => {
  test('outbound, trunk says refresher=uac: we refresh by UPDATE at half the interval, twice; the call lives on', async () => {
    const { t, run, l } = await outbound('uas-refresh-update', { se: '4' });
    const res = await run.done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    const ended = await l.waitFor((e) => e.type === 'ended');
    assert.deepEqual(ended, { type: 'ended', reason: 'remote-hangup' });
    assert.equal(t.ep.activeCalls, 0);
  });

  test('outbound, no UPDATE in the trunk\'s Allow: refresh by re-INVITE with our SDP unchanged; its 491 is retried after the §14.1 delay', async () => {
    const { run, l } = await outbound('uas-refresh-glare', { se: '10' });
    const res = await run.done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    await l.waitFor((e) => e.type === 'ended');
    assert.deepEqual(l.events.map((e) => e.type), ['answered', 'ended']);
  });

  test('outbound: the trunk\'s re-INVITE while our refresh re-INVITE is pending → 491; ours then completes', async () => {
    const { run, l } = await outbound('uas-glare', { se: '6' });
    const res = await run.done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    await l.waitFor((e) => e.type === 'ended');
    assert.deepEqual(l.events.map((e) => e.type), ['answered', 'ended'], 'the glaring offer never reached the call');
  });

  for (const refresher of ['uas', 'uac'] as const) {
    test(`outbound, refresher=${refresher} and ${refresher === 'uas' ? 'the trunk never refreshes' : 'our UPDATE is never answered'}: BYE with Reason, ended('session-expired')`, async () => {
      const started = Date.now();
      const { t, run, l } = await outbound('uas-refresh-expires', { se: '4', refresher });
      const ended = await l.waitFor((e) => e.type === 'ended', 15_000);
      const ms = Date.now() - started;
      assert.deepEqual(ended, { type: 'ended', reason: 'session-expired' });
      // uas: 4 s − min(32, 4/3) ≈ 2.7 s; uac: refresh at 2 s, no answer by 4 s.
      assert.ok(ms >= 2000 && ms < 8000, `ended after ${ms} ms`);
      const res = await run.done;
      assert.equal(res.code, 0, res.errors + res.stderr);
      assert.equal(t.ep.activeCalls, 0);
    });
  }

  test('inbound, Session-Expires without refresher: we pick uas (us), say so in the 200 and refresh by UPDATE', async () => {
    const { t, rec, res } = await inbound('uac-we-refresh', { se: '4' });
    assert.equal(res.code, 0, res.errors + res.stderr);
    const ended = await rec.waitFor((e) => e.type === 'ended');
    assert.equal(ended.type === 'ended' && ended.reason, 'remote-hangup');
    assert.equal(t.ep.activeCalls, 0);
  });

  test('inbound, refresher=uac and the trunk never refreshes: BYE with Reason before expiry, ended(\'session-expired\')', async () => {
    const { rec, res } = await inbound('uac-no-refresh', { se: '4' });
    assert.equal(res.code, 0, res.errors + res.stderr);
    const ended = await rec.waitFor((e) => e.type === 'ended');
    assert.equal(ended.type === 'ended' && ended.reason, 'session-expired');
  });

  test('outbound, the trunk answers 422 with Min-SE → INVITE resent once with that interval, then answered', async () => {
    const { run, l, leg } = await outbound('uas-422', {});
    await l.waitFor((e) => e.type === 'answered');
    leg.end();
    const res = await run.done;
    assert.equal(res.code, 0, res.errors + res.stderr);
    assert.deepEqual(l.events.map((e) => e.type), ['answered']);
  });

  test('inbound, Session-Expires below our minimum → 422 with Min-SE, handler not called', async () => {
    const rec = inboundRecorder(() => assert.fail('handler called'));
    const t = await startEndpoint(rec.handler); // default minimum: 90 s
    cleanups.push(() => t.ep.close());
    const got = await udpExchange(t.port, request('INVITE', t.port, { body: SDP, headers: 'Content-Type: application/sdp\r\nSupported: timer\r\nSession-Expires: 30' }));
    assert.equal(statusOf(got.at(-1)), 422);
    assert.match(got.at(-1)!, /^Min-SE: 90\r$/m);
    assert.deepEqual(rec.events, []);
  });
});
