/**
 * DTMF from the dialer to the trunk through a real rtpengine: `sendDtmf` (ng `play DTMF` from the dialer's leg)
 * must reach the trunk's RTP peer as RFC 4733 events with the right digits and durations, on outbound and
 * inbound calls, with and without a recorder fork, and never reach the fork. The dialer is real libwebrtc
 * (@roamhq/wrtc); the trunk is a UDP RTP peer that decodes telephone-event.
 *
 * The trunk answers telephone-event with the payload type we offered (RFC 3264 §6.1): rtpengine 10.5 matches
 * answer codecs by number, so a trunk that renumbers it gets no events (README, DTMF).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import * as sdpTransform from 'sdp-transform';
import { createLogger } from '../../src/log.js';
import { MonologueError } from '../../src/errors.js';
import { DTMF_TIMING } from '../../src/calls/ports.js';
import type { RtpengineSession } from '../../src/media/index.js';
import { createRtpPeer, type DtmfEvent, type RtpPeer } from '../helpers/rtp-peer.js';
import { useRtpengine } from '../helpers/rtpengine-rig.js';
import { createWrtcDialer, type WrtcDialer } from './wrtc-dialer.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const rig = useRtpengine(log, 'dtmf', { ports: 80 });
const callId = rig.callId;

/** Duration field (8 kHz units) of an event played for DTMF_TIMING.toneMs: rtpengine rounds up to 20 ms frames. */
function assertDtmf(events: DtmfEvent[], digits: string): void {
  assert.equal(events.map((e) => e.digit).join(''), digits, `digits at the trunk: ${JSON.stringify(events)}`);
  for (const e of events) {
    assert.ok(e.ended, `event ${e.digit} has its end packet`);
    const ms = e.duration / 8;
    assert.ok(ms >= DTMF_TIMING.toneMs && ms <= DTMF_TIMING.toneMs + 60, `event ${e.digit} lasts ${ms} ms (asked ${DTMF_TIMING.toneMs})`);
    assert.ok(e.volume > 0 && e.volume < 30, `event ${e.digit} is audible: -${e.volume} dBm0`);
  }
  // One after another, never overlapping: each starts at least a tone plus a gap after the previous one.
  for (let i = 1; i < events.length; i++) {
    const gap = (events[i]!.timestamp - events[i - 1]!.timestamp) >>> 0;
    assert.ok(gap >= (DTMF_TIMING.toneMs + DTMF_TIMING.gapMs) * 8, `event ${i} starts ${gap / 8} ms after the previous one: ${JSON.stringify(events.map((e) => [e.digit, e.timestamp, Math.round(e.firstAt)]))}`);
  }
}

function telephoneEventPt(sdp: string): number {
  const rtp = sdpTransform.parse(sdp).media[0]!.rtp.find((r) => r.codec.toLowerCase() === 'telephone-event' && r.rate === 8000);
  assert.ok(rtp, `telephone-event/8000 in ${sdp}`);
  return rtp.payload;
}

/** An outbound call (dialer offers) with audio flowing both ways. */
async function outboundCall(): Promise<Leg> {
  const session = rig.relay.open(callId());
  const dialer = createWrtcDialer(440);
  const trunkOffer = await session.dialerOffer(await dialer.offer());
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU', telephoneEventPt: telephoneEventPt(trunkOffer) });
  peer.start({ address: '127.0.0.1', port: sdpTransform.parse(trunkOffer).media[0]!.port });
  const dialerSdp = await session.trunkAnswer(peer.sdp());
  await dialer.accept(dialerSdp);
  await dialer.connected();
  await peer.waitForPackets(10, 8000);
  return { session, dialer, peer, dialerSdp, close: () => closeAll(session, dialer, peer) };
}

/** An inbound call (trunk offers telephone-event 101) with audio flowing both ways. */
async function inboundCall(): Promise<Leg> {
  const session = rig.relay.open(callId());
  const dialer = createWrtcDialer(440);
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const dialerSdp = await session.trunkOffer(peer.sdp());
  const trunkAnswer = await session.dialerAnswer(await dialer.answer(dialerSdp));
  assert.equal(telephoneEventPt(trunkAnswer), 101, 'our answer keeps the trunk\'s telephone-event');
  peer.start({ address: '127.0.0.1', port: sdpTransform.parse(trunkAnswer).media[0]!.port });
  await dialer.connected();
  await peer.waitForPackets(10, 8000);
  return { session, dialer, peer, dialerSdp, close: () => closeAll(session, dialer, peer) };
}

interface Leg {
  session: RtpengineSession;
  dialer: WrtcDialer;
  peer: RtpPeer;
  /** The WebRTC SDP the dialer got (answer outbound, offer inbound). */
  dialerSdp: string;
  close(): Promise<void>;
}

async function closeAll(session: RtpengineSession, dialer: WrtcDialer, peer: RtpPeer): Promise<void> {
  dialer.close();
  await peer.close();
  await session.close();
}

function offersTelephoneEvent48k(sdp: string): boolean {
  return sdpTransform.parse(sdp).media[0]!.rtp.some((r) => r.codec.toLowerCase() === 'telephone-event' && r.rate === 48000);
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MonologueError, `a MonologueError: ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a rejection');
}

// Independent calls on one rtpengine: run side by side so the file takes seconds, not a minute.
describe('DTMF to the trunk', { concurrency: true }, () => {
  test('outbound: digits arrive as RFC 4733 events, in order, with their durations; a later batch too', async () => {
    const call = await outboundCall();
    try {
      await call.session.sendDtmf('1#5*');
      assertDtmf(await call.peer.waitForDtmf(4, 8000), '1#5*');
      // A batch after the first has played starts after it, not at the old events' timestamps.
      await call.session.sendDtmf('90D');
      assertDtmf(await call.peer.waitForDtmf(7, 8000), '1#5*90D');
      // The dialer got telephone-event/48000 back, so its own RTCDTMFSender has a payload type to send.
      assert.ok(offersTelephoneEvent48k(call.dialerSdp), 'telephone-event/48000 in the WebRTC answer');
      assert.ok(call.peer.measure(440, 1000) > 20, 'the trunk still hears the dialer through the DTMF injector');
      // The backlog bound: one full message (32 digits, ~8 s of tones) is taken, anything more while it plays is not.
      await call.session.sendDtmf('1234567890*#ABCD1234567890*#ABCD');
      assert.equal(await rejection(call.session.sendDtmf('1')), 'DTMF_RATE_LIMITED');
    } finally {
      await call.close();
    }
  });

  test('inbound: digits arrive as RFC 4733 events on the trunk\'s payload type', async () => {
    const call = await inboundCall();
    try {
      assert.ok(offersTelephoneEvent48k(call.dialerSdp), 'telephone-event/48000 in the WebRTC offer');
      await call.session.sendDtmf('0A*#');
      assertDtmf(await call.peer.waitForDtmf(4, 8000), '0A*#');
      assert.ok(call.peer.measure(440, 1000) > 20, 'the trunk still hears the dialer');
    } finally {
      await call.close();
    }
  });

  test('with a recorder fork: digits reach the trunk, and only Opus reaches the fork', async () => {
    const call = await outboundCall();
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const forkPts = new Map<number, number>();
    sock.on('message', (m) => {
      const pt = m[1]! & 0x7f;
      if (pt < 72 || pt > 79) forkPts.set(pt, (forkPts.get(pt) ?? 0) + 1);
    });
    let opusPt = -1;
    try {
      await call.session.forkDialerLeg((offer) => {
        const m = sdpTransform.parse(offer).media[0]!;
        opusPt = m.rtp.find((r) => r.codec.toLowerCase() === 'opus')!.payload;
        const port = sock.address().port;
        return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${opusPt}\r\na=rtpmap:${opusPt} opus/48000/2\r\na=recvonly\r\n`;
      });
      await call.session.sendDtmf('42');
      assertDtmf(await call.peer.waitForDtmf(2, 8000), '42');
      assert.deepEqual([...forkPts.keys()], [opusPt], `payload types at the fork: ${JSON.stringify([...forkPts])}`);
      assert.ok(forkPts.get(opusPt)! > 20, 'the fork kept receiving the dialer');
    } finally {
      sock.close();
      await call.close();
    }
  });

  test('refusals: before both legs DTMF_NOT_READY, bad digits BAD_DTMF, after close MEDIA_CLOSED', async () => {
    const session = rig.relay.open(callId());
    const dialer = createWrtcDialer(440);
    try {
      assert.equal(await rejection(session.sendDtmf('1')), 'DTMF_NOT_READY', 'before any offer');
      await session.dialerOffer(await dialer.offer());
      assert.equal(await rejection(session.sendDtmf('1')), 'DTMF_NOT_READY', 'offered, not answered');
      assert.equal(await rejection(session.sendDtmf('1x')), 'BAD_DTMF');
      assert.equal(await rejection(session.sendDtmf('')), 'BAD_DTMF');
      await session.close();
      assert.equal(await rejection(session.sendDtmf('1')), 'MEDIA_CLOSED');
    } finally {
      dialer.close();
      await session.close();
    }
  });

  test('answered but no RTP from the dialer yet: DTMF_NOT_READY, not a media failure', async () => {
    const session = rig.relay.open(callId());
    const dialer = createWrtcDialer(440);
    const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
    try {
      const trunkOffer = await session.dialerOffer(await dialer.offer());
      const answer = peer.sdp().replace(/\b101\b/g, String(telephoneEventPt(trunkOffer)));
      await session.trunkAnswer(answer); // the dialer never applies it: no ICE, no RTP
      assert.equal(await rejection(session.sendDtmf('1')), 'DTMF_NOT_READY');
    } finally {
      dialer.close();
      await peer.close();
      await session.close();
    }
  });
});
