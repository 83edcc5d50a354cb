import type { Logger } from '../log.js';
import { maskPhone } from '../log.js';
import type { User, Users } from '../accounts/users.js';
import type { Recordings } from '../recordings/recordings.js';
import type { CallPayouts } from '../payouts/call-payouts.js';
import { callerId, normaliseE164 } from '../phone-number.js';
import { MonologueError, errorMessage } from '../errors.js';
import { isHold } from '../media/sdp.js';
import { newId } from '../ids.js';
import { Call } from './call.js';
import type { CallRecords } from './records.js';
import { DialingPolicy, type DailyAdmission, type DialingPolicyOptions } from './policy.js';
import {
  type DialerChannel,
  type InboundLeg,
  type InboundListener,
  type InboundOffer,
  type MediaRelay,
  type OutboundLeg,
  type OutboundRequest,
  type Trunk,
} from './ports.js';

export interface SwitchboardOptions extends DialingPolicyOptions {
  ringTimeoutMs: number;
  maxCallsPerUser: number;
  drainMs: number;
}

export interface SwitchboardDeps {
  users: Users;
  records: CallRecords;
  media: MediaRelay;
  log: Logger;
  /** Set after construction: the SIP endpoint needs the switchboard's inbound handler first. */
  trunk?: Trunk;
  /** Absent when recording is switched off. */
  recordings?: Recordings;
  /** Pays for recorded calls; absent in setups without payouts. */
  payouts?: CallPayouts;
}

/**
 * Routes calls between connected dialers and the trunk. Keeps the live calls and the connected
 * dialers; every action a dialer asks for is checked against the call's owner and channel.
 */
export class Switchboard {
  private readonly calls = new Map<string, Call>();
  /** Per user, connected dialers in connection order: inbound calls ring the newest. */
  private readonly dialers = new Map<string, DialerChannel[]>();
  /** Per user, outbound starts that hold a live-call slot but have no Call yet. */
  private readonly pendingStarts = new Map<string, number>();
  /** Refused `call.start`s by error code, since start (a later issue exports them as metrics). */
  private readonly refusals = new Map<string, number>();
  /** Per user, the newest daily-minutes plan: an older one finishing late must not undo it. */
  private readonly plans = new Map<string, number>();
  private planSeq = 0;
  /** Inbound calls the person accepted, waiting for the media answer or the trunk's ACK. */
  private readonly accepting = new WeakSet<Call>();
  /** Calls the far end holds now (its last accepted offer was sendonly, inactive or c=0.0.0.0). */
  private readonly held = new WeakSet<Call>();
  private draining = false;
  private readonly policy: DialingPolicy;
  private readonly log: Logger;

  constructor(
    private readonly deps: SwitchboardDeps,
    private readonly options: SwitchboardOptions,
  ) {
    this.log = deps.log.child({ mod: 'switchboard' });
    this.policy = new DialingPolicy(deps.records, options);
  }

  set trunk(trunk: Trunk) {
    this.deps.trunk = trunk;
  }

  get liveCalls(): number {
    return this.calls.size;
  }

  /** Refused `call.start`s so far, by error code (`DESTINATION_NOT_ALLOWED`, `DAILY_LIMIT`, `TOO_MANY_CALLS`, …). */
  get refusedStarts(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.refusals);
  }

  /** Test and operations hook: the live call with this id. */
  call(id: string): Call | undefined {
    return this.calls.get(id);
  }

  /** Register a dialer. The returned function detaches it and ends its calls. */
  attachDialer(channel: DialerChannel): () => void {
    const list = this.dialers.get(channel.userId) ?? [];
    list.push(channel);
    this.dialers.set(channel.userId, list);
    return () => {
      const left = (this.dialers.get(channel.userId) ?? []).filter((c) => c !== channel);
      if (left.length) this.dialers.set(channel.userId, left);
      else this.dialers.delete(channel.userId);
      for (const call of [...this.calls.values()]) {
        if (call.channel === channel) call.close('dialer-disconnected');
      }
    };
  }

  async startCall(channel: DialerChannel, ref: string, to: string, sdp: string): Promise<void> {
    const reject = (code: string, message: string) => {
      this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
      channel.error(code, message, ref);
    };
    if (this.draining) return reject('SHUTTING_DOWN', 'the service is shutting down; try again in a moment');
    const trunk = this.deps.trunk;
    if (!trunk) return reject('NOT_READY', 'the SIP trunk is not ready yet; try again in a moment');
    const callee = normaliseE164(to);
    if (!callee) return reject('NUMBER_INVALID', 'the number must be E.164: + then country code and number, e.g. +15550001111');
    // The slot is taken before the first await, so concurrent starts cannot all see the same free one.
    const releaseSlot = this.reserveSlot(channel.userId);
    if (!releaseSlot) return reject('TOO_MANY_CALLS', `at most ${this.options.maxCallsPerUser} calls at once; hang one up first`);

    let admission: DailyAdmission | undefined;
    let opened: Call | undefined;
    try {
      const user = await this.deps.users.byId(channel.userId);
      if (!user) return reject('USER_NOT_FOUND', 'your account no longer exists; sign in again');
      const denied = this.policy.destination(callee, user.phone);
      if (denied) {
        this.log.info({ userId: user.id, to: maskPhone(callee), code: denied.code }, 'call refused by the dialing policy');
        return reject(denied.code, denied.message);
      }
      admission = await this.policy.admit(user.id);
      if (admission.refusal) {
        this.log.info({ userId: user.id, code: admission.refusal.code }, 'call refused by a daily cap');
        return reject(admission.refusal.code, admission.refusal.message);
      }
      // The socket may have gone (closed, or its token revoked) while we were waiting: nobody to call for.
      if (!this.dialers.get(user.id)?.includes(channel)) {
        this.log.info({ userId: user.id }, 'call start abandoned: its dialer disconnected meanwhile');
        return;
      }
      opened = this.open(channel, 'outbound', callee, user);
    } finally {
      // From here the Call holds the user's place itself (it counts until it closes).
      releaseSlot();
      if (admission && opened) void opened.flushed().then(admission.done);
      else admission?.done();
    }
    const call = opened;
    channel.created(ref, call.id);
    this.log.info({ callId: call.id, to: maskPhone(callee) }, 'outbound call');

    let trunkSdp: string;
    try {
      trunkSdp = await call.media.dialerOffer(sdp);
    } catch (err) {
      this.mediaFailure(call, err, ref);
      return;
    }
    if (call.closed) return; // hung up while rtpengine was answering

    try {
      call.outboundLeg = this.dial(trunk, call, channel, { to: callee, from: call.owner.phone, sdp: trunkSdp, callRef: call.id });
    } catch (err) {
      this.log.error({ callId: call.id, err: errorMessage(err) }, 'trunk refused to dial');
      call.close('failed');
      return;
    }
    call.record({ sipCallId: call.outboundLeg.sipCallId });
  }

  /** The SIP layer's handler for a new, authorised inbound INVITE. */
  readonly incoming = (offer: InboundOffer, leg: InboundLeg): InboundListener => {
    let call: Call | undefined;
    // The trunk may cancel while we are still looking the user up.
    let cancelledEarly = false;
    void this.ring(offer, leg, () => cancelledEarly).then((c) => (call = c));
    return {
      cancelled: () => {
        cancelledEarly = true;
        call?.close('cancelled', 487);
      },
      // Answered on the trunk's ACK, not on our 200: a 200 nobody confirms never records or pays.
      confirmed: () => {
        if (!call || call.closed) return;
        call.markAnswered();
        this.record(call);
      },
      unconfirmed: () => call?.close('failed'),
      ended: (reason) => call?.close(reason),
      remoteOffer: (sdp) => (call ? this.remoteOffer(call, sdp) : Promise.reject(new MonologueError('CALL_STATE', 'no call for this leg yet'))),
    };
  };

  accept(channel: DialerChannel, callId: string, sdp: string): void {
    const call = this.owned(channel, callId);
    if (!call) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    if (call.direction !== 'inbound' || call.state !== 'ringing' || this.accepting.has(call)) {
      return channel.error('CALL_STATE', 'this call is not waiting to be answered');
    }
    this.accepting.add(call);
    const leg = call.inboundLeg;
    call.media.dialerAnswer(sdp).then(
      (trunkSdp) => {
        if (call.closed || !leg) return;
        leg.answer(trunkSdp);
        // The person has answered; what is left is the trunk's ACK, which Timer H bounds.
        call.stopRingTimer();
      },
      (err: unknown) => this.mediaFailure(call, err),
    );
  }

  reject(channel: DialerChannel, callId: string): void {
    const call = this.owned(channel, callId);
    if (!call) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    if (call.direction !== 'inbound' || call.state === 'answered') {
      return channel.error('CALL_STATE', 'only a ringing incoming call can be rejected; hang up instead');
    }
    call.close('rejected', 603);
  }

  /** Digits the user pressed during a call, towards the trunk (wired by the DTMF work). */
  dtmf(channel: DialerChannel, callId: string, digits: string): void {
    const call = this.owned(channel, callId);
    if (!call) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    call.media.sendDtmf(digits).catch((err: unknown) => {
      this.log.warn({ callId, err: errorMessage(err) }, 'DTMF not sent');
      channel.error(err instanceof MonologueError ? err.code : 'DTMF_FAILED', `digits not sent: ${errorMessage(err)}`);
    });
  }

  hangup(channel: DialerChannel, callId: string): void {
    const call = this.owned(channel, callId);
    if (!call) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    call.close('local-hangup');
  }

  /**
   * Stop taking calls; wait up to drainMs for live calls to end, then end the rest.
   * Resolves when every call is closed and its record written.
   */
  async drain(): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + this.options.drainMs;
    while (this.calls.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const left = [...this.calls.values()];
    for (const call of left) call.close('shutdown');
    await Promise.all(left.map((c) => new Promise<void>((r) => (c.closed && !this.calls.has(c.id) ? r() : c.once('close', () => r())))));
    await Promise.all(left.map((c) => c.flushed()));
  }

  get isDraining(): boolean {
    return this.draining;
  }

  // ---------------------------------------------------------------- helpers

  /** Send the INVITE; the trunk's events drive the call. */
  private dial(trunk: Trunk, call: Call, channel: DialerChannel, request: OutboundRequest): OutboundLeg {
    // The WebRTC answer the dialer applied for early media. rtpengine keeps the dialer's side of the call
    // as it is when the trunk answers again, so the 200 confirms this one and the browser never renegotiates.
    let progressSdp: string | undefined;
    return trunk.dial(
      request,
      {
        ringing: () => {
          if (call.closed || call.state !== 'new') return;
          call.markRinging();
          channel.ringing(call.id);
        },
        answered: (answerSdp) => {
          if (call.closed) return;
          call.markAnswered();
          this.shareMinutes(call.userId);
          call.media.trunkAnswer(answerSdp).then(
            (dialerSdp) => {
              if (call.closed) return;
              channel.answered(call.id, progressSdp ?? dialerSdp);
              this.record(call);
            },
            (err: unknown) => this.mediaFailure(call, err),
          );
        },
        // Early media is heard, never recorded or paid: the call is answered only at the 200. The session
        // queues its ng requests, so a 200 that arrives while this answer is in flight is applied after it.
        earlyMedia: (earlySdp) => {
          if (call.closed || call.answeredAt !== undefined) return;
          call.media.trunkAnswer(earlySdp).then(
            (dialerSdp) => {
              if (call.closed || progressSdp !== undefined || call.answeredAt !== undefined) return;
              progressSdp = dialerSdp;
              channel.progress(call.id, dialerSdp);
            },
            // Without early media the call still works: the 200's answer sets the media up.
            (err: unknown) => this.log.warn({ callId: call.id, err: errorMessage(err) }, 'early media not set up'),
          );
        },
        failed: (reason, status) => call.close(reason, status),
        ended: (reason) => call.close(reason),
        remoteOffer: (sdp) => this.remoteOffer(call, sdp),
      },
    );
  }

  private async ring(offer: InboundOffer, leg: InboundLeg, cancelled: () => boolean): Promise<Call | undefined> {
    if (this.draining) {
      leg.reject('unavailable');
      return undefined;
    }
    const to = normaliseE164(offer.to);
    const user = to ? await this.deps.users.byPhone(to).catch(() => undefined) : undefined;
    if (!user) {
      this.log.info({ to: maskPhone(offer.to) }, 'inbound call for an unknown number');
      leg.reject('not-found');
      return undefined;
    }
    const channel = await this.ringableDialer(user.id);
    const counterpart = callerId(offer.from); // the SIP layer cleans it already; the call domain keeps its own rule
    if (!channel) {
      this.log.info({ userId: user.id }, 'inbound call while no dialer is connected');
      leg.reject('no-answer');
      this.recordMissed(user.id, counterpart, 'no-answer', 480);
      return undefined;
    }
    if (this.liveCallsOf(user.id) >= this.options.maxCallsPerUser) {
      leg.reject('busy');
      this.recordMissed(user.id, counterpart, 'busy', 486);
      return undefined;
    }
    const call = this.open(channel, 'inbound', counterpart, user);
    call.inboundLeg = leg;
    call.record({ sipCallId: offer.sipCallId });
    if (cancelled()) {
      call.close('cancelled', 487);
      return call;
    }
    try {
      const dialerSdp = await call.media.trunkOffer(offer.sdp);
      if (call.closed) return call;
      leg.ringing();
      call.markRinging(this.options.ringTimeoutMs);
      channel.incoming(call.id, counterpart, dialerSdp);
    } catch (err) {
      this.mediaFailure(call, err);
    }
    return call;
  }

  /**
   * Record the call if its owner is enrolled and has consented (DESIGN §4.1): only the owner's own
   * leg is forked. A call that cannot be recorded goes on, and says why.
   */
  private record(call: Call): void {
    const recordings = this.deps.recordings;
    if (!recordings || !call.owner.enrolled) return;
    if (!call.owner.consent) {
      call.record({ recordingNote: 'no-consent' });
      return;
    }
    void recordings
      .begin(call, {
        started: () => call.channel.recordingStarted(call.id),
        stopped: (reason) => {
          call.channel.recordingStopped(call.id, reason);
          if (reason !== 'call-ended') call.record({ recordingNote: reason });
        },
        finished: (talkMs) => void this.pay(call, talkMs),
      })
      .then((recording) => recording && call.attachRecording(recording));
  }

  /** Settle a recorded call once its record holds the hangup time; the dialer hears what it earned. */
  private async pay(call: Call, talkMs: number): Promise<void> {
    const payouts = this.deps.payouts;
    if (!payouts) return;
    try {
      await call.flushed();
      const result = await payouts.settleCall({ callId: call.id, userId: call.userId, talkMs });
      if (result) call.channel.earningsUpdated(call.id, result.amountMicros, result.state);
    } catch (err) {
      this.log.error({ callId: call.id, err: errorMessage(err) }, 'settlement failed; the call can be settled again later');
    }
  }

  /** An attempt that never became a live call still leaves a record for its owner. */
  private recordMissed(userId: string, counterpart: string, reason: 'no-answer' | 'busy', status: number): void {
    const now = Date.now();
    const id = newId('call');
    void this.deps.records
      .create({ id, userId, direction: 'inbound', counterpart, createdAt: now })
      .then(() => this.deps.records.update(id, { endedAt: now, endReason: reason, sipStatus: status }))
      .catch((err: unknown) => this.log.error({ err }, 'missed-call record failed'));
  }

  private open(channel: DialerChannel, direction: 'inbound' | 'outbound', counterpart: string, owner: User): Call {
    const id = newId('call');
    const call = new Call({
      id,
      userId: channel.userId,
      direction,
      counterpart,
      owner,
      channel,
      media: this.deps.media.open(id),
      records: this.deps.records,
      log: this.log,
      maxLengthMs: this.options.maxCallSeconds * 1000,
    });
    this.calls.set(id, call);
    call.once('close', () => {
      this.calls.delete(id);
      // The user's other live calls may now use what this one did not.
      if (direction === 'outbound' && call.answeredAt !== undefined) this.shareMinutes(call.userId);
    });
    return call;
  }

  /** Hold one of the user's live-call slots; the returned release is idempotent. Undefined when none is free. */
  private reserveSlot(userId: string): (() => void) | undefined {
    if (this.liveCallsOf(userId) >= this.options.maxCallsPerUser) return undefined;
    this.pendingStarts.set(userId, (this.pendingStarts.get(userId) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.pendingStarts.get(userId) ?? 1) - 1;
      if (left > 0) this.pendingStarts.set(userId, left);
      else this.pendingStarts.delete(userId);
    };
  }

  /** Re-plan when the user's live answered outbound calls must end so the day's minutes are not overrun. */
  private shareMinutes(userId: string): void {
    const live = [...this.calls.values()].filter((c) => c.userId === userId && c.direction === 'outbound' && !c.closed && c.answeredAt !== undefined);
    if (!live.length) return;
    const seq = ++this.planSeq;
    this.plans.set(userId, seq);
    this.policy.plan(userId, live.map((c) => ({ id: c.id, answeredAt: c.answeredAt! }))).then(
      (deadlines) => {
        if (this.plans.get(userId) !== seq) return;
        this.plans.delete(userId);
        for (const c of live) {
          const at = deadlines.get(c.id);
          if (at !== undefined) c.endBy(at);
        }
      },
      (err: unknown) => this.log.warn({ userId, err: errorMessage(err) }, 'daily minutes plan failed; calls keep their maximum length'),
    );
  }

  /** The newest dialer of the user whose token still holds now: a revoked token's socket never rings. */
  private async ringableDialer(userId: string): Promise<DialerChannel | undefined> {
    for (const channel of [...(this.dialers.get(userId) ?? [])].reverse()) {
      if ((await channel.authorised()) && this.dialers.get(userId)?.includes(channel)) return channel;
    }
    return undefined;
  }

  /** The trunk changed the media mid-call: rtpengine answers it; the dialer hears of hold and resume. */
  private remoteOffer(call: Call, sdp: string): Promise<string> {
    if (call.closed) return Promise.reject(new MonologueError('CALL_STATE', 'the call has ended'));
    return call.media.trunkReoffer(sdp).then((answer) => {
      // Only an offer rtpengine took changes the state: a refused one (488) leaves the media as it was.
      const hold = isHold(sdp);
      if (!call.closed && hold !== this.held.has(call)) {
        if (hold) {
          this.held.add(call);
          call.channel.held(call.id);
        } else {
          this.held.delete(call);
          call.channel.resumed(call.id);
        }
      }
      return answer;
    });
  }

  private mediaFailure(call: Call, err: unknown, ref?: string): void {
    const code = err instanceof MonologueError ? err.code : 'MEDIA_FAILED';
    this.log.warn({ callId: call.id, code, err: errorMessage(err) }, 'media setup failed');
    if (code === 'BAD_SDP') call.channel.error(code, errorMessage(err), ref);
    call.close('media-failed');
  }

  private owned(channel: DialerChannel, callId: string): Call | undefined {
    const call = this.calls.get(callId);
    // Same answer for unknown and foreign calls: nothing to learn by guessing ids.
    return call && call.userId === channel.userId && call.channel === channel ? call : undefined;
  }

  private liveCallsOf(userId: string): number {
    let n = this.pendingStarts.get(userId) ?? 0;
    for (const c of this.calls.values()) if (c.userId === userId && !c.closed) n++;
    return n;
  }
}
