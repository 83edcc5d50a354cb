// Sine-tone WAV fixtures (16-bit PCM mono) for Chromium's fake microphone, on top of tone.ts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sine, wavBytes } from './tone.js';

export interface SineOptions {
  /** Tone frequency in Hz. */
  freq: number;
  /** Length in seconds (Chromium loops the file, so a few seconds are plenty). */
  seconds: number;
  /** Default 48000. */
  sampleRate?: number;
  /** Peak amplitude, 0..1; default 0.5 (about -6 dBFS). */
  amplitude?: number;
}

/** The bytes of a 16-bit mono PCM WAV file holding one sine tone. */
export function sineWav({ freq, seconds, sampleRate = 48_000, amplitude = 0.5 }: SineOptions): Buffer {
  const clamped = Math.min(1, Math.max(0, amplitude));
  return wavBytes(sine(freq, sampleRate, Math.round(seconds * sampleRate), clamped), sampleRate);
}

/** Write `sineWav(opts)` to `path`, or to a fresh temporary file; returns the path. */
export function writeSineWav(opts: SineOptions, path?: string): string {
  const target = path ?? join(mkdtempSync(join(tmpdir(), 'monologue-wav-')), `sine-${opts.freq}hz.wav`);
  writeFileSync(target, sineWav(opts));
  return target;
}
