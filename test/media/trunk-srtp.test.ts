/**
 * `media.trunkSrtp` against a real rtpengine and a real libwebrtc dialer: what the trunk leg offers and
 * answers in each mode, and the downgrades that are refused before rtpengine sees them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as sdpTransform from 'sdp-transform';
import { MonologueError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createRtpengineProcess, createRtpengineRelay, type RtpengineProcess, type RtpengineRelay } from '../../src/media/index.js';
import { freeUdpPort, freeUdpPortRange } from '../helpers/ports.js';
import { createWrtcDialer } from './wrtc-dialer.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
let rtpengine: RtpengineProcess;
let sdes: RtpengineRelay;
let optional: RtpengineRelay;
let seq = 0;
const callId = (): string => `srtp-${process.pid}-${++seq}`;

const KEY = 'PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR';
const trunkSdp = (proto: string, crypto?: string): string =>
  `v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 ${proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n${crypto ? `a=crypto:1 ${crypto} inline:${KEY}\r\n` : ''}a=sendrecv\r\n`;

before(async () => {
  const range = await freeUdpPortRange(40);
  rtpengine = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max });
  await rtpengine.start();
  sdes = createRtpengineRelay({ ng: rtpengine.ng, trunkCodecs: ['PCMU'], trunkSrtp: 'sdes', log });
  optional = createRtpengineRelay({ ng: rtpengine.ng, trunkCodecs: ['PCMU'], trunkSrtp: 'sdes-optional', log });
});

after(async () => {
  await rtpengine?.stop();
});

const media = (sdp: string): sdpTransform.MediaDescription => sdpTransform.parse(sdp).media[0]!;
const suites = (sdp: string): string[] => (media(sdp).crypto ?? []).map((c) => c.suite);
const srtpRefused = (err: unknown): boolean => err instanceof MonologueError && err.code === 'MEDIA_SRTP_REQUIRED';

describe('SRTP towards the trunk', { concurrency: true }, () => {
  test('sdes, outbound: RTP/SAVP with real ciphers only; a plain answer is refused', async () => {
    const session = sdes.open(callId());
    const dialer = createWrtcDialer(440);
    try {
      const offer = await session.dialerOffer(await dialer.offer());
      assert.equal(media(offer).protocol, 'RTP/SAVP');
      assert.ok(suites(offer).includes('AES_CM_128_HMAC_SHA1_80'), suites(offer).join());
      assert.ok(!suites(offer).some((s) => /^NULL_|^F8_/.test(s)), `no unencrypted or F8 suite: ${suites(offer).join()}`);
      assert.equal(media(offer).fingerprint, undefined, 'no DTLS towards the trunk');
      await assert.rejects(session.trunkAnswer(trunkSdp('RTP/AVP')), srtpRefused);
    } finally {
      dialer.close();
      await session.close();
    }
  });

  test('sdes, outbound: an answer with a NULL cipher is refused', async () => {
    const session = sdes.open(callId());
    const dialer = createWrtcDialer(440);
    try {
      await session.dialerOffer(await dialer.offer());
      await assert.rejects(session.trunkAnswer(trunkSdp('RTP/SAVP', 'NULL_HMAC_SHA1_80')), srtpRefused);
    } finally {
      dialer.close();
      await session.close();
    }
  });

  test('sdes, inbound: an SRTP offer is answered RTP/SAVP with rtpengine\'s own key; a plain offer is refused', async () => {
    const session = sdes.open(callId());
    const dialer = createWrtcDialer(440);
    try {
      const browserOffer = await session.trunkOffer(trunkSdp('RTP/SAVP', 'AES_CM_128_HMAC_SHA1_80'));
      const answer = await session.dialerAnswer(await dialer.answer(browserOffer));
      assert.equal(media(answer).protocol, 'RTP/SAVP');
      const crypto = media(answer).crypto ?? [];
      assert.equal(crypto.length, 1);
      assert.equal(crypto[0]!.suite, 'AES_CM_128_HMAC_SHA1_80');
      assert.notEqual(crypto[0]!.config, `inline:${KEY}`, 'rtpengine answers with its own key');
      await assert.rejects(sdes.open(callId()).trunkOffer(trunkSdp('RTP/AVP')), srtpRefused);
    } finally {
      dialer.close();
      await session.close();
    }
  });

  test('sdes-optional: opportunistic SRTP offered, a plain answer and a plain inbound offer accepted', async () => {
    const out = optional.open(callId());
    const inn = optional.open(callId());
    const d1 = createWrtcDialer(440);
    const d2 = createWrtcDialer(440);
    try {
      const offer = await out.dialerOffer(await d1.offer());
      assert.equal(media(offer).protocol, 'RTP/AVP');
      assert.ok(suites(offer).includes('AES_CM_128_HMAC_SHA1_80'), 'a=crypto offered on RTP/AVP (RFC 8643)');
      await out.trunkAnswer(trunkSdp('RTP/AVP'));
      const browserOffer = await inn.trunkOffer(trunkSdp('RTP/AVP'));
      const answer = await inn.dialerAnswer(await d2.answer(browserOffer));
      assert.equal(media(answer).protocol, 'RTP/AVP');
      assert.deepEqual(suites(answer), [], 'plain RTP answered plain');
    } finally {
      d1.close();
      d2.close();
      await out.close();
      await inn.close();
    }
  });
});
