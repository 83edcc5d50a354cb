import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { CallRecordPatch, CallRecords, Direction } from './records.js';
import type { DialerChannel, EndReason, InboundLeg, MediaSession, OutboundLeg } from './ports.js';
import type { User } from '../accounts/users.js';

export type CallState = 'new' | 'ringing' | 'answered' | 'ended';

/**
 * One call: owns its SIP leg, its media session and (later) its recorder.
 * `close(reason)` tears all of them down exactly once, whoever ends the call first,
 * and emits `close` with the reason.
 */
export class Call extends EventEmitter<{ close: [EndReason] }> {
  readonly id: string;
  readonly userId: string;
  readonly direction: Direction;
  readonly channel: DialerChannel;
  readonly media: MediaSession;
  readonly owner: User;
  outboundLeg: OutboundLeg | undefined;
  inboundLeg: InboundLeg | undefined;
  private recording: { stop(): Promise<void> } | undefined;
  private stateValue: CallState = 'new';
  private endReason: EndReason | undefined;
  private ringTimer: NodeJS.Timeout | undefined;
  private lengthTimer: NodeJS.Timeout | undefined;
  private answeredAtValue: number | undefined;
  private readonly maxLengthMs: number;
  /** Record writes go one after another so a late insert never overwrites a later update. */
  private writes: Promise<void>;
  private readonly records: CallRecords;
  private readonly log: Logger;

  constructor(init: {
    id: string;
    userId: string;
    direction: Direction;
    counterpart: string;
    owner: User;
    channel: DialerChannel;
    media: MediaSession;
    records: CallRecords;
    log: Logger;
    /** An answered call ends `max-duration` after this long. */
    maxLengthMs: number;
  }) {
    super();
    this.id = init.id;
    this.userId = init.userId;
    this.direction = init.direction;
    this.owner = init.owner;
    this.channel = init.channel;
    this.media = init.media;
    this.records = init.records;
    this.maxLengthMs = init.maxLengthMs;
    this.log = init.log.child({ callId: init.id, direction: init.direction });
    // Dead media (a silent leg, rtpengine gone) ends the call like a hangup: BYE, record, recording, dialer.
    this.media.onLost((reason) => this.close(reason));
    this.writes = this.records
      .create({ id: this.id, userId: this.userId, direction: this.direction, counterpart: init.counterpart, createdAt: Date.now() })
      .catch((err: unknown) => this.log.error({ err }, 'call record insert failed'));
  }

  get state(): CallState {
    return this.stateValue;
  }

  get closed(): boolean {
    return this.stateValue === 'ended';
  }

  /** Settles when every record write issued so far is done (tests and shutdown wait on it). */
  flushed(): Promise<void> {
    return this.writes;
  }

  record(patch: CallRecordPatch): void {
    this.writes = this.writes
      .then(() => this.records.update(this.id, patch))
      .catch((err: unknown) => this.log.error({ err }, 'call record update failed'));
  }

  /** 180 from the trunk (outbound) or our 180 to it (inbound). Only the first counts. */
  markRinging(ringTimeoutMs?: number): void {
    if (this.stateValue !== 'new') return;
    this.stateValue = 'ringing';
    this.record({ ringingAt: Date.now() });
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

  /** The call owns its recording from here on: closing the call finishes it. */
  attachRecording(recording: { stop(): Promise<void> }): void {
    if (this.closed) {
      void recording.stop();
      return;
    }
    this.recording = recording;
  }

  close(reason: EndReason, sipStatus?: number): void {
    if (this.closed) return;
    const wasAnswered = this.stateValue === 'answered';
    this.stateValue = 'ended';
    this.endReason = reason;
    clearTimeout(this.ringTimer);
    clearTimeout(this.lengthTimer);
    this.outboundLeg?.end();
    if (this.inboundLeg) {
      if (wasAnswered) this.inboundLeg.end();
      else this.inboundLeg.reject(reason);
    }
    this.record({ endedAt: Date.now(), endReason: reason, ...(sipStatus !== undefined && { sipStatus }) });
    void this.recording?.stop();
    this.log.info({ reason, sipStatus, answered: wasAnswered }, 'call ended');
    // The dialer hears of the end only once rtpengine has let go of the call, so whoever sees
    // `call.ended` sees no media left behind. MediaSession.close() never throws.
    void this.media.close().then(() => {
      this.channel.ended(this.id, reason);
      this.emit('close', reason);
    });
  }

  get reason(): EndReason | undefined {
    return this.endReason;
  }
}
