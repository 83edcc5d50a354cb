/**
 * One inbound INVITE from the trunk and, once answered, its dialog: 180, 200 with our SDP
 * retransmitted until ACK (T1 doubling, capped at T2, BYE after 64*T1), reject, CANCEL → 487, BYE.
 */
import type { InboundLeg, InboundListener } from '../calls/ports.js';
import { guarded, type SipCore } from './core.js';
import { Dialog, type DialogOwner, type Transport } from './dialog.js';
import { makeResponse, newTag, T1, T2, TX_TIMEOUT } from './message.js';
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

  constructor(
    private readonly core: SipCore,
    private readonly invite: SipRequest,
    private readonly remote: SipRemote,
    private readonly transport: Transport,
  ) {
    this.log = core.log.child({ sipCallId: invite.headers['call-id'], dir: 'in' });
    core.track(this);
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
      this.dialog = Dialog.fromRequest(this.core.sip, this.core.stack, this.invite, this.localTag, this.transport, contact, this.fallbackTarget());
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

  reject(status: number): void {
    guarded(this.log, 'reject', () => {
      if (this.state !== 'offered') return;
      const code = Number.isInteger(status) && status >= 300 && status <= 699 ? status : 500;
      this.silenced = true;
      this.core.stack.send(makeResponse(this.invite, code, { toTag: this.localTag }));
      this.finish();
    });
  }

  end(): void {
    guarded(this.log, 'end', () => {
      if (this.state === 'offered') return this.reject(480);
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
    }
  }

  onBye(rq: SipRequest): void {
    this.core.stack.send(makeResponse(rq, 200));
    if (this.state !== 'answered' && this.state !== 'confirmed') return;
    this.log.info('sip: BYE from trunk');
    this.finish();
    this.emit((l) => l.ended());
  }

  onReinvite(rq: SipRequest): void {
    this.core.stack.send(makeResponse(rq, 488));
  }

  // ------------------------------------------------------------ helpers

  private onAckTimeout(): void {
    if (this.state !== 'answered') return;
    this.log.warn('sip: no ACK for our 200, BYE');
    this.dialog?.request('BYE');
    this.finish();
    this.emit((l) => l.ended());
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

  private fallbackTarget(): string {
    const r = this.remote;
    return `sip:${r.address}:${r.port}${this.transport === 'tcp' ? ';transport=tcp' : ''}`;
  }
}
