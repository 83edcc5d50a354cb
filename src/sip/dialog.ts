/**
 * A SIP dialog (RFC 3261 §12), after drachtio-srf's Dialog: the state both sides of a call share
 * once the INVITE has a 2xx (or a reliable 18x, for an early dialog) — Call-ID, tags, both CSeqs,
 * the remote target and route set, both current SDPs and the credentials that last worked — and
 * everything that happens inside it: refreshes and offers by re-INVITE/UPDATE, INFO, OPTIONS, PRACK,
 * BYE either way. InboundCall and OutboundCall own one each and only set it up; npm `sip` has no
 * dialog layer.
 *
 * What reaches the leg (`DialogUser`): a real media change (`offer`), the far end's hang-up or an
 * expired session (`ended`), the ACK of the INVITE that made the dialog (`initialAck`). A refresh with
 * unchanged SDP is answered here with our current SDP and never bothers the call.
 */
import type { Logger } from '../log.js';
import type { DigestModule, NameAddr, RouteEntry, SipHeaders, SipModule, SipRequest, SipResponse, SipStack, SipUri } from './sip-types.js';
import { ALLOW, cloneNameAddr, makeResponse, SUPPORTED, tagOf, T1, T2 } from './message.js';
import { changesMedia } from './sdp-change.js';
import { Retransmission } from './retransmission.js';
import { negotiatedAsUac, requestHeaders, SessionTimer, type Negotiated, type SessionTimerConfig } from './session-timer.js';

export type Transport = 'udp' | 'tcp' | 'tls';

/** What the endpoint hands in-dialog requests to. */
export interface DialogOwner {
  /** The IP its peer's in-dialog requests must come from; undefined: any allowed source. */
  readonly peer: string | undefined;
  receive(rq: SipRequest): void;
}

/** What a dialog tells the leg that owns it. */
export interface DialogUser {
  /** The far end offered changed media; resolve with our answer, reject for 488. */
  offer(sdp: string): Promise<string>;
  /** The far end's answer to our SDP-less re-INVITE's offer, or an ACK's SDP that changed media. */
  answerInAck(sdp: string): void;
  /** The dialog is over from the far end (BYE) or its session expired (we sent BYE). Not called after our own `destroy()`. */
  ended(reason: 'remote-hangup' | 'session-expired'): void;
  /** ACK for the 2xx of the INVITE that created the dialog (UAS). */
  initialAck?(rq: SipRequest): void;
  /** PRACK for one of our reliable provisionals (UAS, early dialog): true if it matched one. */
  prack?(rq: SipRequest): boolean;
}

export interface Credentials {
  user: string;
  password: string;
}

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\u0000${localTag}\u0000${remoteTag}`;
}

/** Key of the dialog an incoming request belongs to (our tag is in To, theirs in From). */
export function keyOfIncoming(rq: SipRequest): string | undefined {
  const callId = rq.headers['call-id'];
  const local = tagOf(rq.headers.to);
  const remote = tagOf(rq.headers.from);
  return callId && local && remote ? dialogKey(callId, local, remote) : undefined;
}

/**
 * Where our in-dialog requests may go. The remote target (Contact) and Record-Route come from the
 * peer's message, so they could name any host; our requests go there only when the first hop is a
 * trusted host, else to `fallback` (the INVITE's source, or the configured trunk) without a route set.
 */
export interface TargetPolicy {
  trusted(host: string): boolean;
  fallback: string;
}

/** What the dialog needs from the endpoint. */
export interface DialogContext {
  sip: SipModule;
  stack: SipStack;
  digest: DigestModule;
  log: Logger;
  contact: string;
  transport: Transport;
  policy: TargetPolicy;
  register(key: string, owner: DialogOwner): void;
  unregister(key: string): void;
}

/** RFC 3261 §14.1: how long to wait before retrying after a 491. */
export function glareDelayMs(ownCallId: boolean): number {
  return ownCallId ? 2100 + Math.floor(Math.random() * 1900) : Math.floor(Math.random() * 2000);
}

type DialogState = 'early' | 'confirmed' | 'destroyed';

/** An INVITE we answered 200 whose ACK we still wait for. */
interface PendingOk {
  seq: number;
  offerless: boolean;
  retransmission: Retransmission;
}

export class Dialog implements DialogOwner {
  readonly key: string;
  state: DialogState;
  user: DialogUser | undefined;
  /** Our current SDP (last offer or answer we sent) and theirs. */
  localSdp: string;
  remoteSdp: string | undefined;
  /** The peer's Allow, as last seen (the refresher picks UPDATE only if it is there). */
  peerAllows: Set<string> = new Set();
  timer: SessionTimer | undefined;
  private localSeq: number;
  private remoteSeq: number | undefined;
  private remoteTarget: string;
  private routeSet: RouteEntry[];
  private credentials: Credentials | undefined;
  /** Authorization headers of the INVITE a 2xx answers: its ACK carries the same (RFC 3261 §13.2.2.4). */
  private inviteAuth: Pick<SipHeaders, 'authorization' | 'proxy-authorization'> = {};
  private outgoingOffer = false;
  /** The peer answered our UPDATE 405/501: refresh by re-INVITE from now on. */
  private updateRefused = false;
  private incomingInvite: PendingOk | undefined;
  private readonly log: Logger;
  readonly confined: boolean;

  private constructor(
    private readonly ctx: DialogContext,
    readonly peer: string | undefined,
    readonly callId: string,
    /** Our side, with our tag: From of our requests. */
    readonly local: NameAddr,
    /** Their side, with their tag: To of our requests. */
    readonly remote: NameAddr,
    /** Whether we sent the INVITE that made this dialog (glare timer, refresher roles). */
    readonly isUac: boolean,
    localSeq: number,
    remoteSeq: number | undefined,
    target: { target: string; routeSet: RouteEntry[]; confined: boolean },
    localSdp: string,
    remoteSdp: string | undefined,
    state: DialogState,
  ) {
    this.localSeq = localSeq;
    this.remoteSeq = remoteSeq;
    this.remoteTarget = target.target;
    this.routeSet = target.routeSet;
    this.confined = target.confined;
    this.localSdp = localSdp;
    this.remoteSdp = remoteSdp;
    this.state = state;
    this.key = dialogKey(callId, tagOf(local) ?? '', tagOf(remote) ?? '');
    this.log = ctx.log;
  }

  /** UAC side: from our INVITE and the 2xx (or reliable 18x) that answered it. */
  static fromResponse(ctx: DialogContext, peer: string | undefined, invite: SipRequest, rs: SipResponse): Dialog {
    const h = rs.headers;
    const rr = Array.isArray(h['record-route']) ? [...h['record-route']].reverse() : [];
    const d = new Dialog(
      ctx, peer, String(invite.headers['call-id']), cloneNameAddr(invite.headers.from!), cloneNameAddr(h.to!), true,
      invite.headers.cseq!.seq, undefined, confine(ctx.sip, contactUri(h.contact), rr, ctx.policy),
      invite.content ?? '', hasSdp(rs) ? rs.content : undefined, rs.status < 200 ? 'early' : 'confirmed',
    );
    d.inviteAuth = authHeaders(invite);
    d.notePeer(rs);
    return d;
  }

  /** UAS side: from the INVITE we answer and the tag we gave it. */
  static fromRequest(ctx: DialogContext, peer: string | undefined, invite: SipRequest, localTag: string, localSdp: string, state: DialogState): Dialog {
    const h = invite.headers;
    const rr = Array.isArray(h['record-route']) ? [...h['record-route']] : [];
    const d = new Dialog(
      ctx, peer, String(h['call-id']), cloneNameAddr(h.to!, localTag), cloneNameAddr(h.from!), false,
      0, h.cseq!.seq, confine(ctx.sip, contactUri(h.contact), rr, ctx.policy),
      localSdp, hasSdp(invite) ? invite.content : undefined, state,
    );
    d.notePeer(invite);
    return d;
  }

  /** Start taking in-dialog requests. */
  open(user: DialogUser): void {
    this.user = user;
    this.ctx.register(this.key, this);
  }

  /** Credentials to answer a challenge to our in-dialog requests with (those that got our INVITE through). */
  useCredentials(c: Credentials | undefined): void {
    this.credentials = c;
  }

  /** The early dialog got its 2xx: the 2xx's Contact is the remote target now. */
  confirm(rs: SipResponse, invite: SipRequest): void {
    this.state = 'confirmed';
    this.inviteAuth = authHeaders(invite);
    if (hasSdp(rs)) this.remoteSdp = rs.content;
    this.refreshTarget(rs);
    this.notePeer(rs);
  }

  get destroyed(): boolean {
    return this.state === 'destroyed';
  }

  // ------------------------------------------------------------ what we send

  /** ACK for a 2xx to our INVITE of CSeq `seq`: its own transaction-less request with a new branch. */
  ack(seq: number, content?: string): void {
    const rq = this.build('ACK', seq, { ...this.inviteAuth, ...(content && { 'content-type': 'application/sdp' }) }, content);
    this.ctx.stack.send(rq);
  }

  /**
   * A new in-dialog request with the next CSeq; resolves with its final response (npm `sip` makes
   * timeouts 408 and transport errors 503). A 401/407 is answered once with our credentials.
   * A 2xx to an INVITE is ACKed here, retransmissions included.
   */
  request(method: string, headers: SipHeaders = {}, content?: string): Promise<SipResponse> {
    return new Promise((resolve) => this.send(method, headers, content, true, resolve));
  }

  /** Re-INVITE with `sdp` (ours, current if omitted); a 491 is retried after the §14.1 delay. Resolves with the final response. */
  async modify(sdp: string = this.localSdp, headers: SipHeaders = {}): Promise<SipResponse> {
    for (let attempt = 0; ; attempt++) {
      if (this.destroyed) return makeResponse(this.build('INVITE', this.localSeq), 481);
      this.outgoingOffer = true;
      const rs = await this.request('INVITE', { ...headers, 'content-type': 'application/sdp' }, sdp).finally(() => {
        this.outgoingOffer = false;
      });
      if (rs.status === 491 && attempt < 3) {
        this.log.info('sip: re-INVITE glare (491), retrying');
        await new Promise((r) => setTimeout(r, glareDelayMs(this.isUac)));
        continue;
      }
      if (rs.status >= 200 && rs.status < 300) {
        this.localSdp = sdp;
        if (hasSdp(rs)) this.remoteSdp = rs.content;
        this.refreshTarget(rs);
        this.notePeer(rs);
      }
      return rs;
    }
  }

  /** Run the RFC 4028 timer this dialog negotiated (nothing when it negotiated none). */
  startSessionTimer(cfg: SessionTimerConfig, n: Negotiated): void {
    if (!n || this.destroyed) return;
    this.timer?.stop();
    this.log.debug({ seconds: n.seconds, weRefresh: n.weRefresh }, 'sip: session timer');
    this.timer = new SessionTimer(cfg, { refresh: (s) => this.refreshSession(cfg, s), expire: () => this.expire() }, this.log, n.seconds, n.weRefresh);
  }

  /**
   * Our refresh: UPDATE without SDP when the peer allows UPDATE (cheap, no media touched), else a
   * re-INVITE with our current SDP unchanged (same o= version: no renegotiation). 408/481 (or no
   * answer) means the dialog is gone on their side.
   */
  private async refreshSession(cfg: SessionTimerConfig, seconds: number): Promise<Negotiated | false | null> {
    const headers: SipHeaders = { ...requestHeaders(cfg, seconds), 'session-expires': `${seconds};refresher=uac`, supported: SUPPORTED };
    if (this.peerAllows.has('UPDATE') && !this.updateRefused) {
      const rs = await this.request('UPDATE', headers);
      if (rs.status >= 200 && rs.status < 300) return negotiatedAsUac(rs, cfg);
      if (dialogGone(rs.status) || this.destroyed) return false;
      if (rs.status === 405 || rs.status === 501) this.updateRefused = true;
      this.log.info({ status: rs.status }, 'sip: refresh UPDATE refused, trying re-INVITE');
    }
    const rs = await this.modify(this.localSdp, headers);
    if (rs.status >= 200 && rs.status < 300) return negotiatedAsUac(rs, cfg);
    this.log.info({ status: rs.status }, 'sip: refresh re-INVITE failed');
    return dialogGone(rs.status) ? false : null;
  }

  /** BYE (once); no `ended` event: the owner asked. `Reason` when the session expired. */
  destroy(reason?: 'session-expired'): void {
    if (this.destroyed) return;
    this.teardown();
    const headers: SipHeaders = reason ? { reason: 'SIP;text="session-expired"' } : {};
    void this.request('BYE', headers).then((rs) => {
      if (rs.status >= 300) this.log.info({ status: rs.status }, 'sip: BYE not accepted');
    });
  }

  /** Stop without a BYE (endpoint closing, or the dialog never confirmed). */
  close(): void {
    if (!this.destroyed) this.teardown();
  }

  /** Our session expired (refresh failed or never came): BYE with a Reason, then tell the leg. */
  expire(): void {
    if (this.destroyed) return;
    this.log.info('sip: session expired, BYE');
    this.destroy('session-expired');
    this.user?.ended('session-expired');
  }

  private teardown(): void {
    this.state = 'destroyed';
    this.incomingInvite?.retransmission.stop();
    this.incomingInvite = undefined;
    this.timer?.stop();
    this.ctx.unregister(this.key);
  }

  private send(method: string, headers: SipHeaders, content: string | undefined, mayRetry: boolean, done: (rs: SipResponse) => void): void {
    this.localSeq += 1;
    const seq = this.localSeq;
    const rq = this.build(method, seq, headers, content);
    this.sign(rq, undefined);
    let finished = false;
    this.ctx.stack.send(rq, (rs) => {
      if (rs.status < 200) return;
      if (method === 'INVITE' && rs.status < 300) {
        // Every 2xx (retransmissions too: our ACK was lost) gets its ACK, with the INVITE's credentials.
        this.ctx.stack.send(this.build('ACK', seq, authHeaders(rq)));
      }
      if (finished) return;
      finished = true;
      if ((rs.status === 401 || rs.status === 407) && mayRetry && this.credentials && !this.destroyedBefore(method)) {
        const retried = this.retryAuthenticated(method, headers, content, rs, done);
        if (retried) return;
      }
      done(rs);
    });
  }

  /** A BYE is retried even though the dialog is gone; nothing else is. */
  private destroyedBefore(method: string): boolean {
    return this.destroyed && method !== 'BYE';
  }

  private retryAuthenticated(method: string, headers: SipHeaders, content: string | undefined, challenge: SipResponse, done: (rs: SipResponse) => void): boolean {
    this.localSeq += 1;
    const seq = this.localSeq;
    const rq = this.build(method, seq, headers, content);
    if (!this.sign(rq, challenge)) return false;
    this.log.info({ status: challenge.status, method }, 'sip: in-dialog request challenged, retrying with credentials');
    let finished = false;
    this.ctx.stack.send(rq, (rs) => {
      if (rs.status < 200) return;
      if (method === 'INVITE' && rs.status < 300) this.ctx.stack.send(this.build('ACK', seq, authHeaders(rq)));
      if (finished) return;
      finished = true;
      done(rs);
    });
    return true;
  }

  /** Answer `challenge` on `rq`; without one, nothing to do. False when the challenge is unusable. */
  private sign(rq: SipRequest, challenge: SipResponse | undefined): boolean {
    if (!challenge || !this.credentials) return true;
    try {
      this.ctx.digest.signRequest({}, rq, challenge, { user: this.credentials.user, password: this.credentials.password });
    } catch {
      this.log.warn({ status: challenge.status }, 'sip: unusable auth challenge');
      return false;
    }
    fixAlgorithmCase(rq);
    return true;
  }

  private build(method: string, seq: number, extra: SipHeaders = {}, content?: string): SipRequest {
    const headers: SipRequest['headers'] = {
      via: [],
      to: cloneNameAddr(this.remote),
      from: cloneNameAddr(this.local),
      'call-id': this.callId,
      cseq: { method, seq },
      'max-forwards': 70,
      contact: [{ uri: this.ctx.contact, params: {} }],
      ...extra,
    };
    if (this.routeSet.length > 0) {
      headers.route = this.routeSet.map((r) => ({ ...r, params: { ...r.params } }));
      headers.route[0]!.uri = this.onOurTransport(headers.route[0]!.uri);
      return { method, uri: this.remoteTarget, headers, content: content ?? '' };
    }
    return { method, uri: this.onOurTransport(this.remoteTarget), headers, content: content ?? '' };
  }

  /**
   * The first hop (the first Route, or the remote target when there is none), on the dialog's transport:
   * over TCP or TLS, say so in the URI so npm `sip` picks the stream transport. A dialog set up over TLS
   * never continues in cleartext, whatever the peer's Contact or Record-Route says; the hops behind a
   * proxy keep their own transport (the proxy picks it).
   */
  private onOurTransport<U extends string | SipUri>(hop: U): U | string {
    const transport = this.ctx.transport;
    if (transport === 'udp') return hop;
    const u = this.ctx.sip.parseUri(hop);
    if (!u) return hop;
    const current = u.params.transport?.toLowerCase();
    if (transport === 'tcp' && current) return hop;
    if (transport === 'tls' && (u.schema === 'sips' || current === 'tls')) return hop;
    return this.ctx.sip.stringifyUri({ ...u, params: { ...u.params, transport } });
  }

  // ------------------------------------------------------------ what the peer sends

  receive(rq: SipRequest): void {
    if (rq.method === 'ACK') return this.onAck(rq);
    const seq = rq.headers.cseq!.seq;
    // RFC 3261 §12.2.2. A retransmission never gets here (its transaction answers it), so an equal
    // CSeq is a new request reusing a number: as out of order as a lower one.
    if (this.remoteSeq !== undefined && seq <= this.remoteSeq) {
      this.log.info({ method: rq.method }, 'sip: in-dialog request out of order, 500');
      return this.reply(rq, 500, { reason: 'CSeq Out of Order', headers: { 'retry-after': '1' } });
    }
    this.remoteSeq = seq;
    if (this.destroyed) return this.reply(rq, 481);
    switch (rq.method) {
      case 'BYE':
        return this.onBye(rq);
      case 'INVITE':
      case 'UPDATE':
        return this.onOffer(rq);
      case 'INFO':
        // DTMF relay (application/dtmf-relay, application/dtmf) and anything else: accepted, never logged.
        this.log.debug({ type: String(rq.headers['content-type'] ?? '') }, 'sip: INFO in');
        return this.reply(rq, 200);
      case 'OPTIONS':
        return this.reply(rq, this.state === 'destroyed' ? 481 : 200, { headers: { allow: ALLOW, accept: 'application/sdp', supported: SUPPORTED } });
      case 'PRACK':
        return this.reply(rq, this.user?.prack?.(rq) ? 200 : 481);
      default:
        return this.reply(rq, 501, { headers: { allow: ALLOW } });
    }
  }

  private onBye(rq: SipRequest): void {
    this.reply(rq, 200);
    this.log.info('sip: BYE from trunk');
    this.teardown();
    this.user?.ended('remote-hangup');
  }

  private onAck(rq: SipRequest): void {
    const seq = rq.headers.cseq?.seq;
    const pending = this.incomingInvite;
    if (pending && pending.seq === seq) {
      pending.retransmission.stop();
      this.incomingInvite = undefined;
      if (pending.offerless && hasSdp(rq)) {
        const changed = changesMedia(this.remoteSdp, rq.content);
        this.remoteSdp = rq.content;
        if (changed) this.user?.answerInAck(rq.content);
      }
      return;
    }
    this.user?.initialAck?.(rq);
  }

  /** re-INVITE or UPDATE: refresh, offer, or (re-INVITE without SDP) a request for our offer. */
  private onOffer(rq: SipRequest): void {
    const isInvite = rq.method === 'INVITE';
    const sdp = hasSdp(rq) ? rq.content : undefined;
    if (this.state === 'early' && isInvite) return this.reply(rq, 491);
    // Glare (RFC 3261 §14.2, RFC 3311 §5.2): their offer crossed ours.
    if (this.outgoingOffer && (isInvite || sdp !== undefined)) return this.reply(rq, 491);
    if (this.incomingInvite && isInvite) return this.reply(rq, 500, { headers: { 'retry-after': String(1 + Math.floor(Math.random() * 10)) } });
    const sessionProblem = this.timer?.checkRequest(rq);
    if (sessionProblem) return this.reply(rq, sessionProblem.status, { headers: sessionProblem.headers });
    if (sdp === undefined) {
      // UPDATE without SDP: a refresh. re-INVITE without SDP: our current SDP is the offer (RFC 3261 §14.2).
      return this.accept(rq, isInvite ? this.localSdp : undefined, isInvite);
    }
    if (!changesMedia(this.remoteSdp, sdp)) {
      this.log.debug({ method: rq.method }, 'sip: session refresh');
      return this.accept(rq, this.localSdp, false);
    }
    const user = this.user;
    if (!user) return this.reply(rq, 488);
    this.log.info({ method: rq.method }, 'sip: mid-call offer from trunk');
    // Hold the INVITE slot while the media side works: a second re-INVITE meanwhile gets 500.
    if (isInvite) this.incomingInvite = { seq: rq.headers.cseq!.seq, offerless: false, retransmission: new Retransmission() };
    user.offer(sdp).then(
      (answer) => {
        if (this.destroyed) return this.reply(rq, 481);
        this.incomingInvite = undefined;
        this.remoteSdp = sdp;
        this.localSdp = answer;
        this.accept(rq, answer, false);
      },
      (err: unknown) => {
        this.incomingInvite = undefined;
        this.log.info({ err: err instanceof Error ? err.message : String(err) }, 'sip: mid-call offer refused, 488');
        if (!this.destroyed) this.reply(rq, 488);
      },
    );
  }

  /** 200 to a re-INVITE/UPDATE (with `sdp` if given); for an INVITE, retransmitted until its ACK. */
  private accept(rq: SipRequest, sdp: string | undefined, offerless: boolean): void {
    this.refreshTarget(rq);
    this.notePeer(rq);
    const headers: SipHeaders = {
      contact: [{ uri: this.ctx.contact, params: {} }],
      allow: ALLOW,
      supported: SUPPORTED,
      ...this.timer?.acceptRequest(rq),
      ...(sdp !== undefined && { 'content-type': 'application/sdp' }),
    };
    const ok = makeResponse(rq, 200, { headers, content: sdp });
    this.ctx.stack.send(ok);
    if (rq.method !== 'INVITE') return;
    const retransmission = new Retransmission();
    this.incomingInvite = { seq: rq.headers.cseq!.seq, offerless, retransmission };
    retransmission.start({
      send: () => this.ctx.stack.send(ok),
      reliable: this.ctx.transport !== 'udp',
      firstMs: T1,
      capMs: T2,
      onGiveUp: () => {
        // RFC 3261 §14.2: no ACK for our 2xx to a re-INVITE ends the dialog.
        if (this.incomingInvite?.retransmission !== retransmission) return;
        this.incomingInvite = undefined;
        this.log.warn('sip: no ACK for our 200 to a re-INVITE; BYE');
        this.expire();
      },
    });
  }

  private reply(rq: SipRequest, status: number, extra: Parameters<typeof makeResponse>[2] = {}): void {
    this.ctx.stack.send(makeResponse(rq, status, extra));
  }

  /** A target-refresh request or its 2xx names a new remote target; taken only if it is trusted. */
  private refreshTarget(m: SipRequest | SipResponse): void {
    if (this.confined) return;
    const uri = contactUri(m.headers.contact);
    if (!uri) return;
    const host = this.ctx.sip.parseUri(uri)?.host;
    if (this.routeSet.length > 0 || (host !== undefined && this.ctx.policy.trusted(host))) this.remoteTarget = uri;
    else this.log.warn('sip: new remote target outside the allowed sources ignored');
  }

  private notePeer(m: SipRequest | SipResponse): void {
    const allow = m.headers.allow;
    if (typeof allow === 'string') this.peerAllows = new Set(allow.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
  }
}

/** RFC 4028 §10: these answers to a refresh mean the far end no longer has the dialog (503: npm `sip`'s transport error). */
function dialogGone(status: number): boolean {
  return status === 408 || status === 481 || status === 503;
}

function confine(sip: SipModule, target: string | undefined, routeSet: RouteEntry[], policy: TargetPolicy): { target: string; routeSet: RouteEntry[]; confined: boolean } {
  const first = routeSet[0]?.uri ?? target;
  const host = first === undefined ? undefined : typeof first === 'string' ? sip.parseUri(first)?.host : first.host;
  if (host !== undefined && policy.trusted(host)) return { target: target ?? policy.fallback, routeSet, confined: false };
  return { target: policy.fallback, routeSet: [], confined: true };
}

/** The first Contact's URI, if the message has one. */
export function contactUri(contact: NameAddr[] | '*' | undefined): string | undefined {
  if (!Array.isArray(contact)) return undefined;
  const uri = contact[0]?.uri;
  return uri && uri.length > 0 ? uri : undefined;
}

/** Whether a message carries an SDP body. */
export function hasSdp(m: SipRequest | SipResponse): m is (SipRequest | SipResponse) & { content: string } {
  return !!m.content && String(m.headers['content-type'] ?? '').toLowerCase().startsWith('application/sdp');
}

function authHeaders(rq: SipRequest): Pick<SipHeaders, 'authorization' | 'proxy-authorization'> {
  const out: Pick<SipHeaders, 'authorization' | 'proxy-authorization'> = {};
  if (rq.headers.authorization?.length) out.authorization = rq.headers.authorization.map((a) => ({ ...a }));
  if (rq.headers['proxy-authorization']?.length) out['proxy-authorization'] = rq.headers['proxy-authorization'].map((a) => ({ ...a }));
  return out;
}

/** npm `sip` writes `algorithm=md5`; some trunks compare it case-sensitively (DESIGN §8). */
export function fixAlgorithmCase(rq: SipRequest): void {
  for (const name of ['authorization', 'proxy-authorization'] as const) {
    for (const a of rq.headers[name] ?? []) {
      if (a.algorithm) a.algorithm = a.algorithm.toLowerCase() === 'md5-sess' ? 'MD5-sess' : a.algorithm.toUpperCase();
    }
  }
}
