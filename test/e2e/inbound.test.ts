import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { TestService } from '../helpers/service.js';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { startSipp } from '../helpers/sipp.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { DialerDriver } from '../helpers/browser.js';

/** sipp calls the user's number; the dialer page rings, the person answers; audio both ways; sipp hangs up. */
let rig: BrowserRig;
let service: TestService;
let browser: Browser;
let sippPort: number;
let token: string;
let userId: string;

before(async () => {
  rig = await startBrowserRig();
  ({ service, browser, sippPort } = rig);
  ({ token, id: userId } = await service.addUser('+15550001111'));
});

after(async () => rig?.close());

test('inbound call rings the dialer; answered; audio both ways; the trunk hangs up', async () => {
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const dialer = await DialerDriver.open(browser, service.url);
  try {
    await dialer.connect(token);
    const sipp = startSipp({
      scenario: 'uac-call',
      port: sippPort,
      remote: `127.0.0.1:${service.sipPort}`,
      service: '+15550001111',
      pauseMs: 7000,
      keys: { rtp_port: String(peer.port), caller: '+15550002222' },
      timeoutMs: 30_000,
    });
    await dialer.waitState('incoming', 10_000);
    const callId = await dialer.callId();
    assert.ok(callId);
    await dialer.answer();
    await dialer.waitState('active', 10_000);
    peer.start();
    await peer.waitForPackets(100, 10_000);

    const tones = await dialer.measureRemoteTone([1000, 440], 1500);
    assert.ok(tones[1000]! - tones[440]! > 20, `browser hears 1000 Hz over 440 Hz: ${JSON.stringify(tones)}`);
    const trunkHears = peer.measure(440, 1000);
    assert.ok(trunkHears > 20, `trunk hears 440 Hz over 1000 Hz by ${trunkHears.toFixed(1)} dB`);

    await dialer.waitState('ended', 15_000);
    assert.equal((await dialer.lastEnded())?.reason, 'remote-hangup');
    const result = await sipp.done;
    assert.equal(result.code, 0, `sipp failed: ${result.errors}\n${result.stderr}`);
    assert.deepEqual(await service.media.listCalls(), []);

    const rec = await service.records.get(userId, callId!);
    assert.equal(rec?.direction, 'inbound');
    assert.equal(rec?.counterpart, '+15550002222');
    assert.equal(rec?.endReason, 'remote-hangup');
    assert.ok(rec && rec.createdAt <= rec.ringingAt! && rec.ringingAt! <= rec.answeredAt! && rec.answeredAt! <= rec.endedAt!, JSON.stringify(rec));
  } finally {
    await dialer.close();
    await peer.close();
  }
});
