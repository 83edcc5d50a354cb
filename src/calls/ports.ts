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
  | 'media-failed' // rtpengine refused or did not answer
  | 'max-duration' // the call reached calls.maxCallSeconds, or its owner's daily minutes ran out
  | 'shutdown'; // the service is draining

/** Map a final SIP failure status to an end reason. */
export function reasonForStatus(status: number): EndReason {
  if (status === 486 || status === 600) return 'busy';
  if (status === 404 || status === 484 || status === 604) return 'not-found';
  if (status === 408 || status === 480) return 'no-answer';
  if (status === 487) return 'cancelled';
  if (status === 603) return 'declined';
  if (status === 401 || status === 407) return 'auth-failed';
  if (status >= 500) return 'unavailable';
  return 'failed';
}

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

/** Events of one outbound INVITE. Each is called at most once, except `ringing`. */
export interface OutboundListener {
  /** 180 or 183 received. */
  ringing(): void;
  /** 2xx with an SDP answer received (and ACKed). */
  answered(sdp: string): void;
  /** Final non-2xx, transport error or timeout (status 408 for our own timeouts). Ends the attempt. */
  failed(status: number): void;
  /** The far end sent BYE after answer. */
  ended(): void;
}

export interface OutboundLeg {
  /** SIP Call-ID of the INVITE we sent: reconciles provider webhooks later. */
  readonly sipCallId: string;
  /** CANCEL before answer, BYE after. Idempotent; fires no listener event. */
  end(): void;
}

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
  /** Final non-2xx before answer; once our 200 is out, a BYE after its ACK instead. */
  reject(status: number): void;
  /** BYE after answer (or 487/480-style reject before it). */
  end(): void;
}

export interface InboundListener {
  /** The trunk sent CANCEL before we answered (we already replied 487). */
  cancelled(): void;
  /** The trunk ACKed our 200: only now is the call answered (timestamps, recording, pay). */
  confirmed(): void;
  /** Our 200 was never ACKed (Timer H, 64*T1); we sent BYE. The call never counted as answered. */
  unconfirmed(): void;
  /** The trunk sent BYE. */
  ended(): void;
}

/** Called by the SIP layer for each new, authorised inbound INVITE. */
export type IncomingCallHandler = (offer: InboundOffer, leg: InboundLeg) => InboundListener;

// ---------------------------------------------------------------- media (rtpengine)

export interface MediaRelay {
  /** One media session per call; nothing is allocated in rtpengine until the first offer. */
  open(callId: string): MediaSession;
  /** Whether the relay answers a ping now. */
  ready(): Promise<boolean>;
}

export interface MediaSession {
  /** Outbound call: the dialer's WebRTC offer in, the plain-RTP offer for the trunk out. */
  dialerOffer(sdp: string): Promise<string>;
  /** Outbound call: the trunk's answer in, the WebRTC answer for the dialer out. */
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
  /** Delete the call in rtpengine. Idempotent; never throws. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- dialer (WebSocket)

/** One connected dialer of one user. Sending to a closed channel is a no-op. */
export interface DialerChannel {
  readonly userId: string;
  /**
   * Asks the token store now whether this dialer's token still holds (another process may have revoked
   * it since the last check); a dialer whose token does not is disconnected and answers false.
   */
  authorised(): Promise<boolean>;
  created(ref: string, callId: string): void;
  ringing(callId: string): void;
  answered(callId: string, sdp: string): void;
  incoming(callId: string, from: string, sdp: string): void;
  ended(callId: string, reason: EndReason): void;
  error(code: string, message: string, ref?: string): void;
  recordingStarted(callId: string): void;
  /** `call-ended` after a normal finish; `no-key` and `failed` mean the call went on unrecorded. */
  recordingStopped(callId: string, reason: 'call-ended' | 'no-key' | 'failed'): void;
  /** What the call earned (integer micro-units) and its state (`credited`, `held`, `unpaid`, …). */
  earningsUpdated(callId: string, amountMicros: number, state: string): void;
}
