/**
 * One inbound INVITE from the trunk, until its dialog is up: 180/183 (reliably, RFC 3262, when the
 * INVITE requires 100rel), 200 with our SDP retransmitted until ACK (T1 doubling, capped at T2, BYE
 * after 64*T1), reject, CANCEL → 487. From the 200 on, the Dialog handles everything in the call
 * (re-INVITE, UPDATE, BYE, session timers) and tells this leg only what the call must hear.
 *
 * The call is established only when the ACK for our 200 arrives (`confirmed()`): a 200 nobody
 * ACKs (a forged source never sees it) ends `unconfirmed()` at Timer H. In-dialog requests are taken
 * only from the INVITE's source IP (`peer`), and ours go to the INVITE's source unless the Contact or
 * Record-Route names an allowed source.
 */
import type { EndReason, InboundLeg, InboundListener } from '../calls/ports.js';
import { statusForReason } from './status.js';
import { dialogContext, guarded, type SipCore } from './core.js';
import { contactUri, Dialog, type DialogUser, type Transport } from './dialog.js';
import { ALLOW, hostPort, makeResponse, newTag, SUPPORTED, T1, T2 } from './message.js';
import { Retransmission } from './retransmission.js';
import type { Negotiated } from './session-timer.js';
import { plainIp } from './sources.js';
import type { SipHeaders, SipRemote, SipRequest, SipResponse } from './sip-types.js';

type State = 'offered' | 'answered' | 'confirmed' | 'done';

/** What the endpoint settled about the INVITE before handing it to the call. */
export interface InviteTerms {
  /** Session timer from its Session-Expires, and the headers our 200 says it with. */
  session: Negotiated;
  sessionHeaders: SipHeaders;
  /** It carries `Require: 100rel`: our 18x go reliably. */
  reliableProvisionals: boolean;
}

export class InboundCall implements InboundLeg, DialogUser {
  private state: State = 'offered';
  private readonly localTag = newTag();
  private listener: InboundListener | undefined;
  private dialog: Dialog | undefined;
  private ok: SipResponse | undefined;
  private readonly okRetransmission = new Retransmission();
  /** Our reliable provisional still waiting for its PRACK, and its RSeq. */
  private readonly reliable = new Retransmission();
  private rseq = Math.floor(Math.random() * 2 ** 30) + 1;
  private unacked: number | undefined;
  /** answer() while a reliable 18x waits for its PRACK: the 200 goes out after the PRACK (RFC 3262 §3). */
  private queuedAnswer: string | undefined;
  /** end() before the ACK of our 200: BYE as soon as the ACK arrives (or we give up waiting). */
  private byeWanted = false;
  /** No listener events once we ended the call ourselves. */
  private silenced = false;
  private readonly log;
  private sentStatus: number | undefined;
  readonly peer: string;

  constructor(
    private readonly core: SipCore,
    private readonly invite: SipRequest,
    private readonly remote: SipRemote,
    private readonly transport: Transport,
    private readonly terms: InviteTerms = { session: undefined, sessionHeaders: {}, reliableProvisionals: false },
  ) {
    this.log = core.log.child({ sipCallId: invite.headers['call-id'], dir: 'in' });
    this.peer = plainIp(remote.address);
    core.track(this);
  }

  get finalStatus(): number | undefined {
    return this.sentStatus;
  }

  get sipCallId(): string {
    return String(this.invite.headers['call-id']);
  }

  setListener(listener: InboundListener): void {
    this.listener = listener;
  }

  ringing(): void {
    guarded(this.log, 'ringing', () => {
      if (this.state !== 'offered') return;
      if (!this.terms.reliableProvisionals) {
        this.core.stack.send(makeResponse(this.invite, 180, { toTag: this.localTag, headers: this.recordRoute() }));
        return;
      }
      if (this.reliable.running) return; // one reliable 18x at a time (RFC 3262 §3)
      this.sendReliable180();
    });
  }

  answer(sdp: string): void {
    guarded(this.log, 'answer', () => {
      if (this.state !== 'offered') return;
      if (this.reliable.running) {
        this.queuedAnswer = sdp;
        return;
      }
      const dialog = this.ensureDialog(sdp, 'confirmed');
      dialog.state = 'confirmed';
      dialog.localSdp = sdp;
      this.ok = makeResponse(this.invite, 200, {
        toTag: this.localTag,
        headers: {
          ...this.recordRoute(),
          contact: [{ uri: this.core.contact(this.transport), params: {} }],
          allow: ALLOW,
          supported: SUPPORTED,
          ...this.terms.sessionHeaders,
          'content-type': 'application/sdp',
        },
        content: sdp,
      });
      this.state = 'answered';
      this.log.debug('sip: answered');
      const ok = this.ok;
      this.core.stack.send(ok);
      this.okRetransmission.start({
        send: () => this.core.stack.send(ok),
        reliable: this.transport !== 'udp',
        firstMs: T1,
        capMs: T2,
        onGiveUp: () => guarded(this.log, 'ACK timeout', () => this.onAckTimeout()),
      });
    });
  }

  reject(reason: EndReason): void {
    this.rejectWith(statusForReason(reason));
  }

  private rejectWith(status: number): void {
    guarded(this.log, 'reject', () => {
      // Our 200 is out: too late for a final non-2xx, so hang up once the ACK comes (RFC 3261 §15).
      if (this.state === 'answered') return this.end();
      if (this.state !== 'offered') return;
      const code = Number.isInteger(status) && status >= 300 && status <= 699 ? status : 500;
      this.silenced = true;
      this.sentStatus = code;
      this.core.stack.send(makeResponse(this.invite, code, { toTag: this.localTag }));
      this.finish();
    });
  }

  end(): void {
    guarded(this.log, 'end', () => {
      if (this.state === 'offered') return this.rejectWith(480);
      if (this.silenced || this.state === 'done') return;
      this.silenced = true;
      if (this.state === 'answered') {
        this.byeWanted = true; // wait for the ACK (RFC 3261 §15)
        return;
      }
      this.dialog?.destroy();
      this.finish();
    });
  }

  shutdown(): void {
    this.silenced = true;
    this.finish();
  }

  // ------------------------------------------------------------ from the trunk

  onCancel(cancel: SipRequest): void {
    this.core.stack.send(makeResponse(cancel, 200));
    if (this.state !== 'offered') return;
    this.log.info('sip: CANCEL from trunk');
    this.sentStatus = 487;
    this.core.stack.send(makeResponse(this.invite, 487, { toTag: this.localTag }));
    this.finish();
    this.emit((l) => l.cancelled());
  }

  // ------------------------------------------------------------ DialogUser

  initialAck(): void {
    if (this.state !== 'answered') return;
    this.state = 'confirmed';
    this.okRetransmission.stop();
    if (this.byeWanted) {
      this.dialog?.destroy();
      this.finish();
      return;
    }
    this.log.info('sip: ACK in, call confirmed');
    this.dialog?.startSessionTimer(this.core.sessionTimers, this.terms.session);
    this.emit((l) => l.confirmed());
  }

  offer(sdp: string): Promise<string> {
    const l = this.listener;
    if (this.silenced || !l) return Promise.reject(new Error('call is over'));
    return l.remoteOffer(sdp);
  }

  answerInAck(sdp: string): void {
    void this.offer(sdp).catch((err: unknown) => this.log.info({ err: err instanceof Error ? err.message : String(err) }, 'sip: answer in ACK not applied'));
  }

  ended(reason: 'remote-hangup' | 'session-expired'): void {
    if (this.state !== 'answered' && this.state !== 'confirmed') return;
    this.finish();
    this.emit((l) => l.ended(reason));
  }

  prack(rq: SipRequest): boolean {
    const rack = /^\s*(\d+)\s+(\d+)\s+INVITE\s*$/i.exec(String(rq.headers.rack ?? ''));
    if (!rack || this.unacked === undefined || Number(rack[1]) !== this.unacked || Number(rack[2]) !== this.invite.headers.cseq!.seq) return false;
    this.unacked = undefined;
    this.reliable.stop();
    this.log.debug('sip: PRACK in');
    const queued = this.queuedAnswer;
    this.queuedAnswer = undefined;
    if (queued !== undefined) queueMicrotask(() => this.answer(queued));
    return true;
  }

  // ------------------------------------------------------------ helpers

  /** RFC 3262: an early dialog exists from the reliable 18x on, so its PRACK can find us. */
  private sendReliable180(): void {
    this.ensureDialog('', 'early');
    const rseq = this.rseq++;
    this.unacked = rseq;
    const rs = makeResponse(this.invite, 180, {
      toTag: this.localTag,
      headers: { ...this.recordRoute(), contact: [{ uri: this.core.contact(this.transport), params: {} }], require: '100rel', RSeq: String(rseq), allow: ALLOW },
    });
    this.core.stack.send(rs);
    this.reliable.start({
      send: () => this.core.stack.send(rs),
      reliable: this.transport !== 'udp',
      firstMs: T1,
      onGiveUp: () => guarded(this.log, 'PRACK timeout', () => {
        if (this.state !== 'offered') return;
        // RFC 3262 §3: no PRACK within 64*T1 → reject the INVITE with a 5xx.
        this.log.warn('sip: no PRACK for our reliable 180; 504');
        this.silenced = true;
        this.core.stack.send(makeResponse(this.invite, 504, { toTag: this.localTag, reason: 'PRACK Timeout' }));
        this.finish();
        const l = this.listener;
        if (l) guarded(this.log, 'inbound listener', () => l.unconfirmed());
      }),
    });
  }

  private ensureDialog(localSdp: string, state: 'early' | 'confirmed'): Dialog {
    if (this.dialog) return this.dialog;
    const ctx = dialogContext(this.core, this.log, this.transport, {
      trusted: (host) => this.core.trusted(host),
      fallback: this.sourceTarget(),
    });
    const dialog = Dialog.fromRequest(ctx, this.peer, this.invite, this.localTag, localSdp, state);
    if (dialog.confined) this.log.warn('sip: Contact/Record-Route outside the allowed sources; our in-dialog requests go to the INVITE source');
    dialog.open(this);
    this.dialog = dialog;
    return dialog;
  }

  private onAckTimeout(): void {
    if (this.state !== 'answered') return;
    this.log.warn('sip: no ACK for our 200 by Timer H; the call failed, BYE');
    this.dialog?.destroy();
    this.finish();
    this.emit((l) => l.unconfirmed());
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.okRetransmission.stop();
    this.reliable.stop();
    this.dialog?.close();
    this.core.untrack(this);
  }

  private emit(fn: (l: InboundListener) => void): void {
    const l = this.listener;
    if (this.silenced || !l) return;
    guarded(this.log, 'inbound listener', () => fn(l));
  }

  private recordRoute(): { 'record-route'?: SipRequest['headers']['record-route'] } {
    const rr = this.invite.headers['record-route'];
    return Array.isArray(rr) && rr.length > 0 ? { 'record-route': rr } : {};
  }

  /**
   * The INVITE's source as a target. UDP: its address and port (where the peer listened from). TCP: the
   * connection's port is ephemeral and may be gone by our BYE, so the source IP at the Contact's port.
   */
  private sourceTarget(): string {
    const r = this.remote;
    if (this.transport === 'udp') return `sip:${hostPort(this.peer, r.port)}`;
    const contact = contactUri(this.invite.headers.contact);
    const port = (contact && this.core.sip.parseUri(contact)?.port) || 5060;
    return `sip:${hostPort(this.peer, port)};transport=tcp`;
  }
}
