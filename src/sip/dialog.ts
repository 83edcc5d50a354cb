/**
 * A SIP dialog (RFC 3261 §12): the state both sides of a call share once the INVITE has a 2xx —
 * Call-ID, tags, our CSeq, the remote target and the route set — and the in-dialog requests we send
 * (ACK for a 2xx, BYE). npm `sip` has no dialog layer; this is ours.
 */
import type { NameAddr, ResponseCallback, RouteEntry, SipModule, SipRequest, SipResponse, SipStack, SipUri } from './sip-types.js';
import { cloneNameAddr, tagOf } from './message.js';

export type Transport = 'udp' | 'tcp' | 'tls';

/** What a dialog's owner does with the in-dialog requests that reach it. */
export interface DialogOwner {
  /** The IP its peer's in-dialog requests must come from; undefined: any allowed source. */
  readonly peer: string | undefined;
  onAck(rq: SipRequest): void;
  onBye(rq: SipRequest): void;
  onReinvite(rq: SipRequest): void;
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

export class Dialog {
  readonly key: string;
  private localSeq: number;

  private constructor(
    private readonly sip: SipModule,
    private readonly stack: SipStack,
    readonly callId: string,
    /** Our side, with our tag: From of our requests. */
    readonly local: NameAddr,
    /** Their side, with their tag: To of our requests. */
    readonly remote: NameAddr,
    localSeq: number,
    readonly remoteTarget: string,
    readonly routeSet: RouteEntry[],
    readonly transport: Transport,
    private readonly contact: string,
    /** The peer's own target or route set was not trusted: we send to the policy's fallback instead. */
    readonly confined: boolean,
  ) {
    this.localSeq = localSeq;
    this.key = dialogKey(callId, tagOf(local) ?? '', tagOf(remote) ?? '');
  }

  /** UAC side: from our INVITE and the 2xx that answered it. */
  static fromResponse(sip: SipModule, stack: SipStack, invite: SipRequest, rs: SipResponse, transport: Transport, contact: string, policy: TargetPolicy): Dialog {
    const h = rs.headers;
    const rr = Array.isArray(h['record-route']) ? [...h['record-route']].reverse() : [];
    const next = confine(sip, contactUri(h.contact), rr, policy);
    return new Dialog(
      sip, stack, String(invite.headers['call-id']), cloneNameAddr(invite.headers.from!), cloneNameAddr(h.to!),
      invite.headers.cseq!.seq, next.target, next.routeSet, transport, contact, next.confined,
    );
  }

  /** UAS side: from the INVITE we answer and the tag we gave it. */
  static fromRequest(sip: SipModule, stack: SipStack, invite: SipRequest, localTag: string, transport: Transport, contact: string, policy: TargetPolicy): Dialog {
    const h = invite.headers;
    const rr = Array.isArray(h['record-route']) ? [...h['record-route']] : [];
    const next = confine(sip, contactUri(h.contact), rr, policy);
    return new Dialog(
      sip, stack, String(h['call-id']), cloneNameAddr(h.to!, localTag), cloneNameAddr(h.from!),
      1, next.target, next.routeSet, transport, contact, next.confined,
    );
  }

  /** ACK for a 2xx to our INVITE of CSeq `seq`: its own transaction-less request with a new branch. */
  ack(seq: number): void {
    this.stack.send(this.build('ACK', seq));
  }

  /** A new in-dialog request (BYE, …) with the next CSeq. */
  request(method: string, onResponse?: ResponseCallback): void {
    this.localSeq += 1;
    this.stack.send(this.build(method, this.localSeq), onResponse ?? (() => {}));
  }

  private build(method: string, seq: number): SipRequest {
    const headers: SipRequest['headers'] = {
      via: [],
      to: cloneNameAddr(this.remote),
      from: cloneNameAddr(this.local),
      'call-id': this.callId,
      cseq: { method, seq },
      'max-forwards': 70,
      contact: [{ uri: this.contact, params: {} }],
    };
    if (this.routeSet.length > 0) {
      headers.route = this.routeSet.map((r) => ({ ...r, params: { ...r.params } }));
      headers.route[0]!.uri = this.onOurTransport(headers.route[0]!.uri);
      return { method, uri: this.remoteTarget, headers, content: '' };
    }
    return { method, uri: this.onOurTransport(this.remoteTarget), headers, content: '' };
  }

  /**
   * The first hop (the first Route, or the remote target when there is none), on the dialog's transport:
   * over TCP or TLS, say so in the URI so npm `sip` picks the stream transport. A dialog set up over TLS
   * never continues in cleartext, whatever the peer's Contact or Record-Route says; the hops behind a
   * proxy keep their own transport (the proxy picks it).
   */
  private onOurTransport<U extends string | SipUri>(hop: U): U | string {
    if (this.transport === 'udp') return hop;
    const u = this.sip.parseUri(hop);
    if (!u) return hop;
    const current = u.params.transport?.toLowerCase();
    if (this.transport === 'tcp' && current) return hop;
    if (this.transport === 'tls' && (u.schema === 'sips' || current === 'tls')) return hop;
    return this.sip.stringifyUri({ ...u, params: { ...u.params, transport: this.transport } });
  }
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
