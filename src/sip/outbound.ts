/**
 * One outbound INVITE to the trunk and, once answered, its dialog: digest auth (401/407, once),
 * ringing, ACK for the 2xx, CANCEL on our timeout or on `end()`, BYE either way.
 */
import type { OutboundLeg, OutboundListener, OutboundRequest } from '../calls/ports.js';
import { maskPhone } from '../log.js';
import { guarded, type SipCore } from './core.js';
import { Dialog, type DialogOwner, type Transport } from './dialog.js';
import { hostPort, makeResponse, newCallId, newTag, tagOf } from './message.js';
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

export class OutboundCall implements OutboundLeg, DialogOwner {
  readonly sipCallId: string;
  private state: State = 'calling';
  private readonly fromTag = newTag();
  private seq = 1;
  private invite: SipRequest | undefined;
  private authTries = 0;
  private provisional = false;
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
    this.log.info({ to: maskPhone(to) }, 'sip: INVITE out');
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
        this.finish();
        this.sendBye();
      } else if (this.state === 'calling') {
        this.requestCancel();
      }
    });
  }

  shutdown(): void {
    this.silenced = true;
    this.finish();
  }

  // ------------------------------------------------------------ DialogOwner (requests from the trunk)

  onAck(): void {}

  onBye(rq: SipRequest): void {
    this.core.stack.send(makeResponse(rq, 200));
    if (this.state !== 'answered') return;
    this.log.info('sip: BYE from trunk');
    this.finish();
    this.emit(() => this.listener.ended('remote-hangup'));
  }

  onReinvite(rq: SipRequest): void {
    this.core.stack.send(makeResponse(rq, 488));
  }

  // ------------------------------------------------------------ responses

  private onResponse(rs: SipResponse): void {
    const cseq = rs.headers.cseq;
    if (!cseq || cseq.method !== 'INVITE' || cseq.seq !== this.seq) return; // an earlier, challenged INVITE
    const status = rs.status;
    if (status < 200) {
      this.provisional = true;
      if (this.cancelWanted) this.sendCancel();
      else if ((status === 180 || status === 183) && this.state === 'calling') this.emit(() => this.listener.ringing());
      return;
    }
    if (status < 300) return this.on2xx(rs);
    if (this.state !== 'calling') return;
    if ((status === 401 || status === 407) && !this.cancelWanted && this.authTries === 0 && this.trunk.username) {
      if (this.retryWithAuth(rs)) return;
    }
    this.log.info({ status }, 'sip: INVITE failed');
    this.finish();
    this.emit(() => this.listener.failed(reasonForStatus(status), status));
  }

  private on2xx(rs: SipResponse): void {
    const invite = this.invite!;
    if (this.dialog && tagOf(rs.headers.to) === tagOf(this.dialog.remote)) {
      this.dialog.ack(this.seq); // retransmitted 2xx: our ACK was lost
      return;
    }
    const dialog = Dialog.fromResponse(this.core.sip, this.core.stack, invite, rs, this.trunk.transport, this.core.contact(this.trunk.transport), {
      trusted: (host) => host === this.trunk.host || this.core.trusted(host),
      fallback: this.requestUri(),
    });
    if (dialog.confined) this.log.warn('sip: 2xx Contact/Record-Route outside the allowed sources; our in-dialog requests go to the trunk');
    dialog.ack(this.seq);
    if (this.dialog || this.state !== 'calling' || this.cancelWanted) {
      // Answered after we gave up (or a second fork): confirm and hang up at once.
      this.log.info('sip: late 2xx, ACK and BYE');
      dialog.request('BYE');
      if (this.state === 'calling') this.finish();
      return;
    }
    this.dialog = dialog;
    this.state = 'answered';
    clearTimeout(this.timer);
    this.core.addDialog(dialog.key, this);
    this.log.info('sip: answered');
    this.emit(() => this.listener.answered(rs.content ?? ''));
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
    for (const name of ['authorization', 'proxy-authorization'] as const) {
      for (const a of next.headers[name] ?? []) {
        if (a.algorithm) a.algorithm = a.algorithm.toLowerCase() === 'md5-sess' ? 'MD5-sess' : a.algorithm.toUpperCase();
      }
    }
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
    this.dialog?.request('BYE');
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    clearTimeout(this.timer);
    if (this.dialog) this.core.removeDialog(this.dialog.key);
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
        allow: 'INVITE, ACK, CANCEL, BYE, OPTIONS',
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
