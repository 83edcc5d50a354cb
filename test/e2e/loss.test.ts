import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { startTestService, type TestService } from '../helpers/service.js';
import { startSipp, freePort } from '../helpers/sipp.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';

/**
 * 10% SIP loss (sipp -lost 10 drops messages both ways): 200 outbound and 200 inbound calls between
 * real libwebrtc dialers and sipp all complete, and nothing is left in rtpengine.
 * The outbound trunk answers without a digest challenge here: under loss, sipp's linear 401 scenario
 * aborts a call when our (correct) ACK to a retransmitted 401 arrives after it moved on. Digest under
 * loss is covered by test/sip/inbound.test.ts at the dialog layer.
 */
const CALLS = Number(process.env.LOSS_CALLS ?? 200);
const CONCURRENCY = 10;

let service: TestService;
let sippPort: number;
let sink: Socket;
let sinkPort: number;

before(async () => {
  sippPort = await freePort();
  service = await startTestService({
    trunkPort: sippPort,
    mediaPorts: 400,
    overrides: { calls: { maxCallsPerUser: CONCURRENCY * 2 }, sip: { inviteTimeoutMs: 30_000 } },
  });
  // The trunk's media goes here and is dropped: this test is about signalling under loss.
  sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  sinkPort = sink.address().port;
});

after(async () => {
  sink?.close();
  await service?.stop();
});

test(`${CALLS} outbound calls under 10% SIP loss all complete`, { timeout: 300_000 }, async () => {
  const users = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => service.addUser(`+1555100${String(i).padStart(4, '0')}`)));
  const sipp = startSipp({ scenario: 'uas-answer', port: sippPort, calls: CALLS, lost: 10, keys: { rtp_port: String(sinkPort) }, timeoutMs: 280_000 });
  await sipp.ready;
  const dialers = users.map((u) => new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, u.token));
  const reasons = new Map<string, number>();
  try {
    await Promise.all(dialers.map((d) => d.connect()));
    let next = 0;
    await Promise.all(
      dialers.map(async (d) => {
        while (next < CALLS) {
          next++;
          const call = await d.call('+15550002222', { toneHz: 440 }, 60_000);
          await d.waitConnected(call.callId, 20_000);
          d.hangup(call.callId);
          const reason = await d.waitEnded(call.callId, 20_000);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        }
      }),
    );
  } finally {
    for (const d of dialers) d.close();
  }
  const result = await sipp.done;
  assert.deepEqual(Object.fromEntries(reasons), { 'local-hangup': CALLS });
  assert.equal(result.successful, CALLS, `sipp: ${sippProblems(result.errors)}`);
  assert.equal(result.failed, 0);
  assert.equal(result.code, 0);
  await assertNothingLeft();
});

test(`${CALLS} inbound calls under 10% SIP loss all complete`, { timeout: 300_000 }, async (t) => {
  const user = await service.addUser('+15550001111');
  const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, user.token);
  const reasons = new Map<string, number>();
  const pending: Promise<void>[] = [];
  try {
    await dialer.connect();
    dialer.onIncoming((inc) => {
      pending.push(
        (async () => {
          const call = await dialer.accept(inc.callId, { toneHz: 440 });
          await dialer.waitConnected(call.callId, 20_000);
          const reason = await dialer.waitEnded(call.callId, 90_000);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        })(),
      );
    });
    const result = await startSipp({
      scenario: 'uac-call',
      port: sippPort,
      remote: `127.0.0.1:${service.sipPort}`,
      service: '+15550001111',
      calls: CALLS,
      rate: 20,
      limit: CONCURRENCY,
      pauseMs: 1000,
      lost: 10,
      keys: { rtp_port: String(sinkPort) },
      timeoutMs: 280_000,
    }).done;
    await Promise.all(pending);
    assert.equal(result.successful, CALLS, `sipp: ${sippProblems(result.errors)}`);
    assert.equal(result.failed, 0);
    assert.deepEqual(Object.fromEntries(reasons), { 'remote-hangup': CALLS });
    // Answered means ACKed: a lost ACK is recovered by our retransmitted 200 (sipp ACKs again), so
    // nearly every call counts as answered; only one whose BYE beats every re-ACK does not.
    const rows = await service.db.db.selectFrom('calls').select(['answered_at', 'end_reason']).where('user_id', '=', user.id).execute();
    const answered = rows.filter((r) => r.answered_at !== null).length;
    assert.equal(rows.length, CALLS);
    t.diagnostic(`${answered} of ${CALLS} inbound calls answered (ACKed) under loss`);
    assert.ok(answered >= CALLS * 0.9, `${answered} of ${CALLS} inbound calls answered (ACKed)`);
  } finally {
    dialer.close();
  }
  await assertNothingLeft();
});

/** sipp's error log without its "dead call" notes (late retransmissions it answered anyway). */
function sippProblems(errors: string): string {
  return errors.split(/\n(?=\d{4}-\d{2}-\d{2})/).filter((l) => !l.includes('Dead call')).join('\n').slice(-4000);
}

async function assertNothingLeft(): Promise<void> {
  let left: string[] = [];
  for (let i = 0; i < 30; i++) {
    left = await service.media.listCalls();
    if (left.length === 0 && service.switchboard.liveCalls === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(left, [], 'rtpengine holds no call');
  assert.equal(service.switchboard.liveCalls, 0);
}
