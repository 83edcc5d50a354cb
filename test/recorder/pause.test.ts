import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingPipeline, type PauseBehavior } from '../../src/recorder/pipeline.js';
import { checkOggOpus, decodeAll, opusTone, rtp } from './ogg-reader.js';
import { goertzel } from '../helpers/tone.js';

/**
 * Pause/resume at the pipeline: 3 s of a continuous 440 Hz tone (150 packets), paused for packets 50..99
 * (1 s). Silence keeps the timeline and silences the span; skip cuts it. Neither counts as talk.
 */
const TOTAL = 150;
const PAUSE_AT = 50;
const RESUME_AT = 100;

function run(behavior: PauseBehavior | undefined, pauseTwice = false) {
  const chunks: Buffer[] = [];
  const p = new RecordingPipeline({
    chunkSeconds: 1,
    vad: true,
    ...(behavior && { pauseBehavior: behavior }),
    onChunk: (c) => chunks.push(c.bytes),
  });
  const tone = opusTone(440, TOTAL, 0.25);
  tone.forEach((pk, i) => {
    if (i === PAUSE_AT) {
      assert.equal(p.pause(), true);
      if (pauseTwice) assert.equal(p.pause(), false, 'pausing twice is harmless');
    }
    if (i === RESUME_AT) {
      assert.equal(p.resume(), true);
      assert.equal(p.resume(), false, 'resuming twice is harmless');
    }
    p.push(rtp(i, i * 960, pk), i * 20);
  });
  const summary = p.end();
  const { audio, preSkip } = checkOggOpus(Buffer.concat(chunks));
  return { summary, pcm: decodeAll(audio), preSkip };
}

const power = (pcm: Int16Array, fromMs: number, toMs: number): number => goertzel(pcm.subarray(fromMs * 48, toMs * 48), 440, 48000);

test('silence: the paused span decodes silent, the duration is unchanged, talk excludes it', () => {
  const { summary, pcm } = run(undefined, true);
  assert.equal(summary.durationMs, 3000, 'timeline stays true');
  assert.deepEqual(summary.pausedSpans, [{ startMs: 1000, endMs: 2000, pausedMs: 1000 }]);
  // Decoded PCM starts at sample 0 of the stream (the pre-skip is not trimmed here); keep 60 ms off the edges
  // for the decoder's overlap.
  const before = power(pcm, 100, 940);
  const during = power(pcm, 1060, 1940);
  const after = power(pcm, 2060, 2900);
  assert.ok(before > 1e3 && after > 1e3, `the tone is there around the pause: ${before}, ${after}`);
  assert.ok(during < before * 1e-6, `the paused span is silent: ${during} vs ${before}`);
  assert.ok(summary.talkMs >= 1900 && summary.talkMs <= 2050, `talk ${summary.talkMs} ms excludes the pause (no hangover into it)`);
});

test('skip: the paused span is cut, the duration is shorter by it, talk excludes it', () => {
  const { summary, pcm } = run('skip');
  assert.equal(summary.durationMs, 2000, 'one second shorter');
  assert.deepEqual(summary.pausedSpans, [{ startMs: 1000, endMs: 1000, pausedMs: 1000 }]);
  assert.ok(power(pcm, 100, 1900) > 1e3, 'the tone runs through the cut');
  assert.ok(summary.talkMs >= 1900 && summary.talkMs <= 2050, `talk ${summary.talkMs} ms`);
});

test('a pause still open at the end is closed there; no pause, no spans', () => {
  const p = new RecordingPipeline({ chunkSeconds: 5, vad: true, onChunk: () => {} });
  const tone = opusTone(440, 50, 0.25);
  tone.forEach((pk, i) => {
    if (i === 25) p.pause();
    p.push(rtp(i, i * 960, pk), i * 20);
  });
  const s = p.end();
  assert.equal(s.durationMs, 1000);
  assert.deepEqual(s.pausedSpans, [{ startMs: 500, endMs: 1000, pausedMs: 500 }]);
  assert.ok(s.talkMs <= 520, `talk ${s.talkMs}`);
  assert.equal(p.pause(), false, 'an ended pipeline does not pause');
  const q = new RecordingPipeline({ chunkSeconds: 5, onChunk: () => {} });
  assert.deepEqual(q.end().pausedSpans, []);
});
