/**
 * Speech-like test audio, deterministic from a seed, and Opus packets of it encoded the way a browser does.
 *
 * Not speech, but it has what a voice-activity measure reacts to: talk spurts (0.6-3 s) separated by pauses
 * (0.2-2 s) over a faint room noise; inside a spurt, syllables (90-320 ms) that are voiced (harmonics of a
 * gliding 90-240 Hz pitch shaped by three formants) or unvoiced (noise bursts), each with its own loudness, and
 * short gaps between them; spurts from a loud talker down to a quiet one near the -45 dBFS threshold.
 */
import opus from '@discordjs/opus';

const RATE = 48000;
const FRAME = 960; // 20 ms at 48 kHz

/** Mulberry32: a small seeded PRNG, so every run hears the same audio. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SpeechOptions {
  seed?: number;
  /** RMS of the room noise under everything, dBFS; -70 by default; -Infinity for digital silence. */
  noiseDbfs?: number;
  /** Loudest and quietest spurt level (peak of a syllable), dBFS; -10 and -40 by default. */
  loudDbfs?: number;
  quietDbfs?: number;
}

/** `seconds` of speech-like 48 kHz mono audio. */
export function speechLike(seconds: number, opts: SpeechOptions = {}): Int16Array {
  const rnd = prng(opts.seed ?? 1);
  const n = Math.round(seconds * RATE);
  const out = new Float64Array(n);
  const loud = opts.loudDbfs ?? -10;
  const quiet = opts.quietDbfs ?? -40;
  let t = Math.round((0.1 + rnd() * 0.4) * RATE);
  while (t < n) {
    const spurtEnd = Math.min(n, t + Math.round((0.6 + rnd() * 2.4) * RATE));
    const spurtDb = quiet + rnd() * (loud - quiet);
    let f0 = 90 + rnd() * 150;
    while (t < spurtEnd) {
      const len = Math.min(spurtEnd - t, Math.round((0.09 + rnd() * 0.23) * RATE));
      const amp = 32768 * 10 ** ((spurtDb - rnd() * 12) / 20);
      if (rnd() < 0.75) voiced(out, t, len, amp, f0, rnd);
      else unvoiced(out, t, len, amp * 0.4, rnd);
      f0 = Math.max(80, Math.min(260, f0 * (0.9 + rnd() * 0.2)));
      t += len + Math.round((0.02 + rnd() * 0.08) * RATE);
    }
    t = spurtEnd + Math.round((0.2 + rnd() * 1.8) * RATE);
  }
  const noiseDb = opts.noiseDbfs ?? -70;
  const noiseAmp = Number.isFinite(noiseDb) ? 32768 * 10 ** (noiseDb / 20) * Math.sqrt(3) : 0; // uniform noise: RMS = amp/√3
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const v = (out[i] as number) + (noiseAmp ? (rnd() * 2 - 1) * noiseAmp : 0);
    pcm[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return pcm;
}

/** Hann-shaped rise and fall over a syllable. */
function envelope(i: number, len: number): number {
  return 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / len);
}

function voiced(out: Float64Array, at: number, len: number, amp: number, f0: number, rnd: () => number): void {
  const formants = [300 + rnd() * 600, 900 + rnd() * 1400, 2300 + rnd() * 800];
  const harmonics: Array<[number, number]> = [];
  let norm = 0;
  for (let k = 1; k * f0 < 7000; k++) {
    const f = k * f0;
    let g = 0;
    for (const [j, fm] of formants.entries()) g += 1 / (j + 1) / (1 + ((f - fm) / 120) ** 2);
    harmonics.push([f, g]);
    norm += g;
  }
  const glide = (rnd() - 0.5) * 0.2;
  for (let i = 0; i < len && at + i < out.length; i++) {
    const bend = 1 + (glide * i) / len;
    let s = 0;
    for (const [f, g] of harmonics) s += g * Math.sin((2 * Math.PI * f * bend * i) / RATE);
    out[at + i] = (out[at + i] as number) + ((amp * s) / norm) * envelope(i, len);
  }
}

function unvoiced(out: Float64Array, at: number, len: number, amp: number, rnd: () => number): void {
  let prev = 0;
  for (let i = 0; i < len && at + i < out.length; i++) {
    const w = rnd() * 2 - 1;
    const hp = w - prev * 0.7; // tilt the noise up, like a fricative
    prev = w;
    out[at + i] = (out[at + i] as number) + amp * hp * envelope(i, len);
  }
}

/** `seconds` of a sine at `freq` Hz and `dbfs` peak level. */
export function toneAt(freq: number, seconds: number, dbfs: number): Int16Array {
  const n = Math.round(seconds * RATE);
  const a = 32768 * 10 ** (dbfs / 20);
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(a * Math.sin((2 * Math.PI * freq * i) / RATE));
  return pcm;
}

/** libopus's CTL for the application mode, and the VoIP mode a browser's WebRTC encoder uses. */
const OPUS_SET_APPLICATION = 4000;
const OPUS_APPLICATION_VOIP = 2048;

/** Encode 48 kHz mono PCM into 20 ms Opus packets as a browser would for a call (VoIP mode, 32 kbit/s). */
export function opusPackets(pcm: Int16Array, bitrate = 32000): Buffer[] {
  const enc = new opus.OpusEncoder(RATE, 1);
  enc.applyEncoderCTL(OPUS_SET_APPLICATION, OPUS_APPLICATION_VOIP);
  enc.setBitrate(bitrate);
  const packets: Buffer[] = [];
  for (let o = 0; o + FRAME <= pcm.length; o += FRAME) {
    packets.push(enc.encode(Buffer.from(pcm.buffer, pcm.byteOffset + o * 2, FRAME * 2)));
  }
  return packets;
}
