/**
 * One inbound INVITE from the trunk and, once answered, its dialog: 180, 200 with our SDP
 * retransmitted until ACK (T1 doubling, capped at T2, BYE after 64*T1), reject, CANCEL → 487, BYE.
 *
 * The call is established only when the ACK for our 200 arrives (`confirmed()`): a 200 nobody
 * ACKs (a forged source never sees it) ends `unconfirmed()` at Timer H. In-dialog requests are taken
 * only from the INVITE's source IP (`peer`), and ours go to the INVITE's source unless the Contact or
 * Record-Route names an allowed source.
 */
import type { EndReason, InboundLeg, InboundListener } from '../calls/ports.js';
import { statusForReason } from './status.js';
import { guarded, type SipCore } from './core.js';
import { contactUri, Dialog, type DialogOwner, type Transport } from './dialog.js';
import { hostPort, makeResponse, newTag, T1, T2, TX_TIMEOUT } from './message.js';
import { plainIp } from './sources.js';
import type { SipRemote, SipRequest, SipResponse } from './sip-types.js';

type State = 'offered' | 'answered' | 'confirmed' | 'done';

export class InboundCall implements InboundLeg, DialogOwner {
  private state: State = 'offered';
  private readonly localTag = newTag();
  private listener: InboundListener | undefined;
  private dialog: Dialog | undefined;
  private ok: SipResponse | undefined;
  private retransmit: NodeJS.Timeout | undefined;
  private giveUp: NodeJS.Timeout | undefined;
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
      this.core.stack.send(makeResponse(this.invite, 180, { toTag: this.localTag, headers: this.recordRoute() }));
    });
  }

  answer(sdp: string): void {
    guarded(this.log, 'answer', () => {
      if (this.state !== 'offered') return;
      const contact = this.core.contact(this.transport);
      this.dialog = Dialog.fromRequest(this.core.sip, this.core.stack, this.invite, this.localTag, this.transport, contact, {
        trusted: (host) => this.core.trusted(host),
        fallback: this.sourceTarget(),
      });
      if (this.dialog.confined) this.log.warn('sip: Contact/Record-Route outside the allowed sources; our in-dialog requests go to the INVITE source');
      this.core.addDialog(this.dialog.key, this);
      this.ok = makeResponse(this.invite, 200, {
        toTag: this.localTag,
        headers: { ...this.recordRoute(), contact: [{ uri: contact, params: {} }], allow: 'INVITE, ACK, CANCEL, BYE, OPTIONS', 'content-type': 'application/sdp' },
        content: sdp,
      });
      this.state = 'answered';
      this.log.info('sip: answered');
      this.core.stack.send(this.ok);
      if (this.transport === 'udp') this.scheduleRetransmit(T1);
      this.giveUp = setTimeout(() => guarded(this.log, 'ACK timeout', () => this.onAckTimeout()), TX_TIMEOUT);
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
      this.dialog?.request('BYE');
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

  onAck(): void {
    if (this.state !== 'answered') return;
    this.state = 'confirmed';
    this.stopTimers();
    if (this.byeWanted) {
      this.dialog?.request('BYE');
      this.finish();
      return;
    }
    this.log.info('sip: ACK in, call confirmed');
    this.emit((l) => l.confirmed());
  }

  onBye(rq: SipRequest): void {
    this.core.stack.send(makeResponse(rq, 200));
    if (this.state !== 'answered' && this.state !== 'confirmed') return;
    this.log.info('sip: BYE from trunk');
    this.finish();
    this.emit((l) => l.ended('remote-hangup'));
  }

  onReinvite(rq: SipRequest): void {
    this.core.stack.send(makeResponse(rq, 488));
  }

  // ------------------------------------------------------------ helpers

  private onAckTimeout(): void {
    if (this.state !== 'answered') return;
    this.log.warn('sip: no ACK for our 200 by Timer H; the call failed, BYE');
    this.dialog?.request('BYE');
    this.finish();
    this.emit((l) => l.unconfirmed());
  }

  private scheduleRetransmit(interval: number): void {
    this.retransmit = setTimeout(() => guarded(this.log, '200 retransmit', () => {
      if (this.state !== 'answered' || !this.ok) return;
      this.core.stack.send(this.ok);
      this.scheduleRetransmit(Math.min(interval * 2, T2));
    }), interval);
  }

  private stopTimers(): void {
    clearTimeout(this.retransmit);
    clearTimeout(this.giveUp);
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.stopTimers();
    if (this.dialog) this.core.removeDialog(this.dialog.key);
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
