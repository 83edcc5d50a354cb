/**
 * The narrow interfaces the call domain needs from the outside world.
 * Transports (sip/, signaling/) and infrastructure (media/) implement them;
 * main.ts injects the implementations. Nothing here imports a transport.
 */

/** Why a call ended, as the dialer sees it. Stable strings: part of the wire protocol. */
export type EndReason =
  | 'local-hangup' // the enrolled user hung up (or cancelled before answer)
  | 'remote-hangup' // the other party hung up after answer
  | 'cancelled' // the caller gave up before answer (inbound: trunk sent CANCEL)
  | 'rejected' // the user declined an incoming call
  | 'busy' // 486, 600
  | 'not-found' // 404, 484, 604
  | 'no-answer' // 408, 480, or our ring timeout
  | 'declined' // 603
  | 'unavailable' // 503, 502, 500 and other server failures
  | 'auth-failed' // trunk kept challenging our credentials
  | 'failed' // any other final failure
  | 'dialer-disconnected' // the user's WebSocket went away mid-call
  | 'media-failed' // rtpengine refused, did not answer, or exited with the call live
  | 'media-timeout' // no RTP from either side for media.timeoutSeconds
  | 'session-expired' // an RFC 4028 session refresh was due and none came (or ours failed)
  | 'max-duration' // the call reached calls.maxCallSeconds, or its owner's daily minutes ran out
  | 'shutdown'; // the service is draining

/** Why a call's recording stopped (the dialer hears it as `recording.stopped`); the call goes on in every case but `call-ended`. */
export type RecordingStopReason =
  | 'call-ended' // the call ended and the recording was finished normally
  | 'no-key' // no key-encryption key: nothing was recorded
  | 'failed' // the recording could not start or be finished
  | 'consent-revoked' // the user withdrew consent mid-call: finished at once with what was recorded before
  | 'consent-outdated' // the user consented to an older version of the consent text: nothing is recorded until they accept the current one
  | 'policy'; // the counterpart policy (`recording.counterpartPolicy`) says `skip` for the counterpart's number

// ---------------------------------------------------------------- trunk (SIP)

export interface OutboundRequest {
  /** Callee, E.164 (`+15550001111`). */
  to: string;
  /** The enrolled user's own number, E.164; used as the caller id. */
  from: string;
  /** Plain-RTP SDP offer produced by the media relay. */
  sdp: string;
  /** Our call id, sent as `X-Monologue-Call` so provider webhooks can be matched to the call. */
  callRef?: string;
}

/**
 * What a leg tells the call once it is up, whichever side set it up. The SIP layer answers refreshes
 * (unchanged SDP) itself; only real media changes reach `remoteOffer`.
 */
export interface MidCallListener {
  /**
   * The far end changed the media mid-call (hold, resume, new address or codec) by re-INVITE or UPDATE,
   * or answered our SDP-less re-INVITE's offer in its ACK. Resolves with our SDP answer for it;
   * a rejection is answered 488 and the call goes on with the media it had.
   */
  remoteOffer(sdp: string): Promise<string>;
  /** The call is over from the far end: BYE (`remote-hangup`) or a failed session refresh (`session-expired`). */
  ended(reason: 'remote-hangup' | 'session-expired'): void;
}

/** Events of one outbound INVITE. Each is called at most once, except `ringing` and `earlyMedia`. */
export interface OutboundListener extends MidCallListener {
  /** 180 or 183 received. */
  ringing(): void;
  /**
   * A provisional response carried SDP (183 or 180 with early media): the far end's answer for now.
   * Called again only when a later provisional carries a different SDP. Never recorded, never paid.
   */
  earlyMedia(sdp: string): void;
  /** 2xx with an SDP answer received (and ACKed); may differ from the early media's SDP. */
  answered(sdp: string): void;
  /**
   * Final non-2xx, transport error or timeout. Ends the attempt. `reason` is the call domain's word for it;
   * `sipStatus` is kept in the call record for support, never interpreted outside src/sip.
   */
  failed(reason: EndReason, sipStatus: number): void;
}

export interface OutboundLeg {
  /** SIP Call-ID of the INVITE we sent: reconciles provider webhooks later. */
  readonly sipCallId: string;
  /** CANCEL before answer, BYE after. Idempotent; fires no listener event. */
  end(): void;
}

/** Digits a dialer may send as DTMF (RFC 4733 events 0-15). */
export const DTMF_DIGITS = /^[0-9*#A-D]+$/;

/**
 * How the media layer plays each digit of `sendDtmf`: the tone, then a gap before the next. The switchboard
 * paces a call's digits by the same clock, so what it admits is what rtpengine can play without a backlog.
 */
export const DTMF_TIMING = { toneMs: 160, gapMs: 100 } as const;

export interface Trunk {
  dial(request: OutboundRequest, listener: OutboundListener): OutboundLeg;
}

export interface InboundOffer {
  readonly sipCallId: string;
  /** Caller: E.164, or `anonymous` when the trunk presented anything else. */
  readonly from: string;
  /** The dialled number, E.164 when parseable. */
  readonly to: string;
  /** The trunk's plain-RTP SDP offer. */
  readonly sdp: string;
}

/** Our side of an inbound INVITE. Every method is idempotent and safe after the call ended. */
export interface InboundLeg {
  ringing(): void;
  /** 200 OK with our SDP, retransmitted until ACK (then the listener's `confirmed`). */
  answer(sdp: string): void;
  /**
   * Final non-2xx before answer, chosen by the SIP layer from the reason (`busy` → 486, `rejected` → 603, …);
   * once our 200 is out, a BYE after its ACK instead.
   */
  reject(reason: EndReason): void;
  /** BYE after answer (or a reject before it). */
  end(): void;
  /**
   * The final status sent before answer (our reject, or 487 after the trunk's CANCEL); undefined while
   * none was sent or once answered. Only stored in the call record: the calls layer never reads it.
   */
  readonly finalStatus: number | undefined;
}

export interface InboundListener extends MidCallListener {
  /** The trunk sent CANCEL before we answered (we already replied 487). */
  cancelled(): void;
  /** The trunk ACKed our 200: only now is the call answered (timestamps, recording, pay). */
  confirmed(): void;
  /** Our 200 was never ACKed (Timer H, 64*T1); we sent BYE. The call never counted as answered. */
  unconfirmed(): void;
}

/** Called by the SIP layer for each new, authorised inbound INVITE. */
export type IncomingCallHandler = (offer: InboundOffer, leg: InboundLeg) => InboundListener;

// ---------------------------------------------------------------- media (rtpengine)

export interface MediaRelay {
  /** One media session per call; nothing is allocated in rtpengine until the first offer. */
  open(callId: string): MediaSession;
  /**
   * Whether the relay can take calls now. False while rtpengine is down or restarting
   * (its exit already ended its live calls `media-failed` through each session's `onLost`).
   */
  ready(): Promise<boolean>;
}

export interface MediaSession {
  /** Outbound call: the dialer's WebRTC offer in, the plain-RTP offer for the trunk out. */
  dialerOffer(sdp: string): Promise<string>;
  /**
   * Outbound call: the trunk's answer in, the WebRTC answer for the dialer out. May be called again
   * (early media from a 183, then the 200's SDP): a later call updates the trunk leg in rtpengine and
   * its result is only for the record, because the dialer keeps the answer it already has.
   */
  trunkAnswer(sdp: string): Promise<string>;
  /** Inbound call: the trunk's offer in, the WebRTC offer for the dialer out. */
  trunkOffer(sdp: string): Promise<string>;
  /** Inbound call: the dialer's WebRTC answer in, the plain-RTP answer for the trunk out. */
  dialerAnswer(sdp: string): Promise<string>;
  /**
   * Fork the dialer's own leg — the enrolled user's voice, and only it (DESIGN §4.1) — to a recorder.
   * rtpengine offers the leg's Opus sendonly; `answer` turns that offer into the recorder's recvonly SDP.
   * There is deliberately no way to name another leg. Only after the call is answered.
   */
  forkDialerLeg(answer: (offerSdp: string) => string): Promise<void>;
  /**
   * End the fork while the call goes on (its owner withdrew consent): rtpengine sends the recorder nothing
   * more. Does nothing without a fork or after `close()`; never throws (a failure is logged).
   */
  unforkDialerLeg(): Promise<void>;
  /**
   * Play an audio file (WAV, or anything rtpengine's ffmpeg reads) to the counterpart, on the trunk leg, once
   * the call is answered: the consent announcement. The counterpart hears only the prompt while it plays (the
   * dialer's audio is held back); resolves once it has played.
   */
  announceToTrunk(file: string): Promise<void>;
  /**
   * The trunk's mid-call offer (hold `sendonly`/`inactive`, resume, new address or codec) in, our answer
   * for the trunk out. The dialer's WebRTC leg is not renegotiated: rtpengine keeps it as it is.
   */
  trunkReoffer(sdp: string): Promise<string>;
  /**
   * Send DTMF digits (0-9 * # A-D) to the trunk as RFC 4733 events on the trunk leg, one after another.
   * Only once the call has media towards the trunk (early media or answered).
   */
  sendDtmf(digits: string): Promise<void>;
  /**
   * Called at most once if the media dies under a live session: `media-timeout` (no RTP either way for the
   * configured time) or `media-failed` (rtpengine exited or lost the call). Not called after `close()`.
   */
  onLost(listener: (reason: 'media-timeout' | 'media-failed') => void): void;
  /** Delete the call in rtpengine. Idempotent; never throws. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- dialer (WebSocket)

/** One connected dialer of one user. Sending to a closed channel is a no-op. */
export interface DialerChannel {
  readonly userId: string;
  /** The dialer's socket has closed (or was closed): nothing it asked for should still reach the phone network. */
  readonly closed: boolean;
  /**
   * Asks the token store now whether this dialer's token still holds (another process may have revoked
   * it since the last check); a dialer whose token does not is disconnected and answers false.
   */
  authorised(): Promise<boolean>;
  created(ref: string, callId: string): void;
  ringing(callId: string): void;
  answered(callId: string, sdp: string): void;
  /** Early media (outbound): the WebRTC answer to apply now so the user hears the carrier before answer. */
  progress(callId: string, sdp: string): void;
  /** The far end put the call on hold (`held`) or took it off (`resumed`). */
  held(callId: string): void;
  resumed(callId: string): void;
  incoming(callId: string, from: string, sdp: string): void;
  ended(callId: string, reason: EndReason): void;
  error(code: string, message: string, ref?: string): void;
  recordingStarted(callId: string): void;
  /** `call-ended` after a normal finish; `no-key`, `failed` and `consent-revoked` mean the call goes on unrecorded. */
  recordingStopped(callId: string, reason: RecordingStopReason): void;
  /** The owner's pause (`recording.pause`) or resume took effect; said again when repeated. */
  recordingPaused(callId: string): void;
  recordingResumed(callId: string): void;
  /** What the call earned (integer micro-units) and its state (`credited`, `held`, `unpaid`, …). */
  earningsUpdated(callId: string, amountMicros: number, state: string): void;
}
