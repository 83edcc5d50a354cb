/**
 * Trunk failover with real sipp trunks: an outbound call moves down `trunks` on a 503 (and rests that
 * trunk for its Retry-After), on no response at all, and on a refused connection; it does not move on
 * after the callee's own answer (486). Cases run concurrently, each with its own endpoint and trunks.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { createSipEndpoint, type SipEndpoint, type SipTrunkOptions } from '../../src/sip/endpoint.js';
import { retryAfterSeconds, shouldFailOver } from '../../src/sip/trunks.js';
import { startSilentTrunk } from '../helpers/silent-trunk.js';
import { freePort, startSipp, type SippRun } from '../helpers/sipp.js';
import { CALL, outboundRecorder, SDP } from './harness.js';


const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An endpoint over `trunks`, and its log lines (parsed) for the failover codes. */
async function endpoint(trunks: SipTrunkOptions[], attemptTimeoutMs = 600): Promise<{ ep: SipEndpoint; port: number; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const port = await freePort();
  const ep = await createSipEndpoint(
    { listen: { address: '127.0.0.1', port, udp: true, tcp: true }, trunks, inviteTimeoutMs: 8000, trunkAttemptTimeoutMs: attemptTimeoutMs },
    createLogger('info', sink),
    () => {
      throw new Error('no inbound expected');
    },
  );
  cleanups.push(() => ep.close());
  return { ep, port, lines };
}

const trunk = (port: number, transport: 'udp' | 'tcp' = 'udp'): SipTrunkOptions => ({ host: '127.0.0.1', port, transport, allowedSources: ['127.0.0.1'] });

function sipp(scenario: string, port: number, ourPort: number, extra: Partial<Parameters<typeof startSipp>[0]> = {}): SippRun {
  const run = startSipp({ scenario, port, remote: `127.0.0.1:${ourPort}`, timeoutMs: 30_000, ...extra });
  cleanups.push(() => run.kill());
  return run;
}

const failovers = (lines: Record<string, unknown>[]): number => lines.filter((l) => l.code === 'SIP_TRUNK_FAILOVER').length;

describe('trunk failover', { concurrency: true }, () => {
  test('503 with Retry-After on the first trunk: the second answers, and the next call skips the first', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const { ep, port, lines } = await endpoint([trunk(p1), trunk(p2)]);
    const first = sipp('uas-503', p1, port, { keys: { retry_after: '60' } });
    const second = sipp('uas-answer', p2, port, { calls: 2 });
    await Promise.all([first.ready, second.ready]);

    const l = outboundRecorder();
    const leg = ep.trunk.dial(CALL, l);
    const firstCallId = leg.sipCallId;
    await l.waitFor((e) => e.type === 'answered');
    assert.notEqual(leg.sipCallId, firstCallId, 'the second trunk got a fresh INVITE (new Call-ID)');
    assert.deepEqual(l.events.map((e) => e.type), ['ringing', 'answered'], 'the 503 never reached the call');
    assert.equal(failovers(lines), 1);
    leg.end();
    const r1 = await first.done;
    assert.equal(r1.successful, 1, r1.errors);

    // The first trunk rests for its Retry-After: the next call goes straight to the second.
    const l2 = outboundRecorder();
    const leg2 = ep.trunk.dial(CALL, l2);
    await l2.waitFor((e) => e.type === 'answered');
    assert.equal(failovers(lines), 1, 'no second failover: the resting trunk was not tried');
    leg2.end();
    const r2 = await second.done;
    assert.equal(r2.successful, 2, r2.errors);
  });

  test('no response at all from the first trunk: after the attempt timeout the second answers', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const silent = await startSilentTrunk(p1);
    cleanups.push(() => silent.close());
    const { ep, port, lines } = await endpoint([trunk(p1), trunk(p2)]);
    const second = sipp('uas-answer', p2, port);
    await second.ready;
    const l = outboundRecorder();
    const started = Date.now();
    const leg = ep.trunk.dial(CALL, l);
    await l.waitFor((e) => e.type === 'answered');
    const took = Date.now() - started;
    assert.ok(took >= 600, `failed over after the 600 ms attempt timeout, not before (${took} ms)`);
    assert.equal(silent.invites().length, 1, 'the silent trunk got exactly one INVITE');
    assert.ok(lines.some((x) => x.code === 'SIP_TRUNK_FAILOVER' && x.timeoutMs === 600));
    leg.end();
    assert.equal((await second.done).successful, 1);
  });

  test('connection refused (TCP) on the first trunk: the second answers at once', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const { ep, port, lines } = await endpoint([trunk(p1, 'tcp'), trunk(p2)]);
    const second = sipp('uas-answer', p2, port);
    await second.ready;
    const l = outboundRecorder();
    const started = Date.now();
    const leg = ep.trunk.dial(CALL, l);
    await l.waitFor((e) => e.type === 'answered');
    assert.ok(Date.now() - started < 600, 'a refused connection fails over without waiting for the attempt timeout');
    assert.ok(lines.some((x) => x.code === 'SIP_TRANSPORT_FAILED'), 'the transport error is logged with its code');
    assert.equal(failovers(lines), 1);
    leg.end();
    assert.equal((await second.done).successful, 1);
  });

  test('486 on the first trunk is the answer: no failover, the second trunk never hears of the call', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const watcher = await startSilentTrunk(p2);
    cleanups.push(() => watcher.close());
    const { ep, port, lines } = await endpoint([trunk(p1), trunk(p2)]);
    const first = sipp('uas-busy', p1, port);
    await first.ready;
    const l = outboundRecorder();
    ep.trunk.dial(CALL, l);
    const f = await l.waitFor((e) => e.type === 'failed');
    assert.deepEqual(f, { type: 'failed', status: 486 });
    assert.equal((await first.done).successful, 1);
    assert.equal(watcher.datagrams, 0, 'nothing was sent to the second trunk');
    assert.equal(failovers(lines), 0);
  });

  test('the user hanging up stops the failover', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const silent = await startSilentTrunk(p1);
    const watcher = await startSilentTrunk(p2);
    cleanups.push(() => silent.close(), () => watcher.close());
    const { ep } = await endpoint([trunk(p1), trunk(p2)], 200);
    const l = outboundRecorder();
    const leg = ep.trunk.dial(CALL, l);
    await waitUntil(() => silent.datagrams === 1);
    leg.end();
    // The INVITE's first retransmission (Timer A, 500 ms) comes after the 200 ms attempt timeout: had the
    // failover gone on, the second trunk would have its INVITE by then.
    await waitUntil(() => silent.datagrams >= 2);
    assert.equal(watcher.datagrams, 0);
    assert.deepEqual(l.events, []);
  });
});

test('failover rule and Retry-After parsing', () => {
  assert.ok(shouldFailOver(503, false));
  assert.ok(shouldFailOver(408, false));
  assert.ok(shouldFailOver(500, false));
  assert.ok(!shouldFailOver(503, true), 'not once the callee rang');
  for (const s of [403, 404, 480, 486, 487, 600, 603]) assert.ok(!shouldFailOver(s, false), String(s));
  assert.equal(retryAfterSeconds('120'), 120);
  assert.equal(retryAfterSeconds('120;duration=60'), 120);
  assert.equal(retryAfterSeconds(' 30 (maintenance)'), 30);
  assert.equal(retryAfterSeconds('soon'), undefined);
  assert.equal(retryAfterSeconds(undefined), undefined);
});

async function waitUntil(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
