import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { maskPhone } from '../log.js';
import type { Users } from '../accounts/users.js';
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
}

export interface SwitchboardEvents {
  /**
   * A new call attempt, the moment it exists (before its owner is known): subscribers such as recording
   * and payouts attach to its events here. Emitted synchronously; a throwing subscriber is logged.
   */
  call: [Call];
}

/**
 * Routes calls between connected dialers and the trunk. Keeps the live calls and the connected
 * dialers; every action a dialer asks for is checked against the call's owner and channel.
 *
 * Setup is race-free by construction: the Call exists (and holds the user's live-call slot) from the
 * `call.start` or INVITE on, before any `await`, so a hangup, a CANCEL, a socket close or a shutdown
 * that comes while a lookup or rtpengine is pending ends it; every continuation after an `await`
 * checks that the call is still open (and its dialer still there) before it goes on.
 */
export class Switchboard extends EventEmitter<SwitchboardEvents> {
  private readonly calls = new Map<string, Call>();
  /** Per user, connected dialers in connection order: inbound calls ring the newest. */
  private readonly dialers = new Map<string, DialerChannel[]>();
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
    super();
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

  /**
   * The user's live calls, ringing or answered, whatever their dialer: what a consent withdrawal reaches
   * (each stops its recording and goes on). An inbound call still looking its number up is nobody's yet.
   */
  callsOf(userId: string): Call[] {
    if (userId === '') return [];
    return [...this.calls.values()].filter((c) => !c.closed && c.userId === userId);
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
    if (channel.closed) return; // its socket went while the message waited: nobody to call for
    if (this.draining) return reject('SHUTTING_DOWN', 'the service is shutting down; try again in a moment');
    const trunk = this.deps.trunk;
    if (!trunk) return reject('NOT_READY', 'the SIP trunk is not ready yet; try again in a moment');
    const callee = normaliseE164(to);
    if (!callee) return reject('NUMBER_INVALID', 'the number must be E.164: + then country code and number, e.g. +15550001111');
    if (this.liveCallsOf(channel.userId) >= this.options.maxCallsPerUser) {
      return reject('TOO_MANY_CALLS', `at most ${this.options.maxCallsPerUser} calls at once; hang one up first`);
    }
    // The Call is the user's live-call slot from here, before the first await, so concurrent starts
    // cannot all see the same free one, and a socket that closes meanwhile finds it and ends it.
    const call = this.open('outbound', callee, channel);
    const refuse = (code: string, message: string) => {
      call.close('failed');
      reject(code, message);
    };

    let admission: DailyAdmission | undefined;
    try {
      const user = await this.deps.users.byId(channel.userId);
      if (this.abandoned(call)) return;
      if (!user) return refuse('USER_NOT_FOUND', 'your account no longer exists; sign in again');
      const denied = this.policy.destination(callee, user.phone);
      if (denied) {
        this.log.info({ userId: user.id, to: maskPhone(callee), code: denied.code }, 'call refused by the dialing policy');
        return refuse(denied.code, denied.message);
      }
      admission = await this.policy.admit(user.id);
      if (this.abandoned(call)) return;
      if (admission.refusal) {
        this.log.info({ userId: user.id, code: admission.refusal.code }, 'call refused by a daily cap');
        return refuse(admission.refusal.code, admission.refusal.message);
      }
      if (this.draining) return refuse('SHUTTING_DOWN', 'the service is shutting down; try again in a moment');
      call.admit(user);
    } finally {
      // An attempt that never got admitted (refused, abandoned, or a lookup threw) ends here, unseen.
      if (!call.isAdmitted) call.close('failed');
      // The next admission of this user counts the attempts in the database: let it in once ours is there.
      if (admission && call.isAdmitted) void call.flushed().then(admission.done);
      else admission?.done();
    }
    channel.created(ref, call.id);
    call.markAnnounced();
    this.log.info({ callId: call.id, to: maskPhone(callee) }, 'outbound call');

    let trunkSdp: string;
    try {
      trunkSdp = await call.media.dialerOffer(sdp);
    } catch (err) {
      if (!call.closed) this.mediaFailure(call, err, ref);
      return;
    }
    // Hung up, disconnected or drained while rtpengine was answering: the phone network never hears of it.
    if (this.abandoned(call)) return;
    if (this.draining) return call.close('shutdown');
    const owner = call.owner;
    if (!owner) return call.close('failed'); // admitted above, so always there

    try {
      call.outboundLeg = this.dial(trunk, call, channel, { to: callee, from: owner.phone, sdp: trunkSdp, callRef: call.id });
    } catch (err) {
      this.log.error({ callId: call.id, err: errorMessage(err) }, 'trunk refused to dial');
      call.close('failed');
      return;
    }
    call.record({ sipCallId: call.outboundLeg.sipCallId }, 'with-next');
  }

  /**
   * The SIP layer's handler for a new, authorised inbound INVITE. The Call exists before this returns,
   * so a CANCEL that comes while we look the number up, pick a dialer or wait for rtpengine ends it
   * (487) and the dialer never rings — or, if it already rang, hears `call.ended`.
   */
  readonly incoming = (offer: InboundOffer, leg: InboundLeg): InboundListener => {
    const call = this.open('inbound', callerId(offer.from)); // the SIP layer cleans `from`; we keep our own rule
    call.inboundLeg = leg;
    this.ring(call, offer).catch((err: unknown) => {
      this.log.error({ callId: call.id, err: errorMessage(err) }, 'inbound call setup failed');
      call.close('failed');
    });
    return {
      cancelled: () => call.close('cancelled'),
      // Answered on the trunk's ACK, not on our 200: a 200 nobody confirms never records or pays.
      confirmed: () => {
        if (call.closed || !call.isAdmitted) return;
        call.markAnswered();
        call.markMediaUp();
      },
      unconfirmed: () => call.close('failed'),
      ended: (reason) => call.close(reason),
      remoteOffer: (sdp) => this.remoteOffer(call, sdp),
    };
  };

  accept(channel: DialerChannel, callId: string, sdp: string): void {
    const call = this.owned(channel, callId);
    if (!call) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    if (call.direction !== 'inbound') return channel.error('CALL_STATE', 'this call is not waiting to be answered');
    // A repeated accept (a double tap, a resent message) changes nothing: the first answer stands.
    if (this.accepting.has(call) || call.state === 'answered') return;
    if (call.state !== 'ringing') return channel.error('CALL_STATE', 'this call is not waiting to be answered');
    this.accepting.add(call);
    const leg = call.inboundLeg;
    call.media.dialerAnswer(sdp).then(
      (trunkSdp) => {
        if (call.closed || !leg) return;
        leg.answer(trunkSdp);
        // The person has answered; what is left is the trunk's ACK, which Timer H bounds.
        call.stopRingTimer();
      },
      (err: unknown) => {
        if (!call.closed) this.mediaFailure(call, err);
      },
    );
  }

  reject(channel: DialerChannel, callId: string): void {
    const call = this.owned(channel, callId);
    if (!call) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    if (call.direction !== 'inbound' || call.state === 'answered') {
      return channel.error('CALL_STATE', 'only a ringing incoming call can be rejected; hang up instead');
    }
    call.close('rejected');
  }

  /**
   * Digits the user pressed during a call, towards the trunk as RFC 4733 events. Only the call's own dialer may
   * send them; the media session refuses them before the call has audio (`DTMF_NOT_READY`) and bounds what may
   * wait to be played (`DTMF_RATE_LIMITED`), so a dialer cannot hold the line with tones.
   */
  dtmf(channel: DialerChannel, callId: string, digits: string): void {
    const call = this.owned(channel, callId);
    if (!call || call.closed) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    call.media.sendDtmf(digits).catch((err: unknown) => {
      const code = err instanceof MonologueError ? err.code : 'DTMF_FAILED';
      // Refusals the dialer caused are answered, not logged as faults: a client pressing keys fast is no incident.
      const expected = code === 'DTMF_NOT_READY' || code === 'DTMF_RATE_LIMITED' || code === 'BAD_DTMF' || code === 'MEDIA_CLOSED';
      if (expected) this.log.debug({ callId, code }, 'DTMF refused');
      else this.log.warn({ callId, err: errorMessage(err) }, 'DTMF not sent');
      if (call.closed) return; // the call ended meanwhile: call.ended already told the dialer
      channel.error(code, `digits not sent: ${errorMessage(err)}`);
    });
  }

  /**
   * The owner pauses or resumes the recording of their own live call (`recording.pause` / `.resume`):
   * answered `recording.paused` / `recording.resumed`, again when repeated. A call that is not being
   * recorded answers `NOT_RECORDING`; a foreign or unknown one the same `CALL_NOT_FOUND` as everywhere.
   */
  async pauseRecording(channel: DialerChannel, callId: string, pause: boolean): Promise<void> {
    const call = this.owned(channel, callId);
    if (!call || call.closed) return channel.error('CALL_NOT_FOUND', 'no such call on this connection');
    const result = await call.pauseRecording(pause);
    if (call.closed) return; // call.ended already told the dialer
    if (result === 'not-recording') {
      return channel.error('NOT_RECORDING', `this call is not being recorded: nothing to ${pause ? 'pause' : 'resume'}`);
    }
    this.log.info({ callId, paused: pause }, pause ? 'recording paused by its owner' : 'recording resumed by its owner');
    if (pause) channel.recordingPaused(callId);
    else channel.recordingResumed(callId);
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
              call.markMediaUp();
            },
            (err: unknown) => {
              if (!call.closed) this.mediaFailure(call, err);
            },
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

  /** Find the number's owner and a dialer to ring, then ring it: the inbound setup after the INVITE. */
  private async ring(call: Call, offer: InboundOffer): Promise<void> {
    if (this.draining) return call.close('unavailable');
    const to = normaliseE164(offer.to);
    const user = to ? await this.deps.users.byPhone(to).catch(() => undefined) : undefined;
    if (call.closed) return;
    if (!user) {
      this.log.info({ to: maskPhone(offer.to) }, 'inbound call for an unknown number');
      return call.close('not-found');
    }
    // From here the attempt is the user's: it has a record, even if it is missed.
    call.admit(user);
    call.record({ sipCallId: offer.sipCallId }, 'with-next');
    const channel = await this.ringableDialer(user.id);
    if (call.closed) return;
    if (!channel) {
      this.log.info({ userId: user.id }, 'inbound call while no dialer is connected');
      return call.close('no-answer');
    }
    if (this.liveCallsOf(user.id, call) >= this.options.maxCallsPerUser) return call.close('busy');
    call.bindDialer(channel);
    let dialerSdp: string;
    try {
      dialerSdp = await call.media.trunkOffer(offer.sdp);
    } catch (err) {
      if (!call.closed) this.mediaFailure(call, err);
      return;
    }
    if (this.abandoned(call)) return;
    call.inboundLeg?.ringing();
    call.markRinging(this.options.ringTimeoutMs);
    channel.incoming(call.id, call.counterpart, dialerSdp);
    call.markAnnounced();
  }

  /**
   * After an await: has the call ended meanwhile, or has its dialer gone (socket closed, detached)?
   * A call whose dialer went is ended `dialer-disconnected` here, so nothing reaches the phone network for it.
   */
  private abandoned(call: Call): boolean {
    if (call.closed) return true;
    const channel = call.channel;
    // An inbound call with no dialer bound yet talks to a placeholder with no user: nothing to lose.
    const detached = channel.userId !== '' && !this.dialers.get(channel.userId)?.includes(channel);
    if (channel.closed || detached) {
      this.log.info({ callId: call.id, userId: call.userId }, 'call setup abandoned: its dialer disconnected meanwhile');
      call.close('dialer-disconnected');
      return true;
    }
    return false;
  }

  private open(direction: 'inbound' | 'outbound', counterpart: string, channel?: DialerChannel): Call {
    const id = newId('call');
    const call = new Call({
      id,
      direction,
      counterpart,
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
    for (const subscriber of this.rawListeners('call')) {
      try {
        (subscriber as (c: Call) => void)(call);
      } catch (err) {
        this.log.error({ callId: id, err: errorMessage(err) }, 'call subscriber threw');
      }
    }
    return call;
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

  /**
   * The user's live calls, besides `except`. An inbound call still looking for a dialer does not count
   * yet (it may never ring); from the moment it has one, it holds a slot like any other.
   */
  private liveCallsOf(userId: string, except?: Call): number {
    let n = 0;
    for (const c of this.calls.values()) if (c !== except && c.userId === userId && !c.closed && c.hasDialer) n++;
    return n;
  }
}
