import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort, startSipp } from '../helpers/sipp.js';
import { signalClient, type SignalClient } from '../helpers/signal-client.js';
import { until } from '../helpers/until.js';
import type { Call } from '../../src/calls/call.js';

/**
 * A trunk that cancels an inbound call while the service is still setting it up (real sipp, real
 * rtpengine, real database): the dialer never rings, the trunk gets its 487, the record says cancelled
 * and unanswered, and the call is gone at once — not when the ring timeout would have ended it.
 */
const NUMBER = '+15550001111';
const RING_TIMEOUT_MS = 30_000;

let service: TestService;
let sippPort: number;
let userId: string;
let dialer: SignalClient;
const calls: Call[] = [];
/**
 * While set, rtpengine's real answer to an inbound offer is handed to the switchboard only once the call
 * has ended: the CANCEL then lands, every time, while the offer is at rtpengine.
 */
let holdOffersUntilEnded = false;
let offersHeld = 0;
/** How long rtpengine took to answer each inbound offer: the window the old code lost CANCELs in. */
const offerMs: number[] = [];

before(async () => {
  sippPort = await freePort();
  service = await startTestService({ trunkPort: sippPort, overrides: { calls: { ringTimeoutMs: RING_TIMEOUT_MS } } });
  let token: string;
  ({ id: userId, token } = await service.addUser(NUMBER));
  const ended = new Map<string, Promise<void>>();
  service.switchboard.on('call', (call) => {
    calls.push(call);
    ended.set(call.id, new Promise((r) => call.once('ended', () => r())));
  });
  const open = service.media.open.bind(service.media);
  service.media.open = (callId) => {
    const session = open(callId);
    const trunkOffer = session.trunkOffer.bind(session);
    session.trunkOffer = async (sdp) => {
      const t0 = performance.now();
      const answer = await trunkOffer(sdp);
      offerMs.push(performance.now() - t0);
      if (holdOffersUntilEnded) {
        offersHeld++;
        await ended.get(callId);
      }
      return answer;
    };
    return session;
  };
  dialer = await signalClient(service.httpPort);
  await dialer.auth(token);
});

after(async () => {
  dialer?.close();
  await service?.stop();
});

async function cancelledCalls(n: number): Promise<Call[]> {
  const from = calls.length;
  const sipp = startSipp({
    scenario: 'uac-cancel-early',
    port: sippPort,
    remote: `127.0.0.1:${service.sipPort}`,
    service: NUMBER,
    calls: n,
    rate: 20,
    timeoutMs: 20_000,
  });
  const result = await sipp.done;
  assert.equal(result.code, 0, `sipp: every call gets its 487\n${result.errors}\n${result.stderr.slice(-2000)}`);
  assert.equal(result.successful, n);
  // Well within the ring timeout: a call that rang anyway would still be live here.
  await until('every cancelled call is gone', () => service.switchboard.liveCalls === 0, 5000);
  await until('rtpengine holds no call', async () => (await service.media.listCalls()).length === 0, 5000);
  const mine = calls.slice(from);
  assert.equal(mine.length, n);
  await Promise.all(mine.map((c) => c.flushed()));
  return mine;
}

test('a CANCEL while rtpengine answers the offer: no ring, 487, recorded as cancelled and never answered', async () => {
  holdOffersUntilEnded = true;
  try {
    const mine = await cancelledCalls(3);
    assert.equal(offersHeld, 3, 'each CANCEL came while its offer was at rtpengine');
    const sorted = [...offerMs].sort((a, b) => a - b);
    process.stdout.write(`# rtpengine answered the inbound offers in ${sorted.map((ms) => ms.toFixed(1)).join(', ')} ms\n`);
    assert.deepEqual(
      dialer.msgs.filter((m) => m.type === 'call.incoming' || m.type === 'call.ended'),
      [],
      'the dialer never heard of these calls',
    );
    for (const call of mine) {
      const rec = await service.records.get(userId, call.id);
      assert.equal(rec?.endReason, 'cancelled');
      assert.equal(rec?.sipStatus, 487);
      assert.equal(rec?.ringingAt, null);
      assert.equal(rec?.answeredAt, null);
    }
  } finally {
    holdOffersUntilEnded = false;
  }
});

test('CANCELs at real speed: whatever rang is ended, nothing is answered, nothing lingers', async () => {
  const mine = await cancelledCalls(10);
  const ids = new Set(mine.map((c) => c.id));
  const incoming = dialer.msgs.filter((m) => m.type === 'call.incoming' && ids.has(m.callId)).map((m) => (m as { callId: string }).callId);
  const ended = dialer.msgs.filter((m) => m.type === 'call.ended' && ids.has(m.callId)) as Array<{ callId: string; reason: string }>;
  assert.deepEqual(ended.map((m) => m.callId).sort(), [...incoming].sort(), 'every call that rang the dialer was ended there');
  for (const m of ended) assert.equal(m.reason, 'cancelled');
  for (const call of mine) {
    assert.equal(call.reason, 'cancelled');
    assert.equal(call.answeredAt, undefined);
  }
  process.stdout.write(`# ${mine.length - incoming.length} of ${mine.length} CANCELs landed before the dialer rang\n`);
});
