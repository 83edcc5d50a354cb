/**
 * RTP bleed against the one relaxation of strict source (DESIGN §4.8, README "Media security"): the WebRTC
 * leg also has `media handover`, because a real browser may send from another ICE-checked pair than the one
 * rtpengine picked — headless Chromium here sends from 192.0.2.2 while rtpengine picked 127.0.0.1. With a
 * real Chromium dialer (440 Hz) and an RTP peer as the trunk (1,000 Hz), sprayers on 127.0.0.66 and on
 * 127.0.0.1 (another port) hit every port of rtpengine's range for 10 s: they get nothing back, both sides
 * keep hearing each other, and the recording is whole.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { startSprayer } from '../helpers/sprayer.js';
import { decryptAndDecode, waitForRecording } from '../helpers/recording.js';
import { dbRatio } from '../helpers/tone.js';
import { legEndpoint } from '../helpers/ng-query.js';
import { createNgClient } from '../../src/media/index.js';

const SPRAY_MS = 10_000;
let rig: BrowserRig;
const numbers: string[] = [];

before(async () => {
  rig = await startBrowserRig({ recording: { chunkSeconds: 2 } }, { mediaPorts: 60 });
});

after(async () => {
  if (numbers.length) console.log(numbers.join('\n'));
  await rig?.close();
});

test('RTP bleed with Chromium as the dialer: sprayers across the whole range get 0 packets; both sides hear each other; the recording is whole', async () => {
  const { service } = rig;
  const user = await service.users.create({ phone: '+15550004001', enrolled: true, consentVersion: 'v1' });
  const { token } = await service.tokens.issue(user.id, 3_600_000);
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const { dialer, sipp } = await rig.dialTrunk(token, peer, { timeoutMs: 60_000 });
  const ng = createNgClient({ host: service.config.media.rtpengine.ngAddress, port: service.config.media.rtpengine.ngPort });
  try {
    await dialer.page.waitForSelector('#note[data-kind="recording"]', { timeout: 10_000 });
    await peer.waitForPackets(50, 10_000);
    const callId = (await dialer.callId())!;
    const dialerLeg = async (): Promise<string> => {
      const e = legEndpoint(await ng.query(callId), `${callId}-d`);
      return `${e.address}:${e.port}`;
    };

    const { portMin, portMax, interface: target } = service.config.media.rtpengine;
    const sprayers = ['127.0.0.66', '127.0.0.1'].map((address) => startSprayer({ address, target, portMin, portMax, durationMs: SPRAY_MS }));
    await Promise.all(sprayers.map((s) => s.started));
    const trunkFrom = peer.received.length;
    // The browser's ear, in 2 s windows while the spray lasts (the windows are the hold time).
    const heard: number[] = [];
    for (let t = 0; t < SPRAY_MS / 2000; t++) {
      const tones = await dialer.measureRemoteTone([1000, 440], 2000);
      heard.push(tones[1000]! - tones[440]!);
    }
    const results = await Promise.all(sprayers.map((s) => s.done));
    const got = results.reduce((n, r) => n + r.received, 0);
    // Where the WebRTC leg is bound: Chromium's address, which may differ from rtpengine's ICE choice.
    numbers.push(`bleed (Chromium): WebRTC leg bound to ${await dialerLeg()}`);
    numbers.push(`bleed (Chromium): sprayers sent ${results.map((r) => r.sent).join(' + ')} packets to ports ${portMin}-${portMax}, received ${got}`);
    assert.ok(results.every((r) => r.sent >= (portMax - portMin + 1) * 100), `each sprayer covered the range at least 100 times: ${results.map((r) => r.sent)}`);
    assert.equal(got, 0, `the sprayers got call audio back: ${JSON.stringify(results.map((r) => r.from))}`);
    assert.ok(peer.received.length - trunkFrom >= 0.8 * (SPRAY_MS / 20), `the trunk got ${peer.received.length - trunkFrom} packets during the spray`);
    const atTrunk = dbRatio(peer.pcm(trunkFrom), 440, 1000, 8000);
    assert.ok(atTrunk >= 20, `the trunk heard the user's 440 Hz over 1,000 Hz by ${atTrunk.toFixed(1)} dB during the spray`);
    assert.ok(heard.every((d) => d > 20), `the browser heard 1,000 Hz over 440 Hz in each window by (dB): ${heard.map((d) => d.toFixed(0))}`);

    await dialer.hangup();
    await dialer.waitState('ended', 10_000);
    const row = await waitForRecording(service, callId);
    const record = await service.records.get(user.id, callId);
    assert.ok(record?.answeredAt && record.endedAt);
    const callMs = record.endedAt - record.answeredAt;
    numbers.push(`bleed (Chromium): call ${callMs} ms, recording ${row.durationMs} ms, talk ${row.talkMs} ms`);
    assert.equal(row.state, 'complete');
    assert.ok(Math.abs(row.durationMs - callMs) <= 1000, `recording ${row.durationMs} ms for a call of ${callMs} ms`);
    const { pcm } = await decryptAndDecode(service, row.id);
    const near = dbRatio(pcm, 440, 1000, 48000);
    assert.ok(near >= 40, `the recording holds the user's 440 Hz, ${near.toFixed(1)} dB over 1,000 Hz`);
  } finally {
    ng.close();
    sipp.kill();
    await dialer.close();
    await peer.close();
  }
});
