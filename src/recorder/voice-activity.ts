/**
 * Voice activity and level of the recorded leg, measured by decoding its Opus packets with @discordjs/opus
 * (libopus). The stored audio is never the decoded PCM: decoding is only for measuring.
 *
 * Per packet (one analysis frame, 20 ms from browsers): RMS level in dBFS; the frame is talk when the level is
 * above `thresholdDbfs`, and talk continues for `hangoverMs` after the last loud frame (so the gaps between
 * words count as talk). Inserted silence (loss, DTX) is not decoded: it counts as quiet time.
 *
 * Cost: one libopus decode per packet, the floor of the recorder's CPU. Measured on this machine (20 ms packets
 * from libopus in VoIP mode at 32 kbit/s, as a browser sends): speech (hybrid and CELT packets) ~19-23 µs at 16 kHz,
 * ~23 µs at 24 kHz, ~29-35 µs at 48 kHz; a tone (CELT) ~15-20 µs at 16 kHz, ~18-23 µs at 48 kHz; 8 kHz costs what
 * 16 kHz does (CELT synthesises at full band and then decimates; SILK's resampler is what 48 kHz adds).
 * We decode at 16 kHz by default: voice-band energy is below 8 kHz. What it leaves out is above 8 kHz, so it never
 * counts more talk than a 48 kHz decode, matches it on voice-band tones, and counts less on bright fricatives
 * (test/recorder/vad-rate.test.ts pins both).
 */
import opus from '@discordjs/opus';

export interface VoiceActivityOptions {
  /** A frame louder than this (RMS, dBFS) is talk; -45 by default. */
  thresholdDbfs?: number;
  /** Talk lasts this long after the last loud frame; 200 ms by default. */
  hangoverMs?: number;
  /** Decoder output rate: 8000, 12000, 16000 (default), 24000 or 48000 Hz. */
  decodeRate?: 8000 | 12000 | 16000 | 24000 | 48000;
}

export interface VoiceActivityResult {
  talkMs: number;
  /** Loudest sample of the received audio, dBFS; SILENCE_DBFS when there was none. */
  peakDbfs: number;
  /** RMS level over all received (decoded) audio, dBFS; SILENCE_DBFS when there was none. */
  meanDbfs: number;
  /** Packets libopus refused (counted as quiet). */
  decodeErrors: number;
}

/** The floor reported for digital silence (as RTP audio level, RFC 6464, tops out at -127 dBov). */
export const SILENCE_DBFS = -127;

const FULL_SCALE_SQ = 32768 * 32768;

export class VoiceActivity {
  private readonly decoder: InstanceType<typeof opus.OpusEncoder>;
  private readonly rate: number;
  private readonly thresholdPower: number;
  private readonly hangoverSamples: number;
  /** 48 kHz samples of talk (integers, so the sum is exact). */
  private talkSamples = 0;
  private hangoverLeft = 0;
  private peak = 0;
  private sumSq = 0;
  private decodedSamples = 0;
  private errors = 0;

  constructor(opts: VoiceActivityOptions = {}) {
    this.rate = opts.decodeRate ?? 16000;
    this.decoder = new opus.OpusEncoder(this.rate, 1);
    const threshold = opts.thresholdDbfs ?? -45;
    this.thresholdPower = FULL_SCALE_SQ * 10 ** (threshold / 10);
    this.hangoverSamples = Math.round((opts.hangoverMs ?? 200) * 48);
  }

  /** Decode and measure one received packet of `samples` (48 kHz) samples. */
  push(packet: Buffer, samples: number): void {
    let pcm: Buffer;
    try {
      pcm = this.decoder.decode(packet);
    } catch {
      this.errors++;
      this.quiet(samples);
      return;
    }
    const n = pcm.length >> 1;
    if (n === 0) {
      this.quiet(samples);
      return;
    }
    const s16 = pcm.byteOffset % 2 === 0 ? new Int16Array(pcm.buffer, pcm.byteOffset, n) : new Int16Array(Uint8Array.from(pcm).buffer);
    let sum = 0;
    let peak = this.peak;
    for (let i = 0; i < n; i++) {
      const v = s16[i] as number;
      sum += v * v;
      const a = v < 0 ? -v : v;
      if (a > peak) peak = a;
    }
    this.peak = peak;
    this.sumSq += sum;
    this.decodedSamples += n;
    if (sum / n > this.thresholdPower) {
      this.talkSamples += samples;
      this.hangoverLeft = this.hangoverSamples;
    } else {
      this.quiet(samples);
    }
  }

  /** Account for `samples` (48 kHz) of time with no received audio (inserted silence). */
  silence(samples: number): void {
    this.quiet(samples);
  }

  /** The audio is cut here (a pause): talk before it does not carry on as hangover after it. */
  cut(): void {
    this.hangoverLeft = 0;
  }

  result(): VoiceActivityResult {
    return {
      talkMs: this.talkSamples / 48,
      peakDbfs: this.peak === 0 ? SILENCE_DBFS : Math.max(SILENCE_DBFS, 20 * Math.log10(this.peak / 32768)),
      meanDbfs:
        this.sumSq === 0 ? SILENCE_DBFS : Math.max(SILENCE_DBFS, 10 * Math.log10(this.sumSq / this.decodedSamples / FULL_SCALE_SQ)),
      decodeErrors: this.errors,
    };
  }

  private quiet(samples: number): void {
    if (this.hangoverLeft <= 0) return;
    const counted = Math.min(samples, this.hangoverLeft);
    this.talkSamples += counted;
    this.hangoverLeft -= counted;
  }
}
