import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { safeEmit } from '../safe-emit.js';
import type { CallRecordPatch, CallRecords, Direction } from './records.js';
import type { DialerChannel, EndReason, InboundLeg, MediaSession, OutboundLeg, RecordingStopReason } from './ports.js';
import type { User } from '../accounts/users.js';

export type CallState = 'new' | 'ringing' | 'answered' | 'ended';

/** What the call holds of its recording: stopping it, and pausing it at the owner's word. */
export interface RecordingHandle {
  stop(cause?: Extract<RecordingStopReason, 'call-ended' | 'consent-revoked'>): Promise<void>;
  pause(): 'ok' | 'not-recording';
  resume(): 'ok' | 'not-recording';
}

/** What a Call tells its subscribers (recording, payouts, metrics, the switchboard). */
export interface CallEvents {
  /** The call is answered and its media is through: the owner's leg can be forked now. At most once. */
  answered: [];
  /** The call ended (its end is queued for the record). Exactly once, synchronously inside `close()`. */
  ended: [EndReason];
  /** Everything is released: rtpengine let go and the dialer was told. Exactly once, after `ended`. */
  close: [EndReason];
}

/** Until a dialer is chosen (inbound) the call talks to nobody; `bindDialer` sets the real one. */
const NO_DIALER: DialerChannel = {
  userId: '',
  closed: false,
  authorised: () => Promise.resolve(false),
  created: () => undefined,
  ringing: () => undefined,
  answered: () => undefined,
  progress: () => undefined,
  held: () => undefined,
  resumed: () => undefined,
  incoming: () => undefined,
  ended: () => undefined,
  error: () => undefined,
  recordingStarted: () => undefined,
  recordingStopped: () => undefined,
  recordingPaused: () => undefined,
  recordingResumed: () => undefined,
  earningsUpdated: () => undefined,
};

/**
 * One call: owns its SIP leg, its media session and (later) its recorder.
 *
 * A Call exists from the first moment its attempt does (the `call.start`, the INVITE), before anything
 * is looked up, so that whoever ends the attempt while a lookup or rtpengine is pending finds it and
 * ends it; every continuation then sees `closed`. It is *admitted* once its owner is known (and, when
 * outbound, the dialing policy let it through): only an admitted call has a record. `close(reason)`
 * tears everything down exactly once, whoever ends the call first.
 */
export class Call extends EventEmitter<CallEvents> {
  readonly id: string;
  readonly direction: Direction;
  readonly media: MediaSession;
  outboundLeg: OutboundLeg | undefined;
  inboundLeg: InboundLeg | undefined;
  private channelValue: DialerChannel;
  private ownerValue: User | undefined;
  /** Outbound: the callee. Inbound: the caller as the dialer may see it (E.164 or `anonymous`). */
  readonly counterpart: string;
  /** The recording as it starts (undefined inside: nothing was recorded); set at answer by the recording hook. */
  private recording: Promise<RecordingHandle | undefined> | undefined;
  private recordingRevoked = false;
  private stateValue: CallState = 'new';
  private endReason: EndReason | undefined;
  private announced = false;
  private mediaUp = false;
  private ringTimer: NodeJS.Timeout | undefined;
  private lengthTimer: NodeJS.Timeout | undefined;
  private answeredAtValue: number | undefined;
  private readonly maxLengthMs: number;
  /** Record writes go one after another so a late insert never overwrites a later update. */
  private writes: Promise<void> = Promise.resolve();
  /** Record facts waiting for the next write (see `record`). */
  private deferred: CallRecordPatch | undefined;
  private admitted = false;
  private readonly records: CallRecords;
  private log: Logger;

  constructor(init: {
    id: string;
    direction: Direction;
    counterpart: string;
    /** Outbound: the dialer that asked. Inbound: none until one is chosen (`bindDialer`). */
    channel?: DialerChannel;
    media: MediaSession;
    records: CallRecords;
    log: Logger;
    /** An answered call ends `max-duration` after this long. */
    maxLengthMs: number;
  }) {
    super();
    this.id = init.id;
    this.direction = init.direction;
    this.counterpart = init.counterpart;
    this.channelValue = init.channel ?? NO_DIALER;
    this.media = init.media;
    this.records = init.records;
    this.maxLengthMs = init.maxLengthMs;
    this.log = init.log.child({ callId: init.id, direction: init.direction });
    // Dead media (a silent leg, rtpengine gone) ends the call like a hangup: BYE, record, recording, dialer.
    this.media.onLost((reason) => this.close(reason));
  }

  /** The owner's id; '' for an inbound call whose number is still being looked up. */
  get userId(): string {
    return this.ownerValue?.id ?? this.channelValue.userId;
  }

  get channel(): DialerChannel {
    return this.channelValue;
  }

  /** Whether a real dialer is behind `channel` (always for outbound; inbound once one was chosen). */
  get hasDialer(): boolean {
    return this.channelValue !== NO_DIALER;
  }

  /** The enrolled user the call belongs to; undefined until admitted. */
  get owner(): User | undefined {
    return this.ownerValue;
  }

  get state(): CallState {
    return this.stateValue;
  }

  get closed(): boolean {
    return this.stateValue === 'ended';
  }

  get isAdmitted(): boolean {
    return this.admitted;
  }

  /**
   * The attempt belongs to `owner` (outbound: it passed the dialing policy; inbound: the dialled number
   * is theirs) and from now on has a record. False, and nothing happens, when the call already ended,
   * was admitted before, or its dialer is another user's.
   */
  admit(owner: User): boolean {
    if (this.closed || this.admitted) return false;
    if (this.channelValue !== NO_DIALER && this.channelValue.userId !== owner.id) return false;
    this.admitted = true;
    this.ownerValue = owner;
    this.log = this.log.child({ userId: owner.id });
    this.writes = this.records
      .create({ id: this.id, userId: owner.id, direction: this.direction, counterpart: this.counterpart, createdAt: Date.now() })
      .catch((err: unknown) => this.log.error({ err }, 'call record insert failed'));
    return true;
  }

  /** Inbound: the owner's dialer that will ring. Once, after `admit`; false when the call already ended. */
  bindDialer(channel: DialerChannel): boolean {
    if (this.closed || !this.admitted || this.channelValue !== NO_DIALER || channel.userId !== this.userId) return false;
    this.channelValue = channel;
    return true;
  }

  /** The dialer now knows this call's id (`call.created` or `call.incoming`): it will hear `call.ended`. */
  markAnnounced(): void {
    if (this.admitted && !this.closed) this.announced = true;
  }

  /** Settles when every record write issued so far is done (tests and shutdown wait on it). */
  flushed(): Promise<void> {
    return this.writes;
  }

  /**
   * Update the record; a call never admitted has none, so this does nothing then. `with-next`: a fact that only
   * describes the attempt (its SIP Call-ID, when it rang) waits for the next write, the answer or the end, instead
   * of costing a statement of its own (two of a call's five writes, measured in `monologue-load cps`). What is
   * paid or capped (created, answered, ended) is never deferred; a process that dies while a call rings loses
   * only these facts of it.
   */
  record(patch: CallRecordPatch, when: 'now' | 'with-next' = 'now'): void {
    if (!this.admitted) return;
    if (when === 'with-next' && !this.closed) {
      this.deferred = { ...this.deferred, ...patch };
      return;
    }
    const write = this.deferred ? { ...this.deferred, ...patch } : patch;
    this.deferred = undefined;
    this.writes = this.writes
      .then(() => this.records.update(this.id, write))
      .catch((err: unknown) => this.log.error({ err }, 'call record update failed'));
  }

  /** 180 from the trunk (outbound) or our 180 to it (inbound). Only the first counts. */
  markRinging(ringTimeoutMs?: number): void {
    if (this.stateValue !== 'new') return;
    this.stateValue = 'ringing';
    this.record({ ringingAt: Date.now() }, 'with-next');
    if (ringTimeoutMs !== undefined) {
      this.ringTimer = setTimeout(() => this.close('no-answer'), ringTimeoutMs);
      this.ringTimer.unref();
    }
  }

  /** Inbound: the person answered and only the trunk's ACK is outstanding, so no ring timeout. */
  stopRingTimer(): void {
    clearTimeout(this.ringTimer);
  }

  /** Server clock at SIP answer (inbound: the trunk's ACK): the start of billable time. */
  markAnswered(): void {
    if (this.stateValue === 'answered' || this.closed) return;
    this.stateValue = 'answered';
    clearTimeout(this.ringTimer);
    this.answeredAtValue = Date.now();
    this.record({ answeredAt: this.answeredAtValue });
    this.endBy(this.answeredAtValue + this.maxLengthMs);
  }

  /** The answered call's media is through (rtpengine holds both legs): emits `answered` once. */
  markMediaUp(): void {
    if (this.closed || this.stateValue !== 'answered' || this.mediaUp) return;
    this.mediaUp = true;
    this.safeEmit('answered');
  }

  /** Server clock at answer; undefined before. */
  get answeredAt(): number | undefined {
    return this.answeredAtValue;
  }

  /**
   * End the answered call `max-duration` at `at` (server clock), replacing any earlier deadline but never
   * later than its maximum length. The daily-minutes plan moves it as the user's other calls come and go.
   */
  endBy(at: number): void {
    if (this.closed || this.answeredAtValue === undefined) return;
    const deadline = Math.min(at, this.answeredAtValue + this.maxLengthMs);
    clearTimeout(this.lengthTimer);
    this.lengthTimer = setTimeout(() => this.close('max-duration'), Math.max(0, deadline - Date.now()));
    this.lengthTimer.unref();
  }

  /**
   * The call owns its recording from here on, even while it is still starting: closing the call finishes
   * it, and so does `stopRecording`, whichever comes first and whenever the recording gets going.
   */
  attachRecording(recording: RecordingHandle | Promise<RecordingHandle | undefined>): void {
    const starting = Promise.resolve(recording).catch(() => undefined);
    this.recording = starting;
    if (this.closed) void starting.then((r) => r?.stop());
    else if (this.recordingRevoked) void starting.then((r) => r?.stop('consent-revoked'));
  }

  /**
   * The owner withdrew consent: the recording stops now (one still starting stops as soon as it has) and
   * none may start on this call any more; the call goes on. Resolves when the recording is finished.
   */
  stopRecording(cause: 'consent-revoked'): Promise<void> {
    this.recordingRevoked = true;
    return this.recording?.then((r) => r?.stop(cause)) ?? Promise.resolve();
  }

  /**
   * The owner pauses (or resumes) the recording: one still starting is paused as soon as it runs, so a
   * pause sent right after `recording.started` is never lost. `not-recording` when the call has none
   * (not recorded, stopped, withdrawn) or has ended.
   */
  async pauseRecording(pause: boolean): Promise<'ok' | 'not-recording'> {
    const starting = this.recording;
    if (!starting || this.closed || this.recordingRevoked) return 'not-recording';
    const r = await starting;
    if (!r || this.closed || this.recordingRevoked) return 'not-recording';
    return pause ? r.pause() : r.resume();
  }

  /** True once `stopRecording` was called: the recording hook must not start one. */
  get recordingWithdrawn(): boolean {
    return this.recordingRevoked;
  }

  /**
   * End the call for `reason`; the first reason wins and later calls do nothing. `sipStatus` is only
   * stored (an outbound failure's final status); an inbound leg reports what it sent itself.
   */
  close(reason: EndReason, sipStatus?: number): void {
    if (this.closed) return;
    const wasAnswered = this.stateValue === 'answered';
    this.stateValue = 'ended';
    this.endReason = reason;
    clearTimeout(this.ringTimer);
    clearTimeout(this.lengthTimer);
    this.outboundLeg?.end();
    let status = sipStatus;
    if (this.inboundLeg) {
      if (wasAnswered) this.inboundLeg.end();
      else this.inboundLeg.reject(reason);
      status ??= this.inboundLeg.finalStatus;
    }
    this.record({ endedAt: Date.now(), endReason: reason, ...(status !== undefined && { sipStatus: status }) });
    void this.recording?.then((r) => r?.stop());
    this.log.info({ reason, sipStatus: status, answered: wasAnswered, admitted: this.admitted }, 'call ended');
    this.safeEmit('ended', reason);
    // The dialer hears of the end only once rtpengine has let go of the call, so whoever sees
    // `call.ended` sees no media left behind. MediaSession.close() never throws.
    const announced = this.announced;
    void this.media.close().then(() => {
      if (announced) this.channelValue.ended(this.id, reason);
      this.safeEmit('close', reason);
    });
  }

  get reason(): EndReason | undefined {
    return this.endReason;
  }

  /** A throwing subscriber must not break the call (or the other subscribers). */
  private safeEmit<K extends keyof CallEvents>(event: K, ...args: CallEvents[K]): void {
    safeEmit<CallEvents, K>(this, this.log, event, ...args);
  }
}
