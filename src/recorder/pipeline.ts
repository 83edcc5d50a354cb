/**
 * The recorder's pure path, no socket: RTP datagrams in, Ogg Opus chunks out, synchronously.
 * `Recorder` feeds it from its UDP socket; tests and the benchmark drive it directly.
 *
 * Chunks are cut every `chunkSeconds` of audio (48 kHz samples, inserted silence included), always at a page
 * boundary: when a packet would start past the boundary, the open page is closed and the chunk handed over,
 * and that packet starts the next page. The cut is lazy on purpose: the final page (EOS) therefore always
 * carries audio. The first chunk starts with the OpusHead and OpusTags pages; concatenating every chunk in
 * index order gives one valid Ogg Opus stream.
 */
import { OggOpusMuxer } from './ogg-opus.js';
import { RtpIntake, type IntakeStats } from './intake.js';
import { VoiceActivity, SILENCE_DBFS, type VoiceActivityOptions } from './voice-activity.js';
import { forEachSilentPacket } from './opus-packet.js';

/**
 * What a pause does to the file: `silence` writes the silent packets the intake fills gaps with instead of
 * the audio, so the timeline stays true; `skip` writes nothing, so the span is cut out of the file.
 */
export type PauseBehavior = 'silence' | 'skip';

/** One pause, in the recording's timeline (ms from its start). `skip`: `startMs === endMs`, the cut is there. */
export interface PausedSpan {
  startMs: number;
  endMs: number;
  /** Audio time the pause covered (what was not recorded). */
  pausedMs: number;
}

export interface RecordingChunk {
  /** 0, 1, 2, … in stream order (the AEAD chunk counter). */
  index: number;
  /** Plaintext Ogg pages: encrypt before they touch disk or network (DESIGN §4 invariant 2). */
  bytes: Buffer;
  /** True only on the final chunk, the one holding the EOS page. */
  last: boolean;
}

export interface RecordingPipelineOptions {
  /** Seconds of audio per chunk (> 0). */
  chunkSeconds: number;
  /** Receives each chunk, synchronously, in order. */
  onChunk: (chunk: RecordingChunk) => void;
  /** Negotiated Opus payload type; 111 by default (settable later: `payloadType`). */
  payloadType?: number;
  /** Decode for voice activity and levels: true, false (default), or options. */
  vad?: boolean | VoiceActivityOptions;
  /** Ogg stream options. */
  preSkip?: number;
  serial?: number;
  /** While paused: write silence (default) or cut the span. */
  pauseBehavior?: PauseBehavior;
  /** Reorder window. */
  reorderPackets?: number;
  reorderMs?: number;
}

export interface RecordingSummary extends IntakeStats {
  /** Granule position of the last page: 48 kHz samples in the file, inserted silence included. */
  samples: number;
  /** `samples` in milliseconds: the recording's length on the arrival timeline. */
  durationMs: number;
  /** What a player shows: `samples` minus the pre-skip, in milliseconds. */
  playableMs: number;
  /** Talk time by voice activity (0 when VAD is off). */
  talkMs: number;
  peakDbfs: number;
  meanDbfs: number;
  vad: boolean;
  /** Chunks produced so far. */
  chunks: number;
  /** Total Ogg bytes produced so far. */
  oggBytes: number;
  /** The SSRC the recording locked to. */
  ssrc: number | undefined;
  /** Pauses, in order (an open one is closed at its current end). Never talk time. */
  pausedSpans: PausedSpan[];
}

export class RecordingPipeline {
  private readonly muxer: OggOpusMuxer;
  private readonly intake: RtpIntake;
  private readonly vad: VoiceActivity | undefined;
  private readonly onChunk: (chunk: RecordingChunk) => void;
  private readonly chunkSamples: number;
  private nextCut: number;
  private pages: Buffer[] = [];
  private pageBytes = 0;
  private chunkIndex = 0;
  private oggBytes = 0;
  private ended = false;
  private readonly pauseBehavior: PauseBehavior;
  private readonly spans: Array<{ start: number; samples: number; end?: number }> = [];
  /** The open pause: its start (granule) and the samples it swallowed so far. */
  private pausedNow: { start: number; samples: number; end?: number } | undefined;
  /** Samples of a pause too short for a silent packet yet (silence mode). */
  private silenceCarry = 0;

  constructor(opts: RecordingPipelineOptions) {
    if (!(opts.chunkSeconds > 0)) throw new RangeError('chunkSeconds must be > 0');
    this.chunkSamples = Math.max(1, Math.round(opts.chunkSeconds * 48000));
    this.nextCut = this.chunkSamples;
    this.onChunk = opts.onChunk;
    this.pauseBehavior = opts.pauseBehavior ?? 'silence';
    this.muxer = new OggOpusMuxer({
      onPage: (page) => {
        this.pages.push(page);
        this.pageBytes += page.length;
      },
      ...(opts.preSkip !== undefined ? { preSkip: opts.preSkip } : {}),
      ...(opts.serial !== undefined ? { serial: opts.serial } : {}),
    });
    this.vad = opts.vad ? new VoiceActivity(opts.vad === true ? {} : opts.vad) : undefined;
    this.intake = new RtpIntake({
      payloadType: opts.payloadType ?? 111,
      onPacket: (packet, samples, inserted) => this.onPacket(packet, samples, inserted),
      ...(opts.reorderPackets !== undefined ? { reorderPackets: opts.reorderPackets } : {}),
      ...(opts.reorderMs !== undefined ? { reorderMs: opts.reorderMs } : {}),
    });
  }

  get payloadType(): number {
    return this.intake.payloadType;
  }

  set payloadType(pt: number) {
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) throw new RangeError(`payload type ${pt} is not 0..127`);
    this.intake.payloadType = pt;
  }

  get closed(): boolean {
    return this.ended;
  }

  get paused(): boolean {
    return this.pausedNow !== undefined;
  }

  /** Stop keeping audio until `resume()`. Idempotent: false when already paused or ended. */
  pause(): boolean {
    if (this.ended || this.pausedNow) return false;
    this.pausedNow = { start: this.muxer.granule, samples: 0 };
    this.spans.push(this.pausedNow);
    this.silenceCarry = 0;
    // Talk before the pause must not run on into it as hangover.
    this.vad?.cut();
    return true;
  }

  /** Keep audio again. Idempotent: false when not paused or ended. */
  resume(): boolean {
    if (this.ended || !this.pausedNow) return false;
    this.pausedNow.end = this.muxer.granule;
    this.pausedNow = undefined;
    return true;
  }

  /** Feed one datagram (`arrivalMs`: monotonic milliseconds). Ignored after `end()`. Never throws on bad input. */
  push(datagram: Buffer, arrivalMs: number): void {
    if (!this.ended) this.intake.push(datagram, arrivalMs);
  }

  /** Flush everything: the last chunk (`last: true`, EOS page) goes out. Idempotent; returns the summary. */
  end(): RecordingSummary {
    if (!this.ended) {
      this.intake.flush();
      this.resume();
      this.ended = true;
      this.muxer.end();
      this.emitChunk(true);
    }
    return this.summary();
  }

  summary(): RecordingSummary {
    const v = this.vad?.result();
    const samples = this.muxer.granule;
    return {
      ...this.intake.stats,
      samples,
      durationMs: samples / 48,
      playableMs: Math.max(0, samples - this.muxer.preSkip) / 48,
      talkMs: v?.talkMs ?? 0,
      peakDbfs: v?.peakDbfs ?? SILENCE_DBFS,
      meanDbfs: v?.meanDbfs ?? SILENCE_DBFS,
      vad: this.vad !== undefined,
      chunks: this.chunkIndex,
      oggBytes: this.oggBytes,
      ssrc: this.intake.ssrc,
      pausedSpans: this.spans.map((p) => ({ startMs: p.start / 48, endMs: (p.end ?? samples) / 48, pausedMs: p.samples / 48 })),
    };
  }

  private onPacket(packet: Buffer, samples: number, inserted: boolean): void {
    const pause = this.pausedNow;
    if (pause) {
      // Paused: the audio is never written and never measured (not talk time).
      pause.samples += samples;
      if (this.pauseBehavior === 'silence') {
        const want = samples + this.silenceCarry;
        this.silenceCarry = want - forEachSilentPacket(want, (p, n) => this.write(p, n));
      }
      return;
    }
    this.write(packet, samples);
    const vad = this.vad;
    if (vad) {
      if (inserted) vad.silence(samples);
      else vad.push(packet, samples);
    }
  }

  private write(packet: Buffer, samples: number): void {
    const muxer = this.muxer;
    if (muxer.granule >= this.nextCut && muxer.openPackets > 0) {
      muxer.flush();
      this.emitChunk(false);
      this.nextCut = (Math.floor(muxer.granule / this.chunkSamples) + 1) * this.chunkSamples;
    }
    muxer.write(packet, samples);
  }

  private emitChunk(last: boolean): void {
    const bytes = this.pages.length === 1 ? (this.pages[0] as Buffer) : Buffer.concat(this.pages, this.pageBytes);
    this.pages = [];
    this.pageBytes = 0;
    this.oggBytes += bytes.length;
    this.onChunk({ index: this.chunkIndex++, bytes, last });
  }
}
