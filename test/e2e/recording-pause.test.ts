import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startWrtcRig, type WrtcRig } from '../helpers/wrtc-rig.js';
import type { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { decryptAndDecode, readManifest, waitForRecording } from '../helpers/recording.js';
import { goertzel } from '../helpers/tone.js';
import { until } from '../helpers/until.js';
import type { Manifest } from '../../src/recordings/recordings.js';
import type { PauseBehavior } from '../../src/recorder/pipeline.js';

/**
 * Issue 10 item 2: the owner pauses the recording for 3 s in the middle of a real call (libwebrtc dialer
 * with a continuous 440 Hz tone, sipp trunk) and resumes it. Silence: the paused span of the decrypted file
 * holds no tone and the file's length follows the call. Skip: the file is ~3 s shorter. Either way talk
 * time and pay leave the pause out.
 */
const PAUSE_MS = 3000;

const count = (d: WrtcDialer, type: string, callId: string) => d.messages.filter((m) => m.type === type && 'callId' in m && m.callId === callId).length;
const errorCount = (d: WrtcDialer, code: string) => d.errors.filter((e) => e.code === code).length;

async function chunks(rig: WrtcRig, callId: string): Promise<number> {
  return (await rig.service.catalog.byCall(callId))?.chunkCount ?? 0;
}

async function pausedCall(behavior: PauseBehavior) {
  const rig = await startWrtcRig({ recording: { chunkSeconds: 1, pauseBehavior: behavior }, payouts: { minBillableSeconds: 1 } });
  try {
    const { dialer } = await rig.dialer(behavior === 'silence' ? '+15554440001' : '+15554440002');
    const callId = await rig.call(dialer);
    await until('recording.started', () => count(dialer, 'recording.started', callId) === 1, 10_000);
    const startedAt = performance.now();
    await until('two seconds recorded before the pause', async () => (await chunks(rig, callId)) >= 2, 15_000);

    dialer.pauseRecording(callId);
    dialer.pauseRecording(callId); // idempotent: answered again, no error
    await until('recording.paused twice', () => count(dialer, 'recording.paused', callId) === 2, 5000);
    await new Promise((r) => setTimeout(r, PAUSE_MS)); // the measured quantity, not a wait for an event
    dialer.pauseRecording(callId, false);
    await until('recording.resumed', () => count(dialer, 'recording.resumed', callId) === 1, 5000);
    const resumedChunks = await chunks(rig, callId);
    await until('two seconds recorded after the resume', async () => (await chunks(rig, callId)) >= resumedChunks + 2, 15_000);
    const wallMs = performance.now() - startedAt;
    assert.equal(errorCount(dialer, 'NOT_RECORDING') + errorCount(dialer, 'CALL_NOT_FOUND'), 0, JSON.stringify(dialer.errors));

    // Someone else's call, and an unknown one: the same CALL_NOT_FOUND.
    const { dialer: other } = await rig.dialer(behavior === 'silence' ? '+15554440011' : '+15554440012');
    other.pauseRecording(callId);
    other.pauseRecording('call_unknown');
    await until('two CALL_NOT_FOUND', () => errorCount(other, 'CALL_NOT_FOUND') === 2, 5000);
    assert.equal(count(other, 'recording.paused', callId), 0);

    await rig.hangup(dialer, callId);
    const row = await waitForRecording(rig.service, callId);
    assert.equal(row.state, 'complete');
    const manifest = await readManifest(rig.service, row.id);
    const { pcm } = await decryptAndDecode(rig.service, row.id);
    const earned = await until('earnings.updated', () => count(dialer, 'earnings.updated', callId) === 1, 10_000).then(
      () => rig.service.db.db.selectFrom('settlements').selectAll().where('call_id', '=', callId).executeTakeFirstOrThrow(),
    );
    const call = await rig.service.db.db.selectFrom('calls').select(['answered_at', 'ended_at']).where('id', '=', callId).executeTakeFirstOrThrow();
    return { row, manifest, pcm, wallMs, earned, callMs: Number(call.ended_at) - Number(call.answered_at), rig };
  } catch (err) {
    await rig.close();
    throw err;
  }
}

const tone = (pcm: Int16Array, fromMs: number, toMs: number) => goertzel(pcm.subarray(Math.round(fromMs * 48), Math.round(toMs * 48)), 440, 48000);

test('silence: the paused 3 s are silent in the decrypted file, its length follows the call, talk and pay leave them out', { timeout: 90_000 }, async () => {
  const { row, manifest, pcm, wallMs, earned, callMs, rig } = await pausedCall('silence');
  try {
    assert.equal(manifest.pauseBehavior, 'silence');
    assert.equal(manifest.pausedSpans?.length, 1, JSON.stringify(manifest.pausedSpans));
    const span = manifest.pausedSpans![0]!;
    assert.ok(Math.abs(span.pausedMs - PAUSE_MS) < 400, `paused ${span.pausedMs} ms`);
    assert.equal(span.endMs - span.startMs, span.pausedMs, 'the span keeps its place in the timeline');
    assert.ok(Math.abs(row.durationMs - wallMs) < 1000, `file ${row.durationMs} ms for ${wallMs.toFixed(0)} ms recorded`);
    const before = tone(pcm, Math.max(0, span.startMs - 1500), span.startMs - 100);
    const during = tone(pcm, span.startMs + 100, span.endMs - 100);
    const after = tone(pcm, span.endMs + 100, span.endMs + 1500);
    const db = 10 * Math.log10(Math.min(before, after) / Math.max(during, 1e-12));
    console.log(`silence mode: span ${span.startMs}-${span.endMs} ms, tone ${db.toFixed(1)} dB below the unpaused audio; file ${row.durationMs} ms, talk ${row.talkMs} ms`);
    assert.ok(db > 40, `the paused span holds the tone only ${db.toFixed(1)} dB down`);
    assert.ok(row.talkMs <= row.durationMs - span.pausedMs + 300, `talk ${row.talkMs} ms excludes the ${span.pausedMs} ms pause`);
    assert.ok(row.talkMs >= row.durationMs - span.pausedMs - 1500, `talk ${row.talkMs} ms is the rest`);
    assert.ok(earned.billable_s <= Math.floor((callMs - span.pausedMs) / 1000), `billable ${earned.billable_s} s of a ${callMs} ms call`);
    assert.ok(earned.talk_s <= earned.billable_s);
    assert.ok(Number(earned.amount_micros) > 0, 'the unpaused part is paid');
  } finally {
    await rig.close();
  }
});

test('skip: the paused 3 s are cut, the file is ~3 s shorter than the call and the tone runs across the cut', { timeout: 90_000 }, async () => {
  const { row, manifest, pcm, wallMs, earned, callMs, rig } = await pausedCall('skip');
  try {
    assert.equal(manifest.pauseBehavior, 'skip');
    const span = manifest.pausedSpans![0]!;
    assert.equal(manifest.pausedSpans?.length, 1);
    assert.equal(span.startMs, span.endMs, 'cut: no room in the timeline');
    assert.ok(Math.abs(span.pausedMs - PAUSE_MS) < 400, `paused ${span.pausedMs} ms`);
    const shorter = wallMs - row.durationMs;
    console.log(`skip mode: file ${row.durationMs} ms for ${wallMs.toFixed(0)} ms recorded (${shorter.toFixed(0)} ms shorter), talk ${row.talkMs} ms`);
    assert.ok(Math.abs(shorter - PAUSE_MS) < 1000, `the file is ${shorter.toFixed(0)} ms shorter`);
    const around = tone(pcm, span.startMs - 500, span.startMs + 500);
    const earlier = tone(pcm, span.startMs - 1500, span.startMs - 500);
    assert.ok(around > earlier / 100, 'no silent span at the cut');
    assert.ok(row.talkMs <= row.durationMs + 300, `talk ${row.talkMs} ms`);
    assert.ok(earned.billable_s <= Math.floor((callMs - span.pausedMs) / 1000), `billable ${earned.billable_s} s of a ${callMs} ms call`);
  } finally {
    await rig.close();
  }
});

test('a call that is not recorded answers NOT_RECORDING', { timeout: 60_000 }, async () => {
  const rig = await startWrtcRig({});
  try {
    const { dialer } = await rig.dialer('+15554440003', { consent: false });
    const callId = await rig.call(dialer);
    dialer.pauseRecording(callId);
    dialer.pauseRecording(callId, false);
    await until('NOT_RECORDING twice', () => errorCount(dialer, 'NOT_RECORDING') === 2, 10_000);
    assert.equal(count(dialer, 'recording.paused', callId), 0);
    await rig.hangup(dialer, callId);
  } finally {
    await rig.close();
  }
});
