/**
 * MediaRelay against a real rtpengine (spawned here through the supervisor, userspace, 127.0.0.1 only),
 * a real libwebrtc dialer (@roamhq/wrtc) and a real UDP RTP peer playing the trunk.
 * The dialer sends 440 Hz, the trunk 1000 Hz; each side must hear the other's tone.
 *
 *   node --import tsx --test test/media/*.test.ts
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as sdpTransform from 'sdp-transform';
import { createLogger } from '../../src/log.js';
import { MonologueError } from '../../src/errors.js';
import {
  codecNames,
  createNgClient,
  createRtpengineProcess,
  createRtpengineRelay,
  type RtpengineRelay,
} from '../../src/media/index.js';
import { freeUdpPort, freeUdpPortRange } from '../helpers/ports.js';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import { dbRatio } from '../helpers/tone.js';
import { useRtpengine } from '../helpers/rtpengine-rig.js';
import { createWrtcDialer, type WrtcDialer } from './wrtc-dialer.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const DIALER_TONE = 440;
const TRUNK_TONE = 1000;
/** Audio to let flow before measuring. */
const LISTEN_MS = 2500;

const rig = useRtpengine(log, 'test');
const callId = rig.callId;

function assertPlainRtp(sdp: string): void {
  const p = sdpTransform.parse(sdp);
  assert.equal(p.media.length, 1);
  const m = p.media[0]!;
  assert.equal(m.protocol, 'RTP/AVP');
  assert.equal(m.iceUfrag ?? p.iceUfrag, undefined, 'no ICE towards the trunk');
  assert.equal(m.fingerprint ?? p.fingerprint, undefined, 'no DTLS towards the trunk');
  assert.equal(m.candidates, undefined, 'no candidates towards the trunk');
  assert.equal(m.connection?.ip ?? p.connection?.ip, '127.0.0.1');
}

function assertWebRtc(sdp: string): void {
  const p = sdpTransform.parse(sdp);
  assert.equal(p.media.length, 1);
  const m = p.media[0]!;
  assert.equal(m.protocol, 'UDP/TLS/RTP/SAVPF');
  assert.ok(m.iceUfrag ?? p.iceUfrag, 'ICE credentials');
  assert.ok(m.fingerprint ?? p.fingerprint, 'DTLS fingerprint');
  assert.ok(m.rtcpMux, 'rtcp-mux');
  assert.equal(codecNames(sdp)[0], 'opus');
  assert.ok(p.groups?.some((g) => g.type === 'BUNDLE' && String(g.mids) === String(m.mid)), 'BUNDLE group for the mid');
}

async function assertTonesPass(dialer: WrtcDialer, peer: RtpPeer): Promise<void> {
  await dialer.connected();
  await peer.waitForPackets(50, 8000);
  await new Promise((r) => setTimeout(r, LISTEN_MS));
  const atTrunk = peer.measure(DIALER_TONE, TRUNK_TONE);
  const atDialer = dbRatio(dialer.pcm(500), TRUNK_TONE, DIALER_TONE, dialer.sampleRate);
  assert.ok(atTrunk >= 20, `trunk hears the dialer's 440 Hz over 1000 Hz by ${atTrunk.toFixed(1)} dB`);
  assert.ok(dialer.receivedMs() > 1000, `dialer received ${dialer.receivedMs()} ms of audio`);
  assert.ok(atDialer >= 20, `dialer hears the trunk's 1000 Hz over 440 Hz by ${atDialer.toFixed(1)} dB`);
}

describe('rtpengine relay: audio both ways', () => {
  test('outbound: browser offers, trunk answers (PCMU)', async () => {
    const id = callId();
    const session = rig.relay.open(id);
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer({ tone: TRUNK_TONE, codec: 'PCMU' });
    try {
      const trunkOffer = await session.dialerOffer(await dialer.offer());
      assertPlainRtp(trunkOffer);
      assert.deepEqual(codecNames(trunkOffer).slice(0, 2), ['pcmu', 'pcma']);
      const tm = sdpTransform.parse(trunkOffer).media[0]!;
      peer.start({ address: tm.connection?.ip ?? '127.0.0.1', port: tm.port });
      const browserAnswer = await session.trunkAnswer(peer.sdp());
      assertWebRtc(browserAnswer);
      await dialer.accept(browserAnswer);
      assert.ok((await rig.relay.listCalls()).includes(id));
      await assertTonesPass(dialer, peer);
    } finally {
      dialer.close();
      await peer.close();
      await session.close();
    }
  });

  test('inbound: trunk offers (PCMU), browser answers', async () => {
    const id = callId();
    const session = rig.relay.open(id);
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer({ tone: TRUNK_TONE, codec: 'PCMU' });
    try {
      const browserOffer = await session.trunkOffer(peer.sdp());
      assertWebRtc(browserOffer);
      assert.deepEqual(codecNames(browserOffer).filter((c) => c === 'pcmu' || c === 'pcma'), []);
      const trunkAnswer = await session.dialerAnswer(await dialer.answer(browserOffer));
      assertPlainRtp(trunkAnswer);
      assert.equal(codecNames(trunkAnswer)[0], 'pcmu');
      const tm = sdpTransform.parse(trunkAnswer).media[0]!;
      peer.start({ address: tm.connection?.ip ?? '127.0.0.1', port: tm.port });
      await assertTonesPass(dialer, peer);
    } finally {
      dialer.close();
      await peer.close();
      await session.close();
    }
  });
});

describe('rtpengine relay: lifecycle and errors', () => {
  test('close() deletes the call, twice is fine, and a never-offered session closes cleanly', async () => {
    const id = callId();
    const session = rig.relay.open(id);
    const dialer = createWrtcDialer(DIALER_TONE);
    try {
      await session.dialerOffer(await dialer.offer());
      assert.ok((await rig.relay.listCalls()).includes(id));
      await session.close();
      assert.ok(!(await rig.relay.listCalls()).includes(id));
      await session.close();
      assert.equal(session.closed, true);
      await assert.rejects(session.trunkAnswer('v=0\r\n'), { code: 'MEDIA_CLOSED' });
    } finally {
      dialer.close();
    }
    await rig.relay.open(callId()).close();
  });

  test('bad SDP is refused with BAD_SDP before reaching rtpengine', async () => {
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer();
    try {
      const good = await dialer.offer();
      const trunk = peer.sdp();
      const cases: [string, (s: ReturnType<RtpengineRelay['open']>) => Promise<string>][] = [
        ['empty', (s) => s.dialerOffer('')],
        ['garbage', (s) => s.dialerOffer('hello world')],
        ['no m-line', (s) => s.dialerOffer(good.split(/\r\nm=/)[0]! + '\r\n')],
        ['two m-lines', (s) => s.trunkOffer(trunk + trunk.slice(trunk.indexOf('m=')))],
        ['junk line', (s) => s.trunkOffer(trunk + 'hello\r\n')],
        ['video only', (s) => s.trunkOffer(peer.sdp().replace('m=audio', 'm=video'))],
        ['no ICE (plain RTP as dialer)', (s) => s.dialerOffer(peer.sdp())],
        ['no known codec', (s) => s.trunkOffer(peer.sdp().replace(/m=audio (\d+) RTP\/AVP 0 101/, 'm=audio $1 RTP/AVP 18 101').replace(/a=rtpmap:0 PCMU/, 'a=rtpmap:18 G729'))],
        ['port 0', (s) => s.trunkOffer(peer.sdp().replace(/m=audio \d+/, 'm=audio 0'))],
      ];
      for (const [name, run] of cases) {
        const s = rig.relay.open(callId());
        await assert.rejects(run(s), (err: unknown) => {
          assert.ok(err instanceof MonologueError, `${name}: a MonologueError`);
          assert.equal(err.code, 'BAD_SDP', `${name}: ${err.message}`);
          return true;
        });
        await s.close();
      }
      // Out-of-order steps are refused too.
      await assert.rejects(rig.relay.open(callId()).trunkAnswer(peer.sdp()), { code: 'MEDIA_STATE' });
    } finally {
      dialer.close();
      await peer.close();
    }
  });

  test('rtpengine not running: MEDIA_TIMEOUT within the retry budget, ready() false', async () => {
    const ng = createNgClient({ port: await freeUdpPort(), tries: 3, retryIntervalMs: 100 });
    const dead = createRtpengineRelay({ ng, trunkCodecs: ['PCMU'], log });
    const peer = await createRtpPeer();
    try {
      const t0 = Date.now();
      await assert.rejects(dead.open(callId()).trunkOffer(peer.sdp()), { code: 'MEDIA_TIMEOUT' });
      const took = Date.now() - t0;
      assert.ok(took >= 250 && took < 2000, `timed out after ${took} ms`);
      assert.equal(await dead.ready(), false);
      const s = dead.open(callId());
      await assert.rejects(s.trunkOffer(peer.sdp()), { code: 'MEDIA_TIMEOUT' });
      await s.close(); // never throws, even with rtpengine down
      assert.equal(await rig.relay.ready(), true);
    } finally {
      ng.close();
      await peer.close();
    }
  });

  test('rtpengine refusing a command surfaces as MEDIA_REJECTED', async () => {
    await assert.rejects(rig.rtpengine.ng.answer({ 'call-id': callId(), 'from-tag': 'x', 'to-tag': 'y', sdp: 'v=0\r\n' }), (err: unknown) => {
      assert.ok(err instanceof MonologueError);
      assert.equal(err.code, 'MEDIA_REJECTED');
      assert.match(err.message, /^rtpengine refused answer: /);
      return true;
    });
  });
});

describe('rtpengine relay: trunk codec variants (SDP level)', () => {
  async function trunkOfferFor(codecs: ('PCMU' | 'PCMA' | 'opus')[]): Promise<string[]> {
    const r = createRtpengineRelay({ ng: rig.rtpengine.ng, trunkCodecs: codecs, log });
    const s = r.open(callId());
    const dialer = createWrtcDialer(DIALER_TONE);
    try {
      const sdp = await s.dialerOffer(await dialer.offer());
      assertPlainRtp(sdp);
      return codecNames(sdp);
    } finally {
      dialer.close();
      await s.close();
    }
  }

  test('PCMA only', async () => {
    const names = await trunkOfferFor(['PCMA']);
    assert.equal(names[0], 'pcma');
    assert.ok(!names.includes('pcmu') && !names.includes('opus'), names.join(','));
    assert.ok(names.includes('telephone-event'), names.join(','));
  });

  test('PCMA then PCMU', async () => {
    const names = await trunkOfferFor(['PCMA', 'PCMU']);
    assert.deepEqual(names.slice(0, 2), ['pcma', 'pcmu']);
  });

  test('Opus to the trunk, PCMU as fallback', async () => {
    const names = await trunkOfferFor(['opus', 'PCMU']);
    assert.deepEqual(names.slice(0, 2), ['opus', 'pcmu']);
    assert.ok(!names.includes('pcma'), names.join(','));
  });

  test('inbound PCMA trunk offer is answered in PCMA', async () => {
    const s = rig.relay.open(callId());
    const dialer = createWrtcDialer(DIALER_TONE);
    const peer = await createRtpPeer({ codec: 'PCMA' });
    try {
      const offer = await s.trunkOffer(peer.sdp());
      assertWebRtc(offer);
      const answer = await s.dialerAnswer(await dialer.answer(offer));
      assertPlainRtp(answer);
      assert.equal(codecNames(answer)[0], 'pcma');
    } finally {
      dialer.close();
      await peer.close();
      await s.close();
    }
  });
});

describe('rtpengine supervisor', () => {
  test('restarts a killed rtpengine', async () => {
    const pid = rig.rtpengine.pid;
    assert.ok(pid);
    const readyAgain = new Promise<{ pid: number }>((resolve) => rig.rtpengine.once('ready', resolve));
    process.kill(pid, 'SIGKILL');
    const info = await readyAgain;
    assert.notEqual(info.pid, pid);
    assert.equal(await rig.relay.ready(), true);
    assert.ok(rig.rtpengine.restarts >= 1);
    assert.deepEqual(await rig.relay.listCalls(), []);
  });

  test('stop() leaves no process behind; a taken ng port is refused', async () => {
    const range = await freeUdpPortRange(10);
    const other = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max });
    await other.start();
    const pid = other.pid;
    assert.ok(pid);
    await other.stop();
    await other.stop();
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    const clash = createRtpengineProcess({ log, ngPort: rig.rtpengine.ng.port, portMin: range.min, portMax: range.max });
    await assert.rejects(clash.start(), { code: 'MEDIA_PORT_IN_USE' });
  });
});
