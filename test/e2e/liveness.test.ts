/**
 * Liveness end to end: the whole service with its own rtpengine, a libwebrtc dialer, sipp as the trunk's
 * signalling and an RTP peer as the trunk's media.
 *
 * - The trunk stops sending RTP and never sends BYE: the call ends `media-timeout` within the timeout and
 *   a little slack; the trunk gets our BYE, the dialer `call.ended`, the recording stops, the record says so.
 * - rtpengine is killed mid-call: the call ends `media-failed` (BYE to the trunk), /readyz says not ready
 *   until the supervisor has restarted it, and the next call has audio both ways.
 * - Inbound calls are bounded too: a silent caller's call ends `media-timeout`, and an answered inbound call
 *   ends `max-duration` at `calls.maxCallSeconds`, each with our BYE to the trunk (test/sipp/uac-wait-bye.xml).
 *
 *   npm test -- test/e2e/liveness.test.ts
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWrtcRig, type WrtcRig } from '../helpers/wrtc-rig.js';
import { freePort } from '../helpers/sipp.js';
import { startSipp, type SippRun } from '../helpers/sipp.js';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import type { WrtcDialer, WrtcCall } from '../helpers/wrtc-dialer.js';
import { until } from '../helpers/until.js';

const TIMEOUT_S = 3;
/** The watch polls every 600 ms at a 3 s timeout; allow two polls, the BYE and a loaded machine. */
const SLACK_MS = 2500;

let rig: WrtcRig;
let phone = 0;

before(async () => {
  rig = await startWrtcRig({ media: { timeoutSeconds: TIMEOUT_S, unreachableSeconds: 2 } }, 'sqlite', { mediaPorts: 60 });
});

after(async () => {
  await rig?.close();
});

interface Live {
  dialer: WrtcDialer;
  userId: string;
  call: WrtcCall;
  peer: RtpPeer;
  sipp: SippRun;
}

/** An enrolled user calls out through sipp; the trunk's media is an RTP peer playing 1,000 Hz. */
async function liveCall(): Promise<Live> {
  const { dialer, userId } = await rig.dialer(`+1555000${String(4000 + ++phone)}`, { tone: { toneHz: 440 } });
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const sipp = startSipp({ scenario: 'uas-answer', port: rig.service.config.sip.trunk.port, keys: { rtp_port: String(peer.port) }, timeoutMs: 60_000 });
  await sipp.ready;
  const call = await dialer.call('+15550002222');
  await dialer.waitConnected(call.callId);
  peer.start(); // answers rtpengine from the port in the trunk's SDP, as a trunk does
  await peer.waitForPackets(25, 8000);
  return { dialer, userId, call, peer, sipp };
}

async function readyz(): Promise<{ status: number; body: { ok: boolean; checks: Record<string, boolean> } }> {
  const res = await fetch(`http://127.0.0.1:${rig.service.httpPort}/readyz`);
  return { status: res.status, body: (await res.json()) as { ok: boolean; checks: Record<string, boolean> } };
}

test('a trunk that goes silent without a BYE: the call ends media-timeout, the trunk gets a BYE, the record says media-timeout', { timeout: 90_000 }, async (t) => {
  const c = await liveCall();
  try {
    await until('recording.started', () => c.dialer.messages.some((m) => m.type === 'recording.started' && m.callId === c.call.callId), 10_000);
    // The peer shares this event loop with the service: a stall just before stop() (the recording starting)
    // is trunk silence too, as rtpengine sees it. So stop only once it has been sending again, and allow
    // a second of such stalls in the lower bound; the unit test (test/media) bounds it tightly.
    const sent = c.peer.packetsSent;
    await until('the trunk is sending', () => c.peer.packetsSent >= sent + 10, 5000, 5);
    const silentFrom = Date.now();
    c.peer.stop();
    const reason = await c.call.ended;
    const took = Date.now() - silentFrom;
    assert.equal(reason, 'media-timeout');
    t.diagnostic(`outbound: ended media-timeout ${took} ms after the trunk went silent`);
    assert.ok(took >= TIMEOUT_S * 1000 - 1000 && took <= TIMEOUT_S * 1000 + SLACK_MS, `ended ${took} ms after the trunk went silent`);
    const sipp = await c.sipp.done;
    assert.equal(sipp.successful, 1, `the trunk got our BYE and answered it (sipp: ${sipp.errors || sipp.stdout.slice(-500)})`);
    await until('recording.stopped', () => c.dialer.messages.some((m) => m.type === 'recording.stopped' && m.callId === c.call.callId), 10_000);
    const stopped = c.dialer.messages.find((m) => m.type === 'recording.stopped' && m.callId === c.call.callId);
    assert.equal((stopped as { reason?: string }).reason, 'call-ended');
    await until('the call record is written', async () => (await rig.service.records.get(c.userId, c.call.callId))?.endReason !== undefined, 10_000);
    const record = await rig.service.records.get(c.userId, c.call.callId);
    assert.equal(record?.endReason, 'media-timeout');
    assert.ok(record?.answeredAt && record.endedAt && record.endedAt > record.answeredAt);
    assert.ok(!(await rig.service.media.listCalls()).includes(c.call.callId), 'rtpengine let go of the call');
  } finally {
    c.sipp.kill();
    await c.peer.close();
  }
});

test('rtpengine killed mid-call: the call ends media-failed, /readyz is not ready until the restart, the next call has audio both ways', { timeout: 90_000 }, async () => {
  const rtpengine = rig.service.rtpengine;
  assert.ok(rtpengine, 'the test service supervises its rtpengine');
  assert.equal((await readyz()).status, 200);
  const c = await liveCall();
  const pid = rtpengine.pid!;
  const restarts = rtpengine.restarts;
  // Asked the moment the child is gone, before the supervisor's first restart (200 ms backoff) can answer.
  const downReady = new Promise<Awaited<ReturnType<typeof readyz>>>((resolve, reject) => rtpengine.once('exit', () => readyz().then(resolve, reject)));
  const restarted = new Promise<void>((resolve) => rtpengine.once('ready', () => resolve()));
  try {
    process.kill(pid, 'SIGKILL');
    const reason = await c.call.ended;
    assert.equal(reason, 'media-failed');
    const down = await downReady;
    assert.equal(down.status, 503, 'not ready while rtpengine is down');
    assert.equal(down.body.checks.rtpengine, false);
    const sipp = await c.sipp.done;
    assert.equal(sipp.successful, 1, 'the trunk got our BYE');
    await until('the call record is written', async () => (await rig.service.records.get(c.userId, c.call.callId))?.endReason !== undefined, 10_000);
    assert.equal((await rig.service.records.get(c.userId, c.call.callId))?.endReason, 'media-failed');
    await restarted;
    assert.equal(rtpengine.restarts, restarts + 1);
    assert.notEqual(rtpengine.pid, pid);
    await until('ready again', async () => (await readyz()).status === 200, 10_000);
  } finally {
    c.sipp.kill();
    await c.peer.close();
  }

  const next = await liveCall();
  try {
    await until('the dialer hears the trunk', () => next.call.meter.received > 48_000 && next.call.meter.measure(1000) - next.call.meter.measure(440) > 20, 10_000);
    await next.peer.waitForPackets(100, 10_000);
    const atTrunk = next.peer.measure(440, 1000);
    assert.ok(atTrunk >= 20, `the trunk hears the dialer's 440 Hz over 1000 Hz by ${atTrunk.toFixed(1)} dB`);
    await rig.hangup(next.dialer, next.call.callId);
    assert.equal(await next.call.ended, 'local-hangup');
  } finally {
    next.sipp.kill();
    await next.peer.close();
  }
});

/** The trunk calls an enrolled user's number and never hangs up; the user answers; the trunk's media plays 1,000 Hz. */
async function inboundCall(on: WrtcRig, number: string): Promise<Live> {
  const { dialer, userId } = await on.dialer(number, { tone: { toneHz: 440 } });
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const sipp = startSipp({
    scenario: 'uac-wait-bye',
    port: await freePort(),
    remote: `127.0.0.1:${on.service.sipPort}`,
    service: number,
    keys: { rtp_port: String(peer.port), caller: '+15550002222' },
    timeoutMs: 60_000,
  });
  const incoming = await dialer.waitIncoming(10_000);
  const call = await dialer.accept(incoming.callId);
  await dialer.waitConnected(call.callId);
  peer.start();
  await peer.waitForPackets(25, 8000);
  return { dialer, userId, call, peer, sipp };
}

test('inbound: a caller whose media stops ends media-timeout, with our BYE to the trunk', { timeout: 90_000 }, async (t) => {
  const c = await inboundCall(rig, `+1555000${String(4000 + ++phone)}`);
  try {
    const sent = c.peer.packetsSent;
    await until('the trunk is sending', () => c.peer.packetsSent >= sent + 10, 5000, 5);
    const silentFrom = Date.now();
    c.peer.stop();
    assert.equal(await c.call.ended, 'media-timeout');
    const took = Date.now() - silentFrom;
    t.diagnostic(`inbound: ended media-timeout ${took} ms after the trunk went silent`);
    assert.ok(took >= TIMEOUT_S * 1000 - 1000 && took <= TIMEOUT_S * 1000 + SLACK_MS, `ended ${took} ms after the trunk went silent`);
    const sipp = await c.sipp.done;
    assert.equal(sipp.successful, 1, `the trunk got our BYE (sipp: ${sipp.errors || sipp.stdout.slice(-500)})`);
    await until('the call record is written', async () => (await rig.service.records.get(c.userId, c.call.callId))?.endReason !== undefined, 10_000);
    assert.equal((await rig.service.records.get(c.userId, c.call.callId))?.endReason, 'media-timeout');
  } finally {
    c.sipp.kill();
    await c.peer.close();
  }
});

test('inbound: an answered call ends max-duration at calls.maxCallSeconds, with our BYE to the trunk', { timeout: 90_000 }, async () => {
  const short = await startWrtcRig({ calls: { maxCallSeconds: 2 } }, 'sqlite', { mediaPorts: 30 });
  try {
    const c = await inboundCall(short, '+15550009001');
    try {
      assert.equal(await c.call.ended, 'max-duration');
      const sipp = await c.sipp.done;
      assert.equal(sipp.successful, 1, `the trunk got our BYE (sipp: ${sipp.errors || sipp.stdout.slice(-500)})`);
      await until('the call record is written', async () => (await short.service.records.get(c.userId, c.call.callId))?.endReason !== undefined, 10_000);
      const record = await short.service.records.get(c.userId, c.call.callId);
      assert.equal(record?.endReason, 'max-duration');
      const length = record!.endedAt! - record!.answeredAt!;
      assert.ok(length >= 2000 && length < 3000, `answered for ${length} ms on the server's clock`);
    } finally {
      c.sipp.kill();
      await c.peer.close();
    }
  } finally {
    await short.close();
  }
});
