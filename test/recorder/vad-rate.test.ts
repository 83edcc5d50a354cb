/**
 * The voice activity decodes at 16 kHz (cheaper: 1.5x for the hybrid packets browsers send for speech) while the
 * full-band reference is a 48 kHz decode. What that approximation may do to talk time, which feeds payouts:
 * - never count more talk than the reference (a sender cannot gain from it);
 * - match it within 2% on voice-band content (tones from 200 Hz to 3 kHz, at, above and below the threshold);
 * - on speech-like audio it counts less, by what sits above 8 kHz (fricatives): measured 5-30% less on the
 *   synthetic voices of test/helpers/speech.ts, whose unvoiced syllables are brighter than most speech. The
 *   floor below keeps that from silently getting worse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VoiceActivity } from '../../src/recorder/voice-activity.js';
import { opusPackets, speechLike, toneAt } from '../helpers/speech.js';

function talkMs(packets: Buffer[], decodeRate: 16000 | 48000): number {
  const v = new VoiceActivity({ decodeRate });
  for (const p of packets) v.push(p, 960);
  return v.result().talkMs;
}

test('16 kHz voice activity against the 48 kHz reference: tones in the voice band within 2%', () => {
  for (const freq of [200, 440, 1000, 3000]) {
    for (const dbfs of [-20, -40, -44, -50]) {
      const packets = opusPackets(toneAt(freq, 3, dbfs));
      const ref = talkMs(packets, 48000);
      const got = talkMs(packets, 16000);
      assert.ok(Math.abs(got - ref) <= 0.02 * ref + 20, `${freq} Hz at ${dbfs} dBFS: ${got} ms against ${ref} ms`);
    }
  }
});

test('16 kHz voice activity against the 48 kHz reference: speech-like audio never gains, loses at most 35%', () => {
  for (const [seed, opts] of [[1, {}], [2, {}], [3, { noiseDbfs: -Infinity }], [4, { noiseDbfs: -50 }]] as const) {
    const packets = opusPackets(speechLike(20, { seed, ...opts }));
    const ref = talkMs(packets, 48000);
    const got = talkMs(packets, 16000);
    assert.ok(ref > 2000, `the voice talks (${ref} ms of 20 s)`);
    assert.ok(got <= ref * 1.01 + 20, `voice ${seed}: ${got} ms is not more than the reference ${ref} ms`);
    assert.ok(got >= ref * 0.65, `voice ${seed}: ${got} ms is at least 65% of the reference ${ref} ms`);
  }
});
