import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestService } from '../helpers/service.js';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';

/**
 * A person in the dialer page (Chromium, fake microphone playing 440 Hz) calls a number; sipp plays the
 * trunk (401 challenge, then answer) and a real RTP socket plays its media at 1,000 Hz PCMU.
 */
let rig: BrowserRig;
let service: TestService;
let token: string;
let userId: string;

before(async () => {
  rig = await startBrowserRig();
  ({ service } = rig);
  ({ token, id: userId } = await service.addUser('+15550001111'));
});

after(async () => rig?.close());

for (const who of ['browser', 'trunk'] as const) {
  test(`outbound call, audio both ways, hung up by the ${who}`, async () => {
    const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
    const { dialer, sipp } = await rig.dialTrunk(token, peer, { byeAfterMs: who === 'trunk' ? 6000 : 0 });
    try {
      await peer.waitForPackets(100, 10_000);

      const tones = await dialer.measureRemoteTone([1000, 440], 1500);
      assert.ok(tones[1000]! - tones[440]! > 20, `browser hears the trunk's 1000 Hz over 440 Hz: ${JSON.stringify(tones)}`);
      const trunkHears = peer.measure(440, 1000);
      assert.ok(trunkHears > 20, `trunk hears the browser's 440 Hz over 1000 Hz by ${trunkHears.toFixed(1)} dB`);

      const callId = await dialer.callId();
      assert.ok(callId);
      if (who === 'browser') await dialer.hangup();
      await dialer.waitState('ended', 15_000);
      const ended = await dialer.lastEnded();
      assert.equal(ended?.reason, who === 'browser' ? 'local-hangup' : 'remote-hangup');

      const result = await sipp.done;
      assert.equal(result.code, 0, `sipp failed: ${result.errors}\n${result.stderr}`);
      assert.equal(result.successful, 1);

      assert.deepEqual(await service.media.listCalls(), [], 'rtpengine holds no call');
      const rec = await waitForRecord(service, userId, callId!);
      assert.equal(rec.direction, 'outbound');
      assert.equal(rec.counterpart, '+15550002222');
      assert.equal(rec.endReason, who === 'browser' ? 'local-hangup' : 'remote-hangup');
      assert.ok(rec.sipCallId);
      assert.ok(rec.createdAt <= rec.ringingAt! && rec.ringingAt! <= rec.answeredAt! && rec.answeredAt! <= rec.endedAt!, JSON.stringify(rec));
    } finally {
      sipp.kill();
      await dialer.close();
      await peer.close();
    }
  });
}

async function waitForRecord(service: TestService, userId: string, callId: string) {
  for (let i = 0; i < 50; i++) {
    const rec = await service.records.get(userId, callId);
    if (rec?.endedAt) return rec;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`call ${callId} has no end in its record`);
}
