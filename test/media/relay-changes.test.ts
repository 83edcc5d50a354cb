/**
 * Media changes during a call, against a real rtpengine, a real libwebrtc dialer and real UDP RTP peers:
 * early media answered twice (183 then a 200 with another address), and the trunk's mid-call offers
 * (hold, resume, a move to another address) answered without renegotiating the dialer.
 *
 * Each peer plays its own tone, so "who does the dialer hear" is a frequency check; "does the trunk hear
 * us" is a packet count over a window measured in audio the dialer received, not in wall-clock sleeps.
 */
import { describe, test } from 'node:test';
import { createSocket } from 'node:dgram';
import assert from 'node:assert/strict';
import * as sdpTransform from 'sdp-transform';
import { createLogger } from '../../src/log.js';
import { codecNames } from '../../src/media/index.js';
import { mediaFlow } from '../../src/media/sdp.js';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import { dbRatio } from '../helpers/tone.js';
import { until } from '../helpers/until.js';
import { legEndpoint } from '../helpers/ng-query.js';
import { useRtpengine } from '../helpers/rtpengine-rig.js';
import { createWrtcDialer, type WrtcDialer } from './wrtc-dialer.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const DIALER_TONE = 440;
const EARLY_TONE = 600;
const TRUNK_TONE = 1000;
const MOVED_TONE = 1400;

const rig = useRtpengine(log, 'chg');
const callId = rig.callId;

function mediaOf(sdp: string): { address: string; port: number } {
  const p = sdpTransform.parse(sdp);
  const m = p.media[0]!;
  return { address: m.connection?.ip ?? p.connection?.ip ?? '', port: m.port };
}

/** The peer's SDP as a new offer version with `direction` (re-INVITEs bump the o= version). */
function reoffer(peer: RtpPeer, version: number, direction = 'sendrecv'): string {
  return peer.sdp(4242).replace(/^o=trunk 4242 1 /m, `o=trunk 4242 ${version} `).replace('a=sendrecv', `a=${direction}`);
}

/** Wait until the dialer got `ms` more audio, then say what it heard since: dB of `freq` over `against`. */
async function dialerHears(dialer: WrtcDialer, freq: number, against: number, ms = 1500): Promise<number> {
  const from = dialer.receivedMs() + 300; // skip what was already in the jitter buffer
  await until(`dialer received ${ms} ms more audio`, () => dialer.receivedMs() >= from + ms, 15_000);
  return dbRatio(dialer.pcm(from), freq, against, dialer.sampleRate);
}

/**
 * Packets `peer` receives while the dialer receives `ms` of audio (the window is the dialer's clock). The
 * window opens after 300 ms more of the dialer's audio, so packets already in flight when a change took
 * effect are not counted against it.
 */
async function packetsDuring(peer: RtpPeer, dialer: WrtcDialer, ms = 1500, settleFirst = true): Promise<number> {
  if (settleFirst) await settle(dialer);
  const start = peer.received.length;
  const until0 = dialer.receivedMs() + ms;
  await until(`dialer received ${ms} ms more audio`, () => dialer.receivedMs() >= until0, 15_000);
  return peer.received.length - start;
}

/** Wait for 300 ms more of the dialer's audio: what was in flight when a change took effect has landed. */
async function settle(dialer: WrtcDialer): Promise<void> {
  const settled = dialer.receivedMs() + 300;
  await until('dialer received 300 ms more audio', () => dialer.receivedMs() >= settled, 15_000);
}

describe('early media: a second trunk answer moves the trunk leg', () => {
  test('183 to one peer, 200 to another address: the dialer hears each in turn, the old one is cut off', async () => {
    const session = rig.relay.open(callId());
    const dialer = createWrtcDialer(DIALER_TONE);
    const early = await createRtpPeer({ tone: EARLY_TONE, host: '127.0.0.1' });
    const final = await createRtpPeer({ tone: TRUNK_TONE, host: '127.0.0.2' });
    try {
      const offer = await session.dialerOffer(await dialer.offer());
      const ours = mediaOf(offer);
      early.start(ours);
      const progressSdp = await session.trunkAnswer(early.sdp());
      await dialer.accept(progressSdp);
      await dialer.connected();
      const t0 = performance.now();
      const heardEarly = await dialerHears(dialer, EARLY_TONE, TRUNK_TONE);
      assert.ok(heardEarly >= 20, `dialer hears early media 600 Hz by ${heardEarly.toFixed(1)} dB`);
      await early.waitForPackets(20);

      // The 200 answers again from 127.0.0.2; the early peer keeps sending, as a stale carrier leg might.
      final.start(ours);
      const answerSdp = await session.trunkAnswer(final.sdp());
      const answerMs = performance.now() - t0;
      assert.equal(mediaOf(answerSdp).port, mediaOf(progressSdp).port, 'the dialer side of rtpengine does not move');
      const heardFinal = await dialerHears(dialer, TRUNK_TONE, EARLY_TONE);
      assert.ok(heardFinal >= 20, `after the 200 the dialer hears 1000 Hz over 600 Hz by ${heardFinal.toFixed(1)} dB`);
      await final.waitForPackets(30);
      assert.ok(final.measure(DIALER_TONE, TRUNK_TONE) >= 20, 'the answered peer hears the dialer');
      const stale = await packetsDuring(early, dialer);
      assert.ok(stale <= 5, `the early-media peer got ${stale} packets after the 200`);
      assert.ok(answerMs > 0);
    } finally {
      dialer.close();
      await early.close();
      await final.close();
      await session.close();
    }
  });
});

for (const direction of ['outbound', 'inbound'] as const) {
  describe(`mid-call offers from the trunk (${direction})`, () => {
    test('hold (sendonly) → recvonly answer and no audio to the trunk; resume; move to another address', async () => {
      const session = rig.relay.open(callId());
      const dialer = createWrtcDialer(DIALER_TONE);
      const peer = await createRtpPeer({ tone: TRUNK_TONE, host: '127.0.0.1' });
      const moved = await createRtpPeer({ tone: MOVED_TONE, host: '127.0.0.3' });
      try {
        let ours: { address: string; port: number };
        if (direction === 'outbound') {
          ours = mediaOf(await session.dialerOffer(await dialer.offer()));
          await dialer.accept(await session.trunkAnswer(peer.sdp()));
        } else {
          const browserOffer = await session.trunkOffer(peer.sdp());
          ours = mediaOf(await session.dialerAnswer(await dialer.answer(browserOffer)));
        }
        peer.start(ours);
        await dialer.connected();
        await peer.waitForPackets(25);
        assert.ok((await dialerHears(dialer, TRUNK_TONE, DIALER_TONE)) >= 20, 'audio flows before the hold');

        // Hold.
        const holdAnswer = await session.trunkReoffer(reoffer(peer, 2, 'sendonly'));
        assert.equal(mediaFlow(holdAnswer), 'recvonly', 'sendonly offer → recvonly answer');
        assert.deepEqual(mediaOf(holdAnswer), ours, 'our trunk-side address stays');
        const duringHold = await packetsDuring(peer, dialer);
        assert.ok(duringHold <= 5, `the trunk got ${duringHold} packets while it held the call`);
        assert.ok((await dialerHears(dialer, TRUNK_TONE, DIALER_TONE)) >= 20, 'the dialer still hears the held trunk (music on hold)');

        // Inactive: neither way.
        const inactive = await session.trunkReoffer(reoffer(peer, 3, 'inactive'));
        assert.equal(mediaFlow(inactive), 'inactive');

        // Resume.
        const resumed = await session.trunkReoffer(reoffer(peer, 4, 'sendrecv'));
        assert.equal(mediaFlow(resumed), 'sendrecv');
        const afterResume = await packetsDuring(peer, dialer);
        assert.ok(afterResume >= 40, `the trunk gets audio again after resume (${afterResume} packets in 1.5 s)`);
        assert.ok((await dialerHears(dialer, TRUNK_TONE, DIALER_TONE)) >= 20, 'and the dialer hears it');

        // Move to 127.0.0.3: the old address keeps sending but is no longer heard (strict source).
        moved.start(ours);
        const moveAnswer = await session.trunkReoffer(reoffer(moved, 5, 'sendrecv').replace(/^o=trunk 4242 5 IN IP4 127.0.0.3/m, 'o=trunk 4242 5 IN IP4 127.0.0.3'));
        assert.equal(mediaFlow(moveAnswer), 'sendrecv');
        const heardMoved = await dialerHears(dialer, MOVED_TONE, TRUNK_TONE);
        assert.ok(heardMoved >= 20, `after the move the dialer hears 1400 Hz over the old 1000 Hz by ${heardMoved.toFixed(1)} dB`);
        await moved.waitForPackets(30);
        const oldGets = await packetsDuring(peer, dialer);
        assert.ok(oldGets <= 5, `the old address got ${oldGets} packets after the move`);
      } finally {
        dialer.close();
        await peer.close();
        await moved.close();
        await session.close();
      }
    });
  });
}

describe('ordering and old-style hold', () => {
  test('a 200 answered while the 183 is still in flight lands last: the trunk leg points at the 200', async () => {
    const id = callId();
    const session = rig.relay.open(id);
    const dialer = createWrtcDialer(DIALER_TONE);
    const early = await createRtpPeer({ host: '127.0.0.1' });
    const final = await createRtpPeer({ host: '127.0.0.2' });
    try {
      await session.dialerOffer(await dialer.offer());
      const [a183, a200] = await Promise.all([session.trunkAnswer(early.sdp()), session.trunkAnswer(final.sdp())]);
      assert.equal(mediaOf(a183).port, mediaOf(a200).port);
      assert.deepEqual(legEndpoint(await rig.rtpengine.ng.query(id), `${id}-t`), { address: '127.0.0.2', port: final.port });
    } finally {
      dialer.close();
      await early.close();
      await final.close();
      await session.close();
    }
  });

  test('c=0.0.0.0 (RFC 2543 hold) is answered recvonly; a later offer with an address resumes', async () => {
    const id = callId();
    const session = rig.relay.open(id);
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer();
    try {
      await session.dialerOffer(await dialer.offer());
      await session.trunkAnswer(peer.sdp(4242));
      const held = await session.trunkReoffer(reoffer(peer, 2).replace(/^c=IN IP4 127\.0\.0\.1/m, 'c=IN IP4 0.0.0.0'));
      assert.equal(mediaFlow(held), 'recvonly');
      const resumed = await session.trunkReoffer(reoffer(peer, 3));
      assert.equal(mediaFlow(resumed), 'sendrecv');
      assert.deepEqual(legEndpoint(await rig.rtpengine.ng.query(id), `${id}-t`), { address: '127.0.0.1', port: peer.port });
    } finally {
      dialer.close();
      await peer.close();
      await session.close();
    }
  });
});

describe('re-offers and the recording fork', () => {
  test('the fork survives a re-offer, pauses while the trunk holds, and resumes with the call', async () => {
    const session = rig.relay.open(callId());
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer({ tone: TRUNK_TONE });
    const sink = createSocket('udp4');
    let forked = 0;
    sink.on('message', (m) => {
      const pt = m.length >= 12 ? m[1]! & 0x7f : 72;
      if (pt < 72 || pt > 79) forked++; // RTCP aside
    });
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    try {
      const ours = mediaOf(await session.dialerOffer(await dialer.offer()));
      await dialer.accept(await session.trunkAnswer(peer.sdp(4242)));
      peer.start(ours);
      await dialer.connected();
      await session.forkDialerLeg((offer) => {
        const m = sdpTransform.parse(offer).media[0]!;
        const pt = m.rtp.find((r) => r.codec.toLowerCase() === 'opus')!.payload;
        return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${sink.address().port} RTP/AVP ${pt}\r\na=rtpmap:${pt} opus/48000/2\r\na=recvonly\r\n`;
      });
      await until('the fork receives the user', () => forked >= 25);
      await session.trunkReoffer(reoffer(peer, 2, 'sendrecv'));
      const f0 = forked;
      await packetsDuring(peer, dialer);
      assert.ok(forked - f0 >= 40, `after a sendrecv re-offer the fork got ${forked - f0} packets in 1.5 s`);
      // rtpengine's block stops the user's leg at the source, fork included: the recording pauses on hold.
      await session.trunkReoffer(reoffer(peer, 3, 'sendonly'));
      await settle(dialer);
      const forkedBefore = forked;
      const toTrunk = await packetsDuring(peer, dialer, 1500, false);
      assert.ok(toTrunk <= 5, `the held trunk got ${toTrunk} packets`);
      assert.ok(forked - forkedBefore <= 5, `the fork got ${forked - forkedBefore} packets while held`);
      await session.trunkReoffer(reoffer(peer, 4, 'sendrecv'));
      const f1 = forked;
      const resumedTrunk = await packetsDuring(peer, dialer);
      assert.ok(resumedTrunk >= 40 && forked - f1 >= 40, `after resume: trunk ${resumedTrunk}, fork ${forked - f1} packets in 1.5 s`);
    } finally {
      dialer.close();
      sink.close();
      await peer.close();
      await session.close();
    }
  });
});

describe('mid-call offers: a new codec', () => {
  test('a re-offer without the running codec (PCMU → PCMA only) is refused; the call keeps PCMU; one that keeps it is taken', async () => {
    const session = rig.relay.open(callId());
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer({ tone: TRUNK_TONE, codec: 'PCMU' });
    const alaw = await createRtpPeer({ tone: MOVED_TONE, codec: 'PCMA', host: '127.0.0.3' });
    try {
      const ours = mediaOf(await session.dialerOffer(await dialer.offer()));
      await dialer.accept(await session.trunkAnswer(peer.sdp(4242)));
      peer.start(ours);
      await dialer.connected();
      await peer.waitForPackets(25);
      await assert.rejects(session.trunkReoffer(alaw.sdp(4242).replace(/^o=trunk 4242 1 /m, 'o=trunk 4242 2 ')), { code: 'MEDIA_CODEC_CHANGE' });
      const before = peer.received.length;
      assert.ok((await dialerHears(dialer, TRUNK_TONE, DIALER_TONE)) >= 20, 'the call goes on as it was');
      assert.ok(peer.received.length - before >= 40, 'and the trunk still gets PCMU');
      // PCMA and PCMU offered: the running codec is among them, so the offer is answered.
      const both = reoffer(peer, 3).replace(/RTP\/AVP 0 101/, 'RTP/AVP 8 0 101').replace('a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000');
      const answer = await session.trunkReoffer(both);
      assert.ok(codecNames(answer).some((c) => c === 'pcmu' || c === 'pcma'), codecNames(answer).join(','));
      assert.ok((await packetsDuring(peer, dialer)) >= 40, 'audio still reaches the trunk in PCMU');
    } finally {
      dialer.close();
      await peer.close();
      await alaw.close();
      await session.close();
    }
  });
});

describe('mid-call offers: refused input', () => {
  test('before answer, bad SDP, after close', async () => {
    const session = rig.relay.open(callId());
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer();
    try {
      await session.dialerOffer(await dialer.offer());
      await assert.rejects(session.trunkReoffer(peer.sdp()), { code: 'MEDIA_STATE' });
      await session.trunkAnswer(peer.sdp());
      await assert.rejects(session.trunkReoffer('v=0\r\nhello\r\n'), { code: 'BAD_SDP' });
      await assert.rejects(session.trunkReoffer(peer.sdp().replace('m=audio', 'm=video')), { code: 'BAD_SDP' });
      await session.close();
      await assert.rejects(session.trunkReoffer(peer.sdp()), { code: 'MEDIA_CLOSED' });
    } finally {
      dialer.close();
      await peer.close();
      await session.close();
    }
  });
});
