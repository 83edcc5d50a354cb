import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWrtcRig } from '../helpers/wrtc-rig.js';
import type { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { g711Decode, toneShare, writeToneWav } from '../helpers/tone.js';
import { until } from '../helpers/until.js';
import { decryptAndDecode } from '../helpers/recording.js';
import { isDict } from '../../src/media/index.js';
import type { TestService } from '../helpers/service.js';

/**
 * The consent policy on real calls (libwebrtc dialer, rtpengine, sipp trunk): a user on an outdated consent
 * version is not forked until they accept the current one; the counterpart policy's `skip` records nothing and
 * `announce` plays the prompt to the trunk leg before the recording starts.
 */

const recordingEvents = (d: WrtcDialer, callId: string) =>
  d.messages.filter((m) => 'callId' in m && m.callId === callId && m.type.startsWith('recording.')).map((m) => `${m.type}:${'reason' in m ? m.reason : ''}`);

/** Whether rtpengine holds a subscription on the dialer's leg (the recorder's fork, `<call>-r`). */
async function forked(service: TestService, callId: string): Promise<boolean> {
  const tags = (await service.rtpengine!.ng.query(callId)).tags;
  const leg = isDict(tags) ? tags[`${callId}-d`] : undefined;
  const subscribers = isDict(leg) && Array.isArray(leg.subscribers) ? leg.subscribers : [];
  return subscribers.some((s) => isDict(s) && s.tag === `${callId}-r`);
}

async function waitRecordingEvent(dialer: WrtcDialer, callId: string, event: string): Promise<void> {
  await until(event, () => recordingEvents(dialer, callId).includes(event), 15_000);
}

test('a user on an outdated consent version is not forked (consent-outdated); after accepting the current one the next call is recorded', { timeout: 90_000 }, async () => {
  const r = await startWrtcRig({ recording: { consent: { version: 'v2' } } });
  try {
    const { dialer, userId } = await r.dialer('+15553340001'); // consented to v1
    const { token } = await r.service.tokens.issue(userId, 3_600_000);
    const first = await r.call(dialer);
    await waitRecordingEvent(dialer, first, 'recording.stopped:consent-outdated');
    assert.equal(await forked(r.service, first), false, 'rtpengine shows no subscription for the call');
    assert.equal(r.service.switchboard.call(first)?.state, 'answered', 'the call goes on');
    assert.equal((await r.service.records.get(userId, first))?.recordingNote, 'consent-outdated');
    assert.equal(await r.service.catalog.byCall(first), undefined, 'no recording');
    assert.deepEqual(recordingEvents(dialer, first), ['recording.stopped:consent-outdated']);
    await r.hangup(dialer, first);

    const current = (await (await fetch(new URL('v1/consent/current', r.service.url))).json()) as { version: string };
    assert.equal(current.version, 'v2');
    const put = await fetch(new URL('v1/me/consent', r.service.url), { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ version: current.version }) });
    assert.equal(put.status, 200);

    const second = await r.call(dialer);
    await waitRecordingEvent(dialer, second, 'recording.started:');
    assert.equal(await forked(r.service, second), true, 'the dialer leg is forked to the recorder');
    await until('a chunk recorded', async () => ((await r.service.catalog.byCall(second))?.chunkCount ?? 0) >= 1, 15_000);
    await r.hangup(dialer, second);
    assert.equal((await r.service.records.get(userId, second))?.recordingNote, null);
  } finally {
    await r.close();
  }
});

test('counterpart policy skip: no fork, no recording, reason policy; the longest matching prefix wins', { timeout: 90_000 }, async () => {
  const r = await startWrtcRig({ recording: { counterpartPolicy: { default: 'record', rules: [{ prefix: '+1555000', action: 'skip' }, { prefix: '+15550009', action: 'record' }] } } });
  try {
    const { dialer, userId } = await r.dialer('+15553340002');
    const skipped = await r.call(dialer, '+15550002222');
    await waitRecordingEvent(dialer, skipped, 'recording.stopped:policy');
    assert.equal(await forked(r.service, skipped), false);
    assert.equal((await r.service.records.get(userId, skipped))?.recordingNote, 'policy');
    assert.equal(await r.service.catalog.byCall(skipped), undefined);
    await r.hangup(dialer, skipped);

    // The longer prefix wins over the shorter one.
    const recorded = await r.call(dialer, '+15550009999');
    await waitRecordingEvent(dialer, recorded, 'recording.started:');
    assert.equal(await forked(r.service, recorded), true);
    await r.hangup(dialer, recorded);
  } finally {
    await r.close();
  }
});

test('counterpart policy announce: the trunk hears the prompt (800 Hz) before the user’s voice (440 Hz), then the recording starts', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'announce-'));
  const prompt = writeToneWav(join(dir, 'prompt.wav'), 800, 1.5, 8000, 0.4);
  const r = await startWrtcRig({ recording: { announceFile: prompt, counterpartPolicy: { default: 'record', rules: [{ prefix: '+1555000', action: 'announce' }] } } });
  const trunk = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  try {
    const { dialer } = await r.dialer('+15553340003');
    const callId = await r.call(dialer, '+15550002222', { toneHz: 440 }, trunk.port);
    await waitRecordingEvent(dialer, callId, 'recording.started:');
    const startedAtPacket = trunk.received.length;
    await trunk.waitForPackets(startedAtPacket + 50, 10_000);
    // What the trunk heard, 20 ms at a time: P the prompt, U the user, . neither.
    const heard = trunk.received.map((p) => {
      const pcm = g711Decode(p, 'PCMU');
      return toneShare(pcm, 800, 8000) > 0.5 ? 'P' : toneShare(pcm, 440, 8000) > 0.5 ? 'U' : '.';
    }).join('');
    console.log(`announce: the trunk heard ${heard.slice(0, 200)}`);
    const firstPrompt = heard.indexOf('P');
    const firstUser = heard.indexOf('U');
    assert.ok(firstPrompt >= 0, 'the trunk heard the prompt');
    const lastPrompt = heard.lastIndexOf('P');
    assert.ok(firstUser > lastPrompt, 'the whole prompt came before any of the user’s voice');
    const promptPackets = heard.split('').filter((c) => c === 'P').length;
    assert.ok(promptPackets >= 65 && promptPackets <= 85, `about 1.5 s of prompt: ${promptPackets} packets`);
    assert.ok(lastPrompt < startedAtPacket, 'the recording started after the prompt ended');
    assert.ok(heard.slice(startedAtPacket).includes('U'), 'then the trunk hears the user');
    assert.equal(await forked(r.service, callId), true);
    await until('a chunk recorded', async () => ((await r.service.catalog.byCall(callId))?.chunkCount ?? 0) >= 1, 15_000);
    await r.hangup(dialer, callId);
    // The recording is the user's leg only, begun after the prompt: their 440 Hz, none of the prompt.
    await until('the recording is complete', async () => (await r.service.catalog.byCall(callId))?.state === 'complete', 15_000);
    const { pcm } = await decryptAndDecode(r.service, (await r.service.catalog.byCall(callId))!.id);
    const body = pcm.subarray(4800, pcm.length - 4800);
    assert.ok(toneShare(body, 440, 48000) > 0.5, `the user's tone is recorded (share ${toneShare(body, 440, 48000).toFixed(2)})`);
    assert.ok(toneShare(body, 800, 48000) < 0.01, `no prompt in the recording (share ${toneShare(body, 800, 48000).toFixed(3)})`);
  } finally {
    await trunk.close();
    await r.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
