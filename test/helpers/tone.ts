/**
 * Audio helpers for media tests: sine tones as Int16 PCM, G.711 µ-law / A-law, Goertzel power,
 * and a WAV writer (for Chromium's `--use-file-for-fake-audio-capture`, 16-bit mono, 48 kHz by default).
 */
import { writeFileSync } from 'node:fs';

/**
 * `samples` of a sine of `freq` Hz at `rate` Hz, amplitude `amplitude` (0..1 of full scale),
 * starting at sample index `offset` (to continue a tone across frames without clicks).
 */
export function sine(freq: number, rate: number, samples: number, amplitude = 0.5, offset = 0): Int16Array {
  const out = new Int16Array(samples);
  const a = Math.round(32767 * amplitude);
  for (let i = 0; i < samples; i++) out[i] = Math.round(a * Math.sin((2 * Math.PI * freq * (i + offset)) / rate));
  return out;
}

// ---------------------------------------------------------------- G.711 (ITU-T G.711, as in Sun's g711.c)

const BIAS = 0x84;
const CLIP = 32635;

export function linearToMulaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function mulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const t = (((u & 0x0f) << 3) + BIAS) << ((u & 0x70) >> 4);
  return u & 0x80 ? BIAS - t : t - BIAS;
}

export function linearToAlaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample))) >> 3;
  let mask: number;
  if (s >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    s = -s - 1;
  }
  const segEnds = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
  let seg = 0;
  while (seg < 8 && s > (segEnds[seg] as number)) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << 4;
  aval |= seg < 2 ? (s >> 1) & 0x0f : (s >> seg) & 0x0f;
  return aval ^ mask;
}

export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

export type G711 = 'PCMU' | 'PCMA';

export function g711Encode(pcm: Int16Array, law: G711 = 'PCMU'): Buffer {
  const out = Buffer.alloc(pcm.length);
  const enc = law === 'PCMU' ? linearToMulaw : linearToAlaw;
  for (let i = 0; i < pcm.length; i++) out[i] = enc(pcm[i] as number);
  return out;
}

export function g711Decode(bytes: Uint8Array, law: G711 = 'PCMU'): Int16Array {
  const out = new Int16Array(bytes.length);
  const dec = law === 'PCMU' ? mulawToLinear : alawToLinear;
  for (let i = 0; i < bytes.length; i++) out[i] = dec(bytes[i] as number);
  return out;
}

// ---------------------------------------------------------------- analysis

/** Goertzel: mean power of `freq` Hz in `pcm` sampled at `rate` Hz (arbitrary linear units). */
export function goertzel(pcm: Int16Array, freq: number, rate: number): number {
  const n = pcm.length;
  if (n === 0) return 0;
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = (pcm[i] as number) + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n);
}

/** Level of `freq` in `pcm` as dBFS of a sine's peak (a full-scale tone reads 0); -200 for silence. */
export function toneDbfs(pcm: Int16Array, freq: number, rate: number): number {
  const power = goertzel(pcm, freq, rate);
  return power > 0 ? Math.max(-200, 10 * Math.log10((4 * power) / 32768 ** 2)) : -200;
}

/** How many dB stronger `freqA` is than `freqB` in `pcm` (positive: A dominates). Floors avoid ±Infinity. */
export function dbRatio(pcm: Int16Array, freqA: number, freqB: number, rate: number): number {
  const a = goertzel(pcm, freqA, rate);
  const b = goertzel(pcm, freqB, rate);
  return 10 * Math.log10((a + 1e-9) / (b + 1e-9));
}

/**
 * The share of `pcm`'s power that sits at `freq` Hz: about 1 for a pure tone, about 2/length for noise
 * (a ciphertext decoded as audio). Unlike a ratio of two bins of noise, which exceeds 10 dB about one
 * time in eleven, it tells a tone from noise with no overlap at all.
 */
export function toneShare(pcm: Int16Array, freq: number, rate: number): number {
  if (pcm.length === 0) return 0;
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return sum === 0 ? 0 : (2 * goertzel(pcm, freq, rate)) / (sum / pcm.length);
}

/** RMS level of `pcm` in dBFS (−Infinity for silence). */
export function rmsDbfs(pcm: Int16Array): number {
  if (pcm.length === 0) return -Infinity;
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return 20 * Math.log10(Math.sqrt(sum / pcm.length) / 32768);
}

// ---------------------------------------------------------------- WAV

/** A 16-bit mono PCM WAV file image. */
export function wavBytes(pcm: Int16Array, rate = 48000): Buffer {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28); // byte rate
  h.writeUInt16LE(2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Write a WAV of `seconds` of a `freq` Hz tone (default 48 kHz mono 16-bit); returns the path. */
export function writeToneWav(path: string, freq: number, seconds: number, rate = 48000, amplitude = 0.5): string {
  writeFileSync(path, wavBytes(sine(freq, rate, Math.round(seconds * rate), amplitude), rate));
  return path;
}
