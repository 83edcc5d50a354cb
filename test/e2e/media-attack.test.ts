/**
 * Nobody but the two parties touches a call (DESIGN §4.8, issue 7): off-path senders on loopback against a
 * running service, a libwebrtc dialer sending 440 Hz and an RTP peer playing the trunk at 1,000 Hz.
 *
 * - RTP bleed: sprayers on 127.0.0.66 and on 127.0.0.1 (another port) send small packets to every port of
 *   rtpengine's range for 10 s. They get nothing back, both parties keep hearing each other, and the
 *   recording is whole.
 * - Recorder injection: foreign Opus (1,000 Hz) aimed at the recorder's socket from 127.0.0.66 and from
 *   127.0.0.1 on another port stays out of the recording and earns no talk time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { startWrtcRig, type WrtcRig } from '../helpers/wrtc-rig.js';
import type { ToneOptions, WrtcCall, WrtcDialer } from '../helpers/wrtc-dialer.js';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import { startSprayer } from '../helpers/sprayer.js';
import { decryptAndDecode, readManifest, waitForRecording } from '../helpers/recording.js';
import { dbRatio, rmsDbfs } from '../helpers/tone.js';
import { until } from '../helpers/until.js';
import { opusTone, rtp } from '../recorder/ogg-reader.js';
import { createNgClient } from '../../src/media/index.js';
import { legEndpoint } from '../helpers/ng-query.js';
import type { Manifest } from '../../src/recordings/recordings.js';

const SPRAY_MS = 10_000;
const numbers: string[] = [];
let rig: WrtcRig;
let phone = 0;

before(async () => {
  // 60 ports: room for the calls here, and a range small enough to spray whole every 20 ms.
  rig = await startWrtcRig({}, 'sqlite', { mediaPorts: 60 });
});

after(async () => {
  if (numbers.length) console.log(numbers.join('\n'));
  await rig?.close();
});

interface LiveCall {
  dialer: WrtcDialer;
  userId: string;
  callId: string;
  call: WrtcCall;
  peer: RtpPeer;
}

/** An enrolled user calls out; the trunk's media is an RTP peer playing 1,000 Hz; the recording has started. */
async function recordedCall(tone: ToneOptions = { toneHz: 440 }): Promise<LiveCall> {
  const { dialer, userId } = await rig.dialer(`+1555000${String(3000 + ++phone)}`, { tone });
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const callId = await rig.call(dialer, undefined, undefined, peer.port);
  peer.start(); // answers rtpengine from the port in the trunk's SDP, as a trunk does
  await until('recording.started', () => dialer.messages.some((m) => m.type === 'recording.started' && m.callId === callId), 10_000);
  await peer.waitForPackets(25, 5000);
  const call = dialer.live(callId);
  assert.ok(call, 'the call is live');
  return { dialer, userId, callId, call, peer };
}

/** Hang up; the finished recording, its manifest, and the call's length on the server's clock. */
async function finish(c: LiveCall) {
  await rig.hangup(c.dialer, c.callId);
  const row = await waitForRecording(rig.service, c.callId);
  const record = await rig.service.records.get(c.userId, c.callId);
  assert.ok(record?.answeredAt && record.endedAt, 'the call record has answer and end times');
  const { pcm } = await decryptAndDecode(rig.service, row.id);
  const manifest = await readManifest(rig.service, row.id);
  return { row, pcm, manifest, callMs: record.endedAt - record.answeredAt };
}

test('RTP bleed: sprayers across the whole rtpengine port range get 0 packets back; the call and its recording go on', async () => {
  const c = await recordedCall();
  try {
    const { portMin, portMax } = rig.service.config.media.rtpengine;
    const sprayers = ['127.0.0.66', '127.0.0.1'].map((address) =>
      startSprayer({ address, target: rig.service.config.media.rtpengine.interface, portMin, portMax, durationMs: SPRAY_MS }),
    );
    await Promise.all(sprayers.map((s) => s.started));
    const trunkBefore = c.peer.received.length;
    const dialerBefore = c.call.meter.received;
    // What each side hears, second by second while the spray lasts (the hold time is the scenario).
    const heardByDialer: number[] = [];
    const heardByTrunk: number[] = [];
    for (let t = 0; t < SPRAY_MS / 1000; t++) {
      const from = c.peer.received.length;
      await new Promise((r) => setTimeout(r, 1000));
      heardByDialer.push(c.call.meter.measure(1000, 500) - c.call.meter.measure(440, 500));
      heardByTrunk.push(c.peer.received.length - from);
    }
    const results = await Promise.all(sprayers.map((s) => s.done));
    const got = results.reduce((n, r) => n + r.received, 0);
    numbers.push(`bleed: sprayers sent ${results.map((r) => r.sent).join(' + ')} packets to ports ${portMin}-${portMax}, received ${got} (${JSON.stringify(results.map((r) => r.from))})`);
    assert.ok(results.every((r) => r.sent >= (portMax - portMin + 1) * 100), `each sprayer covered the range at least 100 times: ${results.map((r) => r.sent)}`);
    assert.equal(got, 0, `the sprayers got call audio back: ${JSON.stringify(results.map((r) => r.from))}`);

    // Both parties kept hearing each other throughout.
    assert.ok(heardByTrunk.every((n) => n >= 25), `packets the trunk got each second: ${heardByTrunk}`);
    const atTrunk = dbRatio(c.peer.pcm(trunkBefore), 440, 1000, 8000);
    assert.ok(atTrunk >= 20, `the trunk heard the user's 440 Hz over 1,000 Hz by ${atTrunk.toFixed(1)} dB during the spray`);
    assert.ok(c.call.meter.received - dialerBefore >= 0.9 * SPRAY_MS * 48, 'the dialer kept receiving audio');
    assert.ok(heardByDialer.every((d) => d >= 20), `the dialer heard 1,000 Hz over 440 Hz each second by (dB): ${heardByDialer.map((d) => d.toFixed(0))}`);

    const { row, pcm, manifest, callMs } = await finish(c);
    numbers.push(`bleed: call ${callMs} ms, recording ${row.durationMs} ms, talk ${row.talkMs} ms`);
    assert.equal(row.state, 'complete');
    assert.ok(Math.abs(row.durationMs - callMs) <= 1000, `recording ${row.durationMs} ms for a call of ${callMs} ms`);
    assert.ok(row.talkMs >= 0.9 * row.durationMs, `talk ${row.talkMs} of ${row.durationMs} ms`);
    const near = dbRatio(pcm, 440, 1000, 48000);
    assert.ok(near >= 40, `the recording holds the user's 440 Hz, ${near.toFixed(1)} dB over 1,000 Hz`);
    assert.deepEqual(manifest.dropped, { foreignSource: 0, foreignSsrc: 0 });
  } finally {
    await hangUpIfLive(c);
    await c.peer.close();
  }
});

for (const [label, tone] of [
  ['the user talks', { toneHz: 440 }],
  ['the user is silent', { toneHz: 440, amplitude: 0 }],
] as const) {
  test(`recorder injection (${label}): foreign Opus at the recorder socket stays out of the recording and earns no talk time`, async () => {
    const c = await recordedCall(tone);
    const ng = createNgClient({ host: rig.service.config.media.rtpengine.ngAddress, port: rig.service.config.media.rtpengine.ngPort });
    const attackers: Socket[] = [];
    try {
      const recorder = legEndpoint(await ng.query(c.callId), `${c.callId}-r`); // rtpengine sends the fork there
      // Connected attackers: the kernel reports each refusal (ICMP port unreachable) as ECONNREFUSED.
      const refused = new Map<string, number>();
      for (const address of ['127.0.0.66', '127.0.0.1']) {
        const s = createSocket('udp4');
        attackers.push(s);
        await new Promise<void>((r) => s.bind(0, address, () => r()));
        const name = `${address}:${s.address().port}`;
        refused.set(name, 0);
        s.on('error', (err: NodeJS.ErrnoException) => void (err.code === 'ECONNREFUSED' && refused.set(name, refused.get(name)! + 1)));
        await new Promise<void>((r) => s.connect(recorder.port, recorder.address, () => r()));
      }
      const packets = opusTone(1000, 250, 0.9); // 5 s, loud
      const ssrc = 0x0badf00d;
      const started = performance.now();
      let sent = 0;
      for (let i = 0; i < packets.length; i++) {
        for (const s of attackers) {
          s.send(rtp(i, 960 * i, packets[i]!, ssrc, 111)); // 111: libwebrtc's Opus, what the fork carries
          sent++;
        }
        // Real-time pacing, as a stream would come.
        const due = started + 20 * (i + 1);
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }

      const { row, pcm, manifest, callMs } = await finish(c);
      const dropped = manifest.dropped!;
      numbers.push(
        `injection (${label}): sent ${sent} foreign Opus packets at ${recorder.address}:${recorder.port}; ` +
          `kernel refusals seen by the attackers ${JSON.stringify(Object.fromEntries(refused))}; ` +
          `recorder dropped foreignSource ${dropped.foreignSource}, foreignSsrc ${dropped.foreignSsrc}; ` +
          `call ${callMs} ms, recording ${row.durationMs} ms, talk ${row.talkMs} ms`,
      );
      assert.equal(row.state, 'complete');
      assert.ok(Math.abs(row.durationMs - callMs) <= 1000, `recording ${row.durationMs} ms for a call of ${callMs} ms`);
      assert.equal(dropped.foreignSsrc, 0, 'nothing with another SSRC came in, not even through rtpengine');
      if (tone.amplitude === 0) {
        assert.ok(row.talkMs <= 500, `a silent user earned ${row.talkMs} ms of talk time`);
        assert.ok(rmsDbfs(pcm) < -60, `the silent user's recording is silent: ${rmsDbfs(pcm).toFixed(1)} dBFS`);
      } else {
        assert.ok(row.talkMs >= 0.9 * row.durationMs && row.talkMs <= row.durationMs, `talk ${row.talkMs} of ${row.durationMs} ms`);
        const near = dbRatio(pcm, 440, 1000, 48000);
        assert.ok(near >= 40, `the user's 440 Hz is ${near.toFixed(1)} dB over the foreign 1,000 Hz`);
      }
      // Provably never delivered: the recorder's socket is connected to rtpengine, the kernel refused them.
      assert.ok([...refused.values()].every((n) => n > 0), `kernel refusals per attacker: ${JSON.stringify(Object.fromEntries(refused))}`);
    } finally {
      await hangUpIfLive(c);
      ng.close();
      for (const s of attackers) s.close();
      await c.peer.close();
    }
  });
}

/** After a failed assertion: end the call so that the next test's trunk can take the SIP port. */
async function hangUpIfLive(c: LiveCall): Promise<void> {
  if (c.dialer.live(c.callId)) await rig.hangup(c.dialer, c.callId).catch(() => undefined);
}
