/**
 * One outbound INVITE to the trunk, until its dialog is up: digest auth (401/407, once), 422 (once,
 * with the trunk's Min-SE), ringing and early media, PRACK for reliable 18x (RFC 3262), ACK for the
 * 2xx, CANCEL on our timeout or on `end()`. From the 2xx on, the Dialog handles the call (re-INVITE,
 * UPDATE, BYE, session timers) and tells this leg only what the call must hear.
 */
import type { OutboundLeg, OutboundListener, OutboundRequest } from '../calls/ports.js';
import { maskPhone } from '../log.js';
import { dialogContext, guarded, type SipCore } from './core.js';
import { Dialog, fixAlgorithmCase, hasSdp, type DialogUser, type Transport } from './dialog.js';
import { ALLOW, hostPort, newCallId, newTag, SUPPORTED, tagOf } from './message.js';
import { changesMedia } from './sdp-change.js';
import { minSeOf, negotiatedAsUac, optionTags, requestHeaders } from './session-timer.js';
import { isE164 } from '../phone-number.js';
import { isIP } from 'node:net';
import { plainIp } from './sources.js';
import { reasonForStatus } from './status.js';
import type { DigestModule, SipRequest, SipResponse } from './sip-types.js';

export interface TrunkTarget {
  host: string;
  port: number;
  transport: Transport;
  username?: string;
  password?: string;
  /** Host of our From URI; defaults to the trunk host. */
  domain?: string;
  /** `sips`: Request-URI and To are `sips:` (TLS end to end, RFC 5630); only with transport `tls`. */
  scheme?: 'sip' | 'sips';
}

/** Sees every response to our INVITE before the call does (failover watches for liveness and 503s). */
export type ResponseObserver = (rs: SipResponse) => void;

type State = 'calling' | 'answered' | 'done';

export class OutboundCall implements OutboundLeg, DialogUser {
  readonly sipCallId: string;
  private state: State = 'calling';
  private readonly fromTag = newTag();
  private seq = 1;
  private invite: SipRequest | undefined;
  private authTries = 0;
  /** Session-Expires we ask for; raised once by a 422's Min-SE. */
  private sessionSeconds: number;
  private intervalRetried = false;
  private provisional = false;
  /** SDP of the last early media we reported (once per distinct SDP). */
  private earlySdp: string | undefined;
  /** Early dialogs by the trunk's To tag (reliable 18x), with the last RSeq we PRACKed. */
  private readonly early = new Map<string, { dialog: Dialog; rseq: number }>();
  /** We want this INVITE gone (our timeout or end()); CANCEL as soon as we may. */
  private cancelWanted = false;
  private cancelSent = false;
  /** end() was called: no more listener events. */
  private silenced = false;
  private dialog: Dialog | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly log;
  /** In-dialog requests come from the trunk's own address; a host name: any allowed source. */
  readonly peer: string | undefined;

  constructor(
    private readonly core: SipCore,
    private readonly digest: DigestModule,
    private readonly trunk: TrunkTarget,
    private readonly request: OutboundRequest,
    private readonly listener: OutboundListener,
    private readonly inviteTimeoutMs: number,
    private readonly extraHeaders: Record<string, string>,
    private readonly observe?: ResponseObserver,
  ) {
    this.sipCallId = newCallId(core.stack.hostname());
    this.log = core.log.child({ sipCallId: this.sipCallId, dir: 'out' });
    this.peer = isIP(plainIp(trunk.host)) ? plainIp(trunk.host) : undefined;
    this.sessionSeconds = core.sessionTimers.seconds;
  }

  start(): void {
    const { to, from, sdp } = this.request;
    if (!isE164(to) || !isE164(from)) {
      this.log.warn({ to: maskPhone(to), from: maskPhone(from) }, 'sip: dial refused, number is not E.164');
      this.state = 'done';
      queueMicrotask(() => this.emit(() => this.listener.failed(reasonForStatus(484), 484)));
      return;
    }
    this.core.track(this);
    this.timer = setTimeout(() => guarded(this.log, 'invite timeout', () => this.onTimeout()), this.inviteTimeoutMs);
    // Per-call lines below the call's own (`outbound call`, `call ended`) are debug: at info they cost every call a write.
    this.log.debug({ to: maskPhone(to) }, 'sip: INVITE out');
    try {
      this.sendInvite(this.buildInvite(sdp));
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'sip: INVITE could not be sent');
      this.finish();
      queueMicrotask(() => this.emit(() => this.listener.failed(reasonForStatus(503), 503)));
    }
  }

  end(): void {
    if (this.silenced) return;
    this.silenced = true;
    guarded(this.log, 'end', () => {
      if (this.state === 'answered') {
        this.sendBye();
        this.finish();
      } else if (this.state === 'calling') {
        this.requestCancel();
      }
    });
  }

  shutdown(): void {
    this.silenced = true;
    this.finish();
  }

  // ------------------------------------------------------------ DialogUser (the trunk, in the call)

  offer(sdp: string): Promise<string> {
    if (this.silenced || this.state !== 'answered') return Promise.reject(new Error('call is over'));
    return this.listener.remoteOffer(sdp);
  }

  answerInAck(sdp: string): void {
    void this.offer(sdp).catch((err: unknown) => this.log.info({ err: err instanceof Error ? err.message : String(err) }, 'sip: answer in ACK not applied'));
  }

  ended(reason: 'remote-hangup' | 'session-expired'): void {
    if (this.state !== 'answered') return;
    this.finish();
    this.emit(() => this.listener.ended(reason));
  }

  // ------------------------------------------------------------ responses

  private onResponse(rs: SipResponse): void {
    const cseq = rs.headers.cseq;
    if (!cseq || cseq.method !== 'INVITE' || cseq.seq !== this.seq) return; // an earlier, challenged INVITE
    const status = rs.status;
    if (status < 200) return this.onProvisional(rs);
    if (status < 300) return this.on2xx(rs);
    if (this.state !== 'calling') return;
    if ((status === 401 || status === 407) && !this.cancelWanted && this.authTries === 0 && this.trunk.username) {
      if (this.retryWithAuth(rs)) return;
    }
    if (status === 422 && !this.cancelWanted && !this.intervalRetried && this.retryWithInterval(rs)) return;
    this.log.info({ status }, 'sip: INVITE failed');
    this.finish();
    this.emit(() => this.listener.failed(reasonForStatus(status), status));
  }

  private onProvisional(rs: SipResponse): void {
    this.provisional = true;
    if (this.cancelWanted) return this.sendCancel();
    if (this.state !== 'calling') return;
    if (isReliable(rs) && !this.sendPrack(rs)) return; // a retransmitted reliable 18x: already handled
    if (rs.status !== 180 && rs.status !== 183) return;
    this.emit(() => this.listener.ringing());
    if (hasSdp(rs) && changesMedia(this.earlySdp, rs.content)) {
      const sdp = rs.content;
      this.earlySdp = sdp;
      this.emit(() => this.listener.earlyMedia(sdp));
    }
  }

  /**
   * RFC 3262 §4: PRACK a reliable 18x inside the early dialog its To tag makes; false for one whose
   * RSeq we already PRACKed (a retransmission: the PRACK's own transaction covers it).
   */
  private sendPrack(rs: SipResponse): boolean {
    const tag = tagOf(rs.headers.to);
    const rseq = Number(String(rs.headers.rseq).trim());
    if (!tag || !Number.isSafeInteger(rseq) || rseq < 1) return true;
    let early = this.early.get(tag);
    if (early && rseq <= early.rseq) return false;
    if (!early) {
      const dialog = Dialog.fromResponse(this.dialogCtx(), this.peer, this.invite!, rs);
      dialog.useCredentials(this.credentials());
      dialog.open(this);
      early = { dialog, rseq: 0 };
      this.early.set(tag, early);
    }
    early.rseq = rseq;
    const cseq = rs.headers.cseq!;
    void early.dialog.request('PRACK', { RAck: `${rseq} ${cseq.seq} ${cseq.method}` }).then((r) => {
      if (r.status >= 300) this.log.info({ status: r.status }, 'sip: PRACK refused');
    });
    return true;
  }

  private on2xx(rs: SipResponse): void {
    const invite = this.invite!;
    if (this.dialog && tagOf(rs.headers.to) === tagOf(this.dialog.remote)) {
      this.dialog.ack(this.seq); // retransmitted 2xx: our ACK was lost
      return;
    }
    const tag = tagOf(rs.headers.to) ?? '';
    const early = this.early.get(tag)?.dialog;
    this.early.delete(tag);
    const dialog = early ?? Dialog.fromResponse(this.dialogCtx(), this.peer, invite, rs);
    if (early) early.confirm(rs, invite);
    dialog.useCredentials(this.credentials());
    if (dialog.confined) this.log.warn('sip: 2xx Contact/Record-Route outside the allowed sources; our in-dialog requests go to the trunk');
    dialog.ack(this.seq);
    if (this.dialog || this.state !== 'calling' || this.cancelWanted) {
      // Answered after we gave up (or a second fork): confirm and hang up at once.
      this.log.info('sip: late 2xx, ACK and BYE');
      dialog.destroy();
      if (this.state === 'calling') this.finish();
      return;
    }
    this.dialog = dialog;
    this.state = 'answered';
    clearTimeout(this.timer);
    for (const { dialog: other } of this.early.values()) other.close();
    this.early.clear();
    if (!early) dialog.open(this);
    dialog.startSessionTimer(this.core.sessionTimers, negotiatedAsUac(rs, this.core.sessionTimers));
    this.log.debug('sip: answered');
    this.emit(() => this.listener.answered(rs.content ?? ''));
  }

  private dialogCtx(): ReturnType<typeof dialogContext> {
    return dialogContext(this.core, this.log, this.trunk.transport, {
      trusted: (host) => host === this.trunk.host || this.core.trusted(host),
      fallback: this.requestUri(),
    });
  }

  private credentials(): { user: string; password: string } | undefined {
    return this.trunk.username ? { user: this.trunk.username, password: this.trunk.password ?? '' } : undefined;
  }

  /** RFC 4028 §7.4: 422 names the smallest interval the trunk takes; ask again with it, once. */
  private retryWithInterval(rs: SipResponse): boolean {
    const min = minSeOf(rs.headers);
    if (min === undefined || min <= this.sessionSeconds || min > 86_400) return false;
    this.intervalRetried = true;
    this.sessionSeconds = min;
    const next = this.buildInvite(this.request.sdp);
    // A challenge answered before still holds for the retry (same realm and nonce).
    const prev = this.invite;
    if (prev?.headers.authorization) next.headers.authorization = prev.headers.authorization;
    if (prev?.headers['proxy-authorization']) next.headers['proxy-authorization'] = prev.headers['proxy-authorization'];
    this.log.info({ minSe: min }, 'sip: 422, retrying with the trunk\'s Min-SE');
    this.sendInvite(next);
    return true;
  }

  private retryWithAuth(rs: SipResponse): boolean {
    const { username, password } = this.trunk;
    const next = this.buildInvite(this.request.sdp);
    try {
      this.digest.signRequest({}, next, rs, { user: username!, password: password ?? '' });
    } catch {
      this.log.warn({ status: rs.status }, 'sip: unusable auth challenge');
      return false;
    }
    fixAlgorithmCase(next);
    this.authTries += 1;
    this.log.info({ status: rs.status }, 'sip: INVITE challenged, retrying with credentials');
    this.sendInvite(next);
    return true;
  }

  // ------------------------------------------------------------ timeout, CANCEL, BYE

  private onTimeout(): void {
    if (this.state !== 'calling') return;
    this.log.info('sip: no final answer in time, CANCEL');
    this.requestCancel();
    this.finish();
    this.emit(() => this.listener.failed(reasonForStatus(408), 408));
  }

  private requestCancel(): void {
    this.cancelWanted = true;
    if (this.provisional) this.sendCancel();
    // else: CANCEL goes out with the first provisional; if none ever comes, the transaction times out.
  }

  private sendCancel(): void {
    if (this.cancelSent || !this.invite) return;
    this.cancelSent = true;
    const inv = this.invite;
    const via = inv.headers.via?.[0];
    if (!via) return;
    const cancel: SipRequest = {
      method: 'CANCEL',
      uri: inv.uri,
      headers: {
        via: [{ ...via, params: { ...via.params } }],
        to: { ...inv.headers.to!, params: { ...inv.headers.to!.params } },
        from: { ...inv.headers.from!, params: { ...inv.headers.from!.params } },
        'call-id': this.sipCallId,
        cseq: { method: 'CANCEL', seq: this.seq },
        'max-forwards': 70,
      },
      content: '',
    };
    this.core.stack.send(cancel, () => {});
  }

  private sendBye(): void {
    this.dialog?.destroy();
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    clearTimeout(this.timer);
    this.dialog?.close();
    for (const { dialog } of this.early.values()) dialog.close();
    this.early.clear();
    this.core.untrack(this);
  }

  private emit(fn: () => void): void {
    if (this.silenced) return;
    guarded(this.log, 'outbound listener', fn);
  }

  // ------------------------------------------------------------ building

  private requestUri(): string {
    const t = this.trunk;
    if (t.scheme === 'sips') return `sips:${this.request.to}@${hostPort(t.host, t.port)}`;
    return `sip:${this.request.to}@${hostPort(t.host, t.port)}${t.transport === 'udp' ? '' : `;transport=${t.transport}`}`;
  }

  private buildInvite(sdp: string): SipRequest {
    this.seq = this.invite ? this.seq + 1 : this.seq;
    const t = this.trunk;
    return {
      method: 'INVITE',
      uri: this.requestUri(),
      headers: {
        to: { uri: `${t.scheme ?? 'sip'}:${this.request.to}@${t.host}`, params: {} },
        from: { uri: `sip:${this.request.from}@${t.domain ?? t.host}`, params: { tag: this.fromTag } },
        'call-id': this.sipCallId,
        cseq: { method: 'INVITE', seq: this.seq },
        contact: [{ uri: this.core.contact(t.transport), params: {} }],
        'max-forwards': 70,
        allow: ALLOW,
        supported: SUPPORTED,
        ...requestHeaders(this.core.sessionTimers, this.sessionSeconds),
        'content-type': 'application/sdp',
        ...this.extraHeaders,
      },
      content: sdp,
    };
  }

  private sendInvite(rq: SipRequest): void {
    this.invite = rq;
    const seq = rq.headers.cseq!.seq;
    this.core.stack.send(rq, (rs) =>
      guarded(this.log, 'INVITE response', () => {
        if (rs.headers.cseq?.seq !== seq) return;
        if (this.observe) this.observe(rs);
        this.onResponse(rs);
      }),
    );
  }
}

/** A provisional sent reliably (RFC 3262): Require: 100rel and an RSeq. */
function isReliable(rs: SipResponse): boolean {
  return optionTags(rs.headers, 'require').has('100rel') && rs.headers.rseq !== undefined;
}
