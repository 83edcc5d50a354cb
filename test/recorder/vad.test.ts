import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VoiceActivity, SILENCE_DBFS } from '../../src/recorder/voice-activity.js';
import { RecordingPipeline } from '../../src/recorder/pipeline.js';
import { opusTone, rtp } from './ogg-reader.js';

test('a tone reads as talk, at about its level', () => {
  const vad = new VoiceActivity();
  for (const p of opusTone(440, 100, 0.25)) vad.push(p, 960); // 2 s at -12 dBFS peak, -15 dBFS RMS
  const r = vad.result();
  assert.ok(r.talkMs >= 1900 && r.talkMs <= 2000, `talk ${r.talkMs}`);
  assert.ok(r.peakDbfs > -15 && r.peakDbfs < -9, `peak ${r.peakDbfs}`);
  assert.ok(r.meanDbfs > -18 && r.meanDbfs < -12, `mean ${r.meanDbfs}`);
});

test('digital silence reads as ~0 talk', () => {
  const vad = new VoiceActivity();
  for (const p of opusTone(0, 100)) vad.push(p, 960);
  vad.silence(48000);
  const r = vad.result();
  assert.ok(r.talkMs <= 20, `talk ${r.talkMs}`);
  assert.ok(r.meanDbfs < -80 || r.meanDbfs === SILENCE_DBFS, `mean ${r.meanDbfs}`);
});

test('pipeline: talk is the tone part (plus hangover), not the silent part', () => {
  const tone = opusTone(440, 50); // 1 s
  const quiet = opusTone(0, 100); // 2 s
  const p = new RecordingPipeline({ chunkSeconds: 5, vad: true, onChunk: () => {} });
  [...tone, ...quiet].forEach((pk, i) => p.push(rtp(i, i * 960, pk), i * 20));
  const s = p.end();
  assert.ok(s.talkMs >= 1000 && s.talkMs <= 1300, `talk ${s.talkMs}`);
  assert.equal(s.durationMs, 3000);
  assert.ok(s.vad);
});

test('VAD off: no decode, talk 0', () => {
  const p = new RecordingPipeline({ chunkSeconds: 5, vad: false, onChunk: () => {} });
  opusTone(440, 10).forEach((pk, i) => p.push(rtp(i, i * 960, pk), i * 20));
  const s = p.end();
  assert.equal(s.talkMs, 0);
  assert.equal(s.vad, false);
});
