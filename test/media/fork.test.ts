/**
 * The one-party fork at the media layer: rtpengine `subscribe` on the dialer leg delivers the dialer's
 * own Opus to a recorder socket, and never the trunk's audio (DESIGN §4.1), for both call directions.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import * as sdpTransform from 'sdp-transform';
import opus from '@discordjs/opus';
import { createLogger } from '../../src/log.js';
import { createRtpengineProcess, createRtpengineRelay, type RtpengineProcess, type RtpengineRelay } from '../../src/media/index.js';
import { freeUdpPort, freeUdpPortRange } from '../helpers/ports.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { dbRatio } from '../helpers/tone.js';
import { createWrtcDialer } from './wrtc-dialer.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
let rtpengine: RtpengineProcess;
let relay: RtpengineRelay;

before(async () => {
  const range = await freeUdpPortRange(60);
  rtpengine = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max });
  await rtpengine.start();
  relay = createRtpengineRelay({ ng: rtpengine.ng, trunkCodecs: ['PCMU'], log });
});
after(async () => rtpengine?.stop());

/** A bare recorder: answers the fork offer with its socket and decodes what arrives. */
async function forkSink() {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const decoder = new opus.OpusEncoder(48000, 1);
  const pcm: Buffer[] = [];
  const pts = new Set<number>();
  const ssrcs = new Set<number>();
  const sources = new Set<string>();
  sock.on('message', (m, from) => {
    sources.add(`${from.address}:${from.port}`);
    const pt = m[1]! & 0x7f;
    if (pt >= 72 && pt <= 79) return; // RTCP
    pts.add(pt);
    ssrcs.add(m.readUInt32BE(8));
    const cc = m[0]! & 0x0f;
    let off = 12 + cc * 4;
    if (m[0]! & 0x10) off += 4 + m.readUInt16BE(off + 2) * 4;
    try {
      pcm.push(decoder.decode(m.subarray(off)));
    } catch {
      /* a packet that is not Opus fails the PT assertion below */
    }
  });
  let opusPt = -1;
  let offered = '';
  return {
    answer(offer: string): string {
      const parsed = sdpTransform.parse(offer);
      const m = parsed.media[0]!;
      offered = `${m.connection?.ip ?? parsed.connection?.ip}:${m.port}`;
      assert.equal(m.direction, 'sendonly');
      const rtp = m.rtp.find((r) => r.codec.toLowerCase() === 'opus');
      assert.ok(rtp, `the fork offers Opus: ${m.rtp.map((r) => r.codec)}`);
      opusPt = rtp.payload;
      const port = sock.address().port;
      return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${opusPt}\r\na=rtpmap:${opusPt} opus/48000/2\r\na=recvonly\r\n`;
    },
    samples(): Int16Array {
      const all = Buffer.concat(pcm.slice(25)); // skip the first half second
      return new Int16Array(all.buffer, all.byteOffset, all.length / 2);
    },
    get opusPt() {
      return opusPt;
    },
    /** rtpengine's own address and port for the fork, as its offer states them. */
    get offered() {
      return offered;
    },
    sources,
    pts,
    ssrcs,
    close: () => sock.close(),
  };
}

for (const direction of ['outbound', 'inbound'] as const) {
  test(`${direction}: the fork carries the dialer's 440 Hz and not the trunk's 1000 Hz`, async () => {
    const session = relay.open(`fork-${direction}-${process.pid}-${Date.now()}`);
    const dialer = createWrtcDialer(440);
    const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
    const sink = await forkSink();
    try {
      let trunkSdp: string;
      if (direction === 'outbound') {
        trunkSdp = await session.dialerOffer(await dialer.offer());
        await dialer.accept(await session.trunkAnswer(peer.sdp()));
      } else {
        const browserOffer = await session.trunkOffer(peer.sdp());
        trunkSdp = await session.dialerAnswer(await dialer.answer(browserOffer));
      }
      const tm = sdpTransform.parse(trunkSdp).media[0]!;
      peer.start({ address: '127.0.0.1', port: tm.port });
      await dialer.connected();
      await session.forkDialerLeg((offer) => sink.answer(offer));
      await new Promise((r) => setTimeout(r, 3000));

      assert.deepEqual([...sink.pts], [sink.opusPt], 'only Opus reaches the recorder');
      assert.equal(sink.ssrcs.size, 1, 'one stream: the dialer leg');
      // What the recorder connect()s to (DESIGN §4.8): rtpengine sends the fork from its offer's port.
      assert.deepEqual([...sink.sources], [sink.offered], 'the fork comes from the address and port of its offer');
      const pcm = sink.samples();
      assert.ok(pcm.length > 48000, `recorded ${pcm.length} samples`);
      const ratio = dbRatio(pcm, 440, 1000, 48000);
      assert.ok(ratio >= 40, `440 Hz is ${ratio.toFixed(1)} dB over 1000 Hz in the fork`);
      assert.ok(peer.measure(440, 1000) > 20, 'the trunk still hears the dialer');
    } finally {
      sink.close();
      dialer.close();
      await peer.close();
      await session.close();
    }
    assert.deepEqual(await relay.listCalls(), []);
  });
}
