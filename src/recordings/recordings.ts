import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { safeEmit } from '../safe-emit.js';
import { newId } from '../ids.js';
import type { MediaSession, RecordingStopReason } from '../calls/ports.js';
import type { Keyring } from '../crypto/kek.js';
import { ChunkSealer, encodeSecrets, newRecordingSecrets } from '../crypto/chunk-aead.js';
import type { Spool } from '../storage/spool.js';
import { createRecorder, type Recorder } from '../recorder/recorder.js';
import type { PauseBehavior, PausedSpan } from '../recorder/pipeline.js';
import { objectKeys, type RecordingCatalog } from './catalog.js';

/**
 * What happens to recordings, for watchers such as metrics (DESIGN §7: an observer, so that watching
 * changes nothing in the logic). `recorder` is live: its `summary()` holds the counters so far.
 */
export interface RecordingsObserverEvents {
  /** The fork is up and the recorder receives. */
  started: [recorder: Recorder];
  /** A started recording is finished (`complete`) or could not be (`failed`); its recorder is closed. */
  ended: [recorder: Recorder, state: 'complete' | 'failed'];
  /** The fork could not be started: nothing was recorded. */
  notStarted: [];
  chunkSealed: [];
  chunkSpooled: [];
}

/** What a running recording tells the call about itself (the dialer hears it as `recording.*`). */
export interface RecordingEvents {
  started(): void;
  stopped(reason: RecordingStopReason): void;
  /** The recording is complete and stored: talk time on the user's own leg, for payouts (paused time excluded). */
  finished?(talkMs: number, pausedMs: number): void;
}

/** `pause`/`resume` answer: done (also when it already was), or there is no running recording to pause. */
export type PauseResult = 'ok' | 'not-recording';

export type { RecordingStopReason };

/** Why a running recording is stopped: its call ended, or its owner withdrew consent (the call goes on). */
export type StopCause = Extract<RecordingStopReason, 'call-ended' | 'consent-revoked'>;

export interface RecordingsOptions {
  chunkSeconds: number;
  recorderAddress: string;
  /** What a pause leaves in the file; `silence` when absent. */
  pauseBehavior?: PauseBehavior;
}

export interface RecordingsDeps {
  catalog: RecordingCatalog;
  /** undefined when no key-encryption key could be opened: fail closed, record nothing. */
  keyring: Keyring | undefined;
  spool: Spool;
  log: Logger;
}

/**
 * A recording in progress, owned by its call. `stop` closes the recorder's socket at once (nothing heard
 * later is kept), stores the last chunk and the manifest, and resolves when the recording is finished.
 * Idempotent: the first cause is the one reported (`events.stopped`); default `call-ended`.
 */
export interface Recording {
  readonly id: string;
  stop(cause?: StopCause): Promise<void>;
  /** Keep nothing the user says until `resume` (idempotent); `not-recording` once it is stopping. */
  pause(): PauseResult;
  resume(): PauseResult;
}

export interface Manifest {
  version: 1;
  recordingId: string;
  chunkCount: number;
  durationMs: number;
  talkMs: number;
  complete: boolean;
  /** SHA-256 (hex) of each stored ciphertext, by chunk index. */
  chunks: string[];
  /**
   * Datagrams the recorder refused (DESIGN §4.8): from a source other than rtpengine's fork port, or from
   * rtpengine with another SSRC than the one the recording locked to. Absent in older manifests.
   */
  dropped?: { foreignSource: number; foreignSsrc: number };
  /** The user's pauses, in ms of this file's timeline (`skip`: start = end, where the cut is). Absent in older manifests. */
  pausedSpans?: PausedSpan[];
  pauseBehavior?: PauseBehavior;
}

/**
 * Starts and finishes recordings of the enrolled user's own leg. Audio leaves the recorder only as
 * sealed chunks; they reach storage through the spool while the call runs.
 */
export class Recordings {
  readonly observer = new EventEmitter<RecordingsObserverEvents>();
  private readonly live = new Set<Promise<void>>();
  private readonly log: Logger;

  constructor(
    private readonly deps: RecordingsDeps,
    private readonly options: RecordingsOptions,
  ) {
    this.log = deps.log.child({ mod: 'recordings' });
  }

  /**
   * Fork the user's leg into a new recording. Resolves with undefined when nothing is recorded;
   * `events.stopped` then says why. Never throws: the call goes on either way.
   */
  async begin(call: { id: string; userId: string; media: MediaSession }, events: RecordingEvents): Promise<Recording | undefined> {
    const keyring = this.deps.keyring;
    if (!keyring) {
      this.log.warn({ callId: call.id }, 'no key-encryption key: the call goes on unrecorded');
      events.stopped('no-key');
      return undefined;
    }
    const id = newId('rec');
    const secrets = newRecordingSecrets();
    const sealer = new ChunkSealer(id, secrets);
    const hashes: string[] = [];
    let stored = 0;
    let recorder: Recorder | undefined;
    try {
      const wrapped = keyring.wrap(encodeSecrets(secrets), id);
      await this.deps.catalog.create({ id, callId: call.id, userId: call.userId, wrappedKey: wrapped.blob, kekId: wrapped.kekId });
      recorder = await createRecorder({
        host: this.options.recorderAddress,
        chunkSeconds: this.options.chunkSeconds,
        ...(this.options.pauseBehavior !== undefined && { pauseBehavior: this.options.pauseBehavior }),
        log: this.log.child({ recordingId: id }),
        onChunk: async ({ index, bytes, last }) => {
          const sealed = sealer.seal(bytes, last);
          this.notify('chunkSealed');
          hashes[sealed.index] = createHash('sha256').update(sealed.bytes).digest('hex');
          await this.deps.spool.enqueue(objectKeys.chunk(id, sealed.index), sealed.bytes);
          this.notify('chunkSpooled');
          stored = sealed.index + 1;
          void this.deps.catalog.chunkStored(id, stored).catch(() => undefined);
          if (index !== sealed.index) this.log.error({ index, sealed: sealed.index }, 'chunk numbering diverged');
        },
      });
      const r = recorder;
      await call.media.forkDialerLeg((offer) => r.answerSdp(offer));
    } catch (err) {
      this.log.error({ callId: call.id, recordingId: id, err: errorMessage(err) }, 'recording could not start');
      await recorder?.stop().catch(() => undefined);
      await this.deps.catalog.finish(id, { state: 'failed', chunkCount: stored, durationMs: 0, talkMs: 0, failure: errorMessage(err) }).catch(() => undefined);
      events.stopped('failed');
      this.notify('notStarted');
      return undefined;
    }
    events.started();
    this.notify('started', recorder);
    this.log.info({ callId: call.id, recordingId: id }, 'recording');

    const rec = recorder;
    let stopping: Promise<void> | undefined;
    const pauseOr = (change: () => boolean): PauseResult => {
      if (stopping || rec.closed) return 'not-recording';
      change(); // false only when it already was: fine, pausing twice is no error
      return 'ok';
    };
    return {
      id,
      pause: () => pauseOr(() => rec.pause()),
      resume: () => pauseOr(() => rec.resume()),
      stop: (cause: StopCause = 'call-ended') => {
        stopping ??= this.track(async () => {
          try {
            // A call that goes on keeps its media: the recorder's socket closes at once (nothing later is
            // kept) and rtpengine is told to stop sending it the user's voice.
            const unfork = cause === 'consent-revoked' ? call.media.unforkDialerLeg() : undefined;
            const summary = await rec.stop();
            await unfork;
            const manifest: Manifest = {
              version: 1,
              recordingId: id,
              chunkCount: stored,
              durationMs: Math.round(summary.durationMs),
              talkMs: Math.round(summary.talkMs),
              complete: true,
              chunks: hashes.slice(0, stored),
              dropped: { foreignSource: summary.foreignSource, foreignSsrc: summary.foreignSsrc },
              pausedSpans: summary.pausedSpans.map((p) => ({ startMs: Math.round(p.startMs), endMs: Math.round(p.endMs), pausedMs: Math.round(p.pausedMs) })),
              pauseBehavior: this.options.pauseBehavior ?? 'silence',
            };
            await this.deps.spool.enqueue(objectKeys.manifest(id), Buffer.from(JSON.stringify(manifest)));
            await this.deps.catalog.finish(id, { state: 'complete', chunkCount: stored, durationMs: manifest.durationMs, talkMs: manifest.talkMs });
            this.notify('ended', rec, 'complete');
            events.stopped(cause);
            events.finished?.(manifest.talkMs, manifest.pausedSpans?.reduce((sum, p) => sum + p.pausedMs, 0) ?? 0);
          } catch (err) {
            this.log.error({ recordingId: id, err: errorMessage(err) }, 'recording could not be finished');
            await this.deps.catalog.finish(id, { state: 'failed', chunkCount: stored, durationMs: 0, talkMs: 0, failure: errorMessage(err) }).catch(() => undefined);
            this.notify('ended', rec, 'failed');
            events.stopped('failed');
          }
        });
        return stopping;
      },
    };
  }

  /** A watcher that throws must not break a recording. */
  private notify<K extends keyof RecordingsObserverEvents>(event: K, ...args: RecordingsObserverEvents[K]): void {
    safeEmit(this.observer, this.log, event, ...args);
  }


  /** Wait for recordings being finished (shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.live]);
  }

  private track(fn: () => Promise<void>): Promise<void> {
    const p = fn();
    this.live.add(p);
    void p.finally(() => this.live.delete(p));
    return p;
  }
}
