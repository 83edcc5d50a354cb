// A tiny WAV writer for test fixtures: 16-bit PCM mono sine tones (Chromium's fake microphone input).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
  const frames = Math.round(seconds * sampleRate);
  const dataBytes = frames * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * 2, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  const peak = Math.round(Math.min(1, Math.max(0, amplitude)) * 32767);
  for (let i = 0; i < frames; i++) {
    buf.writeInt16LE(Math.round(peak * Math.sin((2 * Math.PI * freq * i) / sampleRate)), 44 + i * 2);
  }
  return buf;
}

/** Write `sineWav(opts)` to `path`, or to a fresh temporary file; returns the path. */
export function writeSineWav(opts: SineOptions, path?: string): string {
  const target = path ?? join(mkdtempSync(join(tmpdir(), 'monologue-wav-')), `sine-${opts.freq}hz.wav`);
  writeFileSync(target, sineWav(opts));
  return target;
}
