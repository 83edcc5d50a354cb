import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSipp, type SippRun } from '../helpers/sipp.js';
import { CALL, cleanupsAfterAll, outboundRecorder, SDP, sleep, startEndpoint, type TestEndpoint } from './harness.js';


const cleanups = cleanupsAfterAll();

async function setup(opts: Parameters<typeof startEndpoint>[1] = {}): Promise<TestEndpoint> {
  const t = await startEndpoint(() => { throw new Error('no inbound expected'); }, opts);
  cleanups.push(() => t.ep.close());
  return t;
}

function sipp(t: TestEndpoint, scenario: string, extra: Partial<Parameters<typeof startSipp>[0]> = {}): SippRun {
  const run = startSipp({ scenario, port: t.sippPort, remote: `127.0.0.1:${t.port}`, ...extra });
  cleanups.push(() => run.kill());
  return run;
}

describe('outbound calls through sipp', { concurrency: true }, () => {
  for (const transport of ['udp', 'tcp'] as const) {
    for (const scenario of ['uas-401-answer', 'uas-407-answer']) {
      test(`${transport}: ${scenario}, we hang up`, async () => {
        const t = await setup({ transport });
        const run = sipp(t, scenario, { transport: transport === 'udp' ? 'u1' : 't1', keys: { rtp_port: '41000' } });
        await run.ready;
        const l = outboundRecorder();
        const leg = t.ep.trunk.dial(CALL, l, { 'X-Monologue-Call': 'call-1' });
        assert.match(leg.sipCallId, /@127\.0\.0\.1$/);
        const answered = await l.waitFor((e) => e.type === 'answered');
        assert.ok(answered.type === 'answered' && /m=audio 41000 /.test(answered.sdp));
        assert.ok(l.events.some((e) => e.type === 'ringing'));
        await sleep(200);
        leg.end();
        leg.end();
        const res = await run.done;
        assert.equal(res.code, 0, res.errors + res.stderr);
        assert.equal(res.successful, 1);
        assert.deepEqual(l.events.map((e) => e.type), ['ringing', 'answered']);
      });

      test(`${transport}: ${scenario}, sipp hangs up`, async () => {
        const t = await setup({ transport });
        const run = sipp(t, scenario, { transport: transport === 'udp' ? 'u1' : 't1', keys: { bye_after: '300' } });
        await run.ready;
        const l = outboundRecorder();
        t.ep.trunk.dial(CALL, l);
        await l.waitFor((e) => e.type === 'answered');
        await l.waitFor((e) => e.type === 'ended');
        const res = await run.done;
        assert.equal(res.code, 0, res.errors + res.stderr);
        assert.deepEqual(l.events.map((e) => e.type), ['ringing', 'answered', 'ended']);
        assert.equal(t.ep.activeCalls, 0);
      });
    }
  }

  test('wrong password: second challenge → failed(401)', async () => {
    const t = await setup({ password: 'wrong' });
    const run = sipp(t, 'uas-401-answer');
    await run.ready;
    const l = outboundRecorder();
    t.ep.trunk.dial(CALL, l);
    const f = await l.waitFor((e) => e.type === 'failed');
    // sipp answers wrong credentials with 403 (a second 401 would give failed(401) the same way)
    assert.deepEqual(f, { type: 'failed', status: 403 });
    run.kill();
  });

  for (const [scenario, status] of [['uas-busy', 486], ['uas-404', 404]] as const) {
    test(`${scenario} → failed(${status})`, async () => {
      const t = await setup();
      const run = sipp(t, scenario);
      await run.ready;
      const l = outboundRecorder();
      t.ep.trunk.dial(CALL, l);
      assert.deepEqual(await l.waitFor((e) => e.type === 'failed'), { type: 'failed', status });
      const res = await run.done;
      assert.equal(res.code, 0, res.errors);
      assert.equal(t.ep.activeCalls, 0);
    });
  }

  test('no answer → our timeout → CANCEL → failed(408)', async () => {
    const t = await setup({ inviteTimeoutMs: 1500 });
    const run = sipp(t, 'uas-no-answer');
    await run.ready;
    const l = outboundRecorder();
    const started = Date.now();
    t.ep.trunk.dial(CALL, l);
    await l.waitFor((e) => e.type === 'ringing');
    assert.deepEqual(await l.waitFor((e) => e.type === 'failed'), { type: 'failed', status: 408 });
    assert.ok(Date.now() - started >= 1400);
    const res = await run.done; // sipp saw CANCEL, sent 487, got our ACK
    assert.equal(res.code, 0, res.errors);
    assert.deepEqual(l.events.map((e) => e.type), ['ringing', 'failed']);
  });

  test('end() before answer → CANCEL, no events after it', async () => {
    const t = await setup({ transport: 'tcp' });
    const run = sipp(t, 'uas-no-answer', { transport: 't1' });
    await run.ready;
    const l = outboundRecorder();
    const leg = t.ep.trunk.dial(CALL, l);
    await l.waitFor((e) => e.type === 'ringing');
    leg.end();
    const res = await run.done;
    assert.equal(res.code, 0, res.errors);
    await sleep(100);
    assert.deepEqual(l.events.map((e) => e.type), ['ringing']);
  });

  test('end() before any response → CANCEL once a provisional arrives', async () => {
    const t = await setup();
    const run = sipp(t, 'uas-no-answer');
    await run.ready;
    const l = outboundRecorder();
    const leg = t.ep.trunk.dial(CALL, l);
    leg.end();
    const res = await run.done;
    assert.equal(res.code, 0, res.errors);
    assert.deepEqual(l.events, []);
  });

  test('trunk unreachable over TCP → failed(503)', async () => {
    const t = await setup({ transport: 'tcp' });
    const l = outboundRecorder();
    t.ep.trunk.dial(CALL, l);
    assert.deepEqual(await l.waitFor((e) => e.type === 'failed'), { type: 'failed', status: 503 });
  });

  test('a number that is not E.164 → failed(484), nothing sent', async () => {
    const t = await setup();
    const l = outboundRecorder();
    t.ep.trunk.dial({ ...CALL, to: '12\r\nX-Evil: 1' }, l);
    assert.deepEqual(await l.waitFor((e) => e.type === 'failed'), { type: 'failed', status: 484 });
  });
});
