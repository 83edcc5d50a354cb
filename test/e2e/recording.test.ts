import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { TestService } from '../helpers/service.js';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { startSipp } from '../helpers/sipp.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { DialerDriver } from '../helpers/browser.js';
import { goertzel } from '../helpers/tone.js';
import { createNgClient } from '../../src/media/index.js';
import { decryptAndDecode, filesBelow, waitForRecording } from '../helpers/recording.js';

/**
 * DESIGN §4.1 and §4.2: the recording holds the enrolled user's voice (the browser's 440 Hz) and not the
 * other party's (the trunk's 1,000 Hz), for calls in both directions; nothing readable is at rest.
 */
let rig: BrowserRig;
let service: TestService;
let browser: Browser;
let sippPort: number;
const suppression: number[] = [];

before(async () => {
  rig = await startBrowserRig({ recording: { chunkSeconds: 2 } });
  ({ service, browser, sippPort } = rig);
});

after(async () => {
  if (suppression.length) console.log(`far tone suppression in recordings (dB): ${suppression.map((d) => d.toFixed(1)).join(', ')}`);
  await rig?.close();
});

async function call(direction: 'outbound' | 'inbound', token: string, number: string, holdMs: number): Promise<string> {
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const dialer = await DialerDriver.open(browser, service.url);
  try {
    let sipp;
    if (direction === 'outbound') {
      sipp = startSipp({ scenario: 'uas-401-answer', port: sippPort, remote: `127.0.0.1:${service.sipPort}`, keys: { rtp_port: String(peer.port) }, timeoutMs: 30_000 });
      await sipp.ready;
      await dialer.connect(token);
      await dialer.call('+15550002222');
    } else {
      await dialer.connect(token);
      sipp = startSipp({ scenario: 'uac-call', port: sippPort, remote: `127.0.0.1:${service.sipPort}`, service: number, pauseMs: holdMs + 4000, keys: { rtp_port: String(peer.port) }, timeoutMs: 30_000 });
      await dialer.waitState('incoming', 10_000);
      await dialer.answer();
    }
    await dialer.waitState('active', 15_000);
    peer.start();
    const callId = (await dialer.callId())!;
    await dialer.page.waitForSelector('#note[data-kind="recording"]', { timeout: 10_000 }); // the person is told
    await new Promise((r) => setTimeout(r, holdMs));
    assert.ok(peer.measure(440, 1000) > 20, 'the trunk hears the user');
    await dialer.hangup();
    await dialer.waitState('ended', 10_000);
    sipp.kill();
    return callId;
  } finally {
    await dialer.close();
    await peer.close();
  }
}

for (const direction of ['outbound', 'inbound'] as const) {
  test(`${direction}: the recording holds the user's 440 Hz and the far 1,000 Hz at least 40 dB below`, async () => {
    const phone = direction === 'outbound' ? '+15550001111' : '+15550001112';
    const user = await service.users.create({ phone, enrolled: true, consentVersion: 'v1' });
    const { token } = await service.tokens.issue(user.id, 3_600_000);
    const callId = await call(direction, token, phone, 6000);

    const row = await waitForRecording(service, callId);
    assert.equal(row.state, 'complete');
    assert.equal(row.userId, user.id);
    assert.ok(row.chunkCount >= 3, `${row.chunkCount} chunks for ~6 s at 2 s each`);
    assert.ok(row.durationMs > 5000 && row.durationMs < 12_000, `duration ${row.durationMs} ms`);
    assert.ok(row.talkMs > 3000, `talk ${row.talkMs} ms`);

    const { pcm } = await decryptAndDecode(service, row.id);
    const near = goertzel(pcm, 440, 48000);
    const far = goertzel(pcm, 1000, 48000);
    const db = 10 * Math.log10(near / Math.max(far, 1e-12));
    suppression.push(db);
    assert.ok(db >= 40, `440 Hz is only ${db.toFixed(1)} dB over 1000 Hz in the whole recording`);
    assert.equal((await service.records.get(user.id, callId))?.recordingNote, null);
  });
}

test('no recording and no fork for a user who is not enrolled, or has not consented', async () => {
  const ng = createNgClient({ host: '127.0.0.1', port: service.config.media.rtpengine.ngPort });
  try {
    for (const [phone, enrolled, consent, note] of [
      ['+15550001113', false, 'v1', null],
      ['+15550001114', true, undefined, 'no-consent'],
    ] as const) {
      const user = await service.users.create({ phone, enrolled, ...(consent && { consentVersion: consent }) });
      const { token } = await service.tokens.issue(user.id, 3_600_000);
      const peer = await createRtpPeer({ tone: 1000 });
      const { dialer, sipp } = await rig.dialTrunk(token, peer);
      try {
        await new Promise((r) => setTimeout(r, 1500));
        const callId = (await dialer.callId())!;
        const state = await ng.query(callId);
        const tags = Object.keys((state.tags ?? {}) as Record<string, unknown>);
        assert.equal(tags.length, 2, `only the two call legs exist in rtpengine: ${tags}`);
        assert.ok(!tags.some((t) => t.endsWith('-r')), 'no recorder subscription');
        await dialer.hangup();
        await dialer.waitState('ended', 10_000);
        assert.equal(await service.catalog.byCall(callId), undefined);
        const rec = await service.records.get(user.id, callId);
        assert.equal(rec?.recordingNote, note);
      } finally {
        sipp.kill();
        await dialer.close();
        await peer.close();
      }
    }
  } finally {
    ng.close();
  }
});

test('no plaintext at rest: no Ogg pages and no Opus payloads anywhere in the data folder', async () => {
  const rows = await service.catalog.all();
  assert.ok(rows.length >= 2);
  const samples: Buffer[] = [];
  for (const row of rows) {
    const { packets, ogg } = await decryptAndDecode(service, row.id);
    assert.equal(ogg.toString('latin1', 0, 4), 'OggS', 'decrypted, it is Ogg');
    samples.push(...packets.filter((p) => p.length >= 24).filter((_, i) => i % 10 === 0).map((p) => p.subarray(0, 24)));
  }
  assert.ok(samples.length > 20);
  const files = filesBelow(service.config.dataDir);
  assert.ok(files.some((f) => f.path.includes('chunk-')), 'chunks are stored in the data folder');
  for (const f of files) {
    assert.equal(f.bytes.indexOf('OggS'), -1, `${f.path} holds an Ogg page`);
    for (const s of samples) assert.equal(f.bytes.indexOf(s), -1, `${f.path} holds raw Opus`);
  }
});
