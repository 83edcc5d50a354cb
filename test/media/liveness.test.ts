/**
 * The media watch against a real rtpengine (spawned through the supervisor), a libwebrtc dialer and a UDP
 * RTP peer playing the trunk: a trunk that goes silent ends its session `media-timeout` while the browser
 * still sends, an off-path sprayer cannot keep it alive, a leg on hold is exempt, and an rtpengine that
 * stops answering (SIGSTOP: an external one that hangs) ends its calls `media-failed`.
 *
 *   npm test -- test/media/liveness.test.ts
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import * as sdpTransform from 'sdp-transform';
import { createLogger } from '../../src/log.js';
import {
  createMediaWatch,
  createRtpengineProcess,
  createRtpengineRelay,
  type MediaLoss,
  type MediaWatch,
  type RtpengineProcess,
  type RtpengineRelay,
  type RtpengineSession,
} from '../../src/media/index.js';
import { freeUdpPort, freeUdpPortRange } from '../helpers/ports.js';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import { until } from '../helpers/until.js';
import { createWrtcDialer, type WrtcDialer } from './wrtc-dialer.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const TIMEOUT_MS = 2000;
const POLL_MS = 250;
/** A loss must be seen within the timeout plus two polls and a query's round trip (loaded machine). */
const SLACK_MS = 2 * POLL_MS + 1000;

let rtpengine: RtpengineProcess;
let relay: RtpengineRelay;
let watch: MediaWatch;
let seq = 0;
const callId = (): string => `live-${process.pid}-${Date.now()}-${++seq}`;

before(async () => {
  const range = await freeUdpPortRange(60);
  rtpengine = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max });
  await rtpengine.start();
  watch = createMediaWatch({ ng: rtpengine.ng, timeoutMs: TIMEOUT_MS, unreachableMs: 1500, pollMs: POLL_MS, log });
  relay = createRtpengineRelay({ ng: rtpengine.ng, trunkCodecs: ['PCMU'], log, watch, available: () => rtpengine.up });
});

after(async () => {
  watch?.close();
  await rtpengine?.stop();
});

interface Live {
  session: RtpengineSession;
  dialer: WrtcDialer;
  peer: RtpPeer;
  /** The trunk leg's port on rtpengine. */
  trunkPort: number;
  lost: Promise<{ reason: MediaLoss; at: number }>;
  close(): Promise<void>;
}

/** An outbound call with audio both ways, watched from the trunk's answer on. */
async function liveCall(trunkSdp?: (peer: RtpPeer) => string): Promise<Live> {
  const session = relay.open(callId());
  const lost = new Promise<{ reason: MediaLoss; at: number }>((resolve) => session.onLost((reason) => resolve({ reason, at: Date.now() })));
  const dialer = createWrtcDialer(440);
  const peer = await createRtpPeer({ tone: 1000 });
  const offer = await session.dialerOffer(await dialer.offer());
  const trunkPort = sdpTransform.parse(offer).media[0]!.port;
  peer.start({ address: '127.0.0.1', port: trunkPort });
  await dialer.accept(await session.trunkAnswer(trunkSdp ? trunkSdp(peer) : peer.sdp()));
  await dialer.connected();
  await peer.waitForPackets(25, 8000);
  return {
    session,
    dialer,
    peer,
    trunkPort,
    lost,
    async close() {
      dialer.close();
      await peer.close();
      await session.close();
    },
  };
}

/** Resolve after `n` more polling rounds' worth of queries for `calls` watched calls. */
async function rounds(n: number, calls: number): Promise<void> {
  const target = watch.queries + n * calls;
  await until(`${n} watch rounds`, () => watch.queries >= target, 20_000, 20);
}

test('a trunk that stops sending ends the session media-timeout; a spraying off-path sender does not keep it alive', { timeout: 60_000 }, async (t) => {
  const [quiet, sprayed] = await Promise.all([liveCall(), liveCall()]);
  const sprayer = createSocket('udp4');
  await new Promise<void>((r) => sprayer.bind(0, '127.0.0.66', () => r()));
  let spray: NodeJS.Timeout | undefined;
  try {
    // While both sides talk, well past the timeout, nothing is lost.
    let lostEarly: MediaLoss | undefined;
    void quiet.lost.then((l) => (lostEarly = l.reason));
    void sprayed.lost.then((l) => (lostEarly = l.reason));
    const talkFrom = Date.now();
    await until('both calls talked past the timeout', () => Date.now() - talkFrom > TIMEOUT_MS + POLL_MS, 20_000, 50);
    await rounds(2, 2);
    assert.equal(lostEarly, undefined, 'a call with media both ways is not ended');
    assert.equal(watch.watching, 2);

    // The trunks go silent; the browsers keep sending. One trunk port gets RTP from an off-path address.
    const packet = Buffer.alloc(172);
    packet[0] = 0x80;
    let n = 0;
    spray = setInterval(() => {
      packet.writeUInt16BE(n++ & 0xffff, 2);
      sprayer.send(packet, sprayed.trunkPort, '127.0.0.1');
    }, 20);
    // The peers share this event loop: stop them only while they are sending, so that the silence starts here.
    const sent = quiet.peer.packetsSent + sprayed.peer.packetsSent;
    await until('the trunks are sending', () => quiet.peer.packetsSent + sprayed.peer.packetsSent >= sent + 10, 5000, 5);
    const silentFrom = Date.now();
    quiet.peer.stop();
    sprayed.peer.stop();
    const [a, b] = await Promise.all([quiet.lost, sprayed.lost]);
    for (const [name, l] of [['quiet', a], ['sprayed', b]] as const) {
      assert.equal(l.reason, 'media-timeout', name);
      const took = l.at - silentFrom;
      t.diagnostic(`${name}: lost ${took} ms after the trunk went silent (timeout ${TIMEOUT_MS} ms, poll ${POLL_MS} ms)`);
      assert.ok(took >= TIMEOUT_MS - 300 && took <= TIMEOUT_MS + SLACK_MS, `${name}: lost ${took} ms after the trunk went silent`);
    }
    assert.ok(n > 50, `the sprayer sent ${n} packets`);
    assert.equal(watch.watching, 0, 'lost sessions are no longer polled');
  } finally {
    clearInterval(spray);
    sprayer.close();
    await Promise.all([quiet.close(), sprayed.close()]);
  }
});

test('a trunk leg on hold (its SDP says recvonly) is not timed out; a closed session never reports a loss', { timeout: 60_000 }, async () => {
  const held = await liveCall((peer) => peer.sdp().replace('a=sendrecv', 'a=recvonly'));
  const closed = await liveCall();
  let heldLost: MediaLoss | undefined;
  let closedLost: MediaLoss | undefined;
  void held.lost.then((l) => (heldLost = l.reason));
  void closed.lost.then((l) => (closedLost = l.reason));
  try {
    held.peer.stop();
    closed.peer.stop();
    await closed.session.close();
    const from = Date.now();
    await until('past the timeout', () => Date.now() - from > TIMEOUT_MS + 2 * POLL_MS, 20_000, 50);
    await rounds(2, 1);
    assert.equal(heldLost, undefined, 'a leg whose SDP says it does not send is exempt');
    assert.equal(closedLost, undefined, 'no loss after close()');
    assert.equal(watch.watching, 1);
  } finally {
    await Promise.all([held.close(), closed.close()]);
  }
});

test('rtpengine answering nothing (SIGSTOP) ends its watched calls media-failed after unreachableMs', { timeout: 60_000 }, async () => {
  const call = await liveCall();
  const pid = rtpengine.pid!;
  try {
    const stoppedAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    const l = await call.lost;
    const took = l.at - stoppedAt;
    assert.equal(l.reason, 'media-failed');
    // Its silence counts from its last reply, up to one poll before the SIGSTOP.
    assert.ok(took >= 1500 - POLL_MS - 100 && took <= 1500 + SLACK_MS + 1000, `lost ${took} ms after rtpengine stopped answering`);
  } finally {
    process.kill(pid, 'SIGCONT');
    await call.close();
  }
  await rtpengine.waitReady(5000);
});

test('rtpengine killed: loseAll reaches every allocated session once, new steps fail fast until the restart, then work', { timeout: 60_000 }, async () => {
  // Its own rtpengine, restarting after a second: the window in which it is down is long enough to see.
  const range = await freeUdpPortRange(30);
  const own = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max, backoffMinMs: 1000 });
  await own.start();
  const ownRelay = createRtpengineRelay({ ng: own.ng, trunkCodecs: ['PCMU'], log, available: () => own.up });
  const answered = ownRelay.open(callId());
  const offered = ownRelay.open(callId());
  const never = ownRelay.open(callId());
  const lost: Record<string, MediaLoss[]> = { answered: [], offered: [], never: [] };
  answered.onLost((r) => lost.answered!.push(r));
  offered.onLost((r) => lost.offered!.push(r));
  never.onLost((r) => lost.never!.push(r));
  const dialers = [createWrtcDialer(440), createWrtcDialer(440), createWrtcDialer(440)] as const;
  const peer = await createRtpPeer({ tone: 1000 });
  try {
    const offer = await answered.dialerOffer(await dialers[0].offer());
    peer.start({ address: '127.0.0.1', port: sdpTransform.parse(offer).media[0]!.port });
    await dialers[0].accept(await answered.trunkAnswer(peer.sdp()));
    await offered.dialerOffer(await dialers[1].offer());
    const laterOffer = await dialers[2].offer();
    assert.equal(ownRelay.live, 2, 'two sessions hold media');

    const exited = new Promise<void>((resolve) => own.once('exit', () => resolve()));
    const restarted = new Promise<void>((resolve) => own.once('ready', () => resolve()));
    process.kill(own.pid!, 'SIGKILL');
    await exited;
    assert.equal(own.up, false, 'not up once it exited');
    assert.equal(ownRelay.loseAll('media-failed'), 2);
    assert.equal(ownRelay.loseAll('media-failed'), 0, 'each session is lost once');
    assert.deepEqual(lost, { answered: ['media-failed'], offered: ['media-failed'], never: [] });

    const t0 = Date.now();
    await assert.rejects(ownRelay.open(callId()).dialerOffer(laterOffer), { code: 'MEDIA_UNAVAILABLE' });
    assert.ok(Date.now() - t0 < 500, `refused in ${Date.now() - t0} ms, not after the ng timeout`);
    assert.equal(await ownRelay.ready(), false);
    await restarted;
    assert.equal(own.up, true);
    assert.equal(own.restarts, 1);
    assert.equal(await ownRelay.ready(), true);
    await answered.close(); // rtpengine forgot it: close() still resolves
    assert.deepEqual(lost.answered, ['media-failed'], 'nothing after close');
  } finally {
    for (const d of dialers) d.close();
    await peer.close();
    await Promise.all([answered.close(), offered.close(), never.close()]);
    await own.stop();
  }
});
