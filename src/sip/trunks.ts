/**
 * Several trunks in order, and the failover between them for one outbound call.
 *
 * An attempt that gets 408 or a 5xx, no response at all within the attempt timeout, or a transport error
 * (refused connection, failed TLS handshake: the stack's own 503) moves on to the next trunk with a fresh
 * INVITE: a new Call-ID, From tag and branch, because each trunk is a separate call for its provider (its
 * CDRs and webhooks name that Call-ID) and our B2BUA is the UAC of each. A 4xx or 6xx is the callee's
 * answer (busy, not found, declined) and ends the call; so does anything after the callee rang, and
 * nothing is retried once the user hung up. A 503 with Retry-After rests that trunk for that long.
 */
import type { OutboundLeg, OutboundListener } from '../calls/ports.js';
import type { Logger } from '../log.js';
import { guarded } from './core.js';
import type { ResponseObserver, TrunkTarget } from './outbound.js';
import type { SipResponse } from './sip-types.js';

/** How a trunk's TLS peer is checked. Verification is on unless turned off, which is unsafe. */
export interface TrunkTls {
  /** PEM file of the CA(s) to trust instead of Node's bundled roots. */
  caFile?: string;
  /** Name sent as SNI and checked against the certificate; default: the trunk host when it is a name. */
  servername?: string;
  /** false accepts any certificate: anyone on the path can then read and change the calls. */
  rejectUnauthorized?: boolean;
}

export interface TrunkEntry extends TrunkTarget {
  tls?: TrunkTls;
}

/** One attempt: an INVITE to `target`, reporting to `listener`, every response first to `observe`. */
export type AttemptFactory = (target: TrunkEntry, listener: OutboundListener, observe: ResponseObserver) => OutboundLeg & { start(): void };

/** Longest rest a Retry-After may impose on a trunk: a hostile or broken trunk cannot park itself for days. */
const MAX_REST_SECONDS = 3600;

export class TrunkList {
  private readonly restingUntil = new Map<TrunkEntry, number>();

  constructor(
    readonly entries: readonly TrunkEntry[],
    private readonly now: () => number = Date.now,
  ) {}

  /** The trunks to try, in order, without those resting after a 503 Retry-After; all of them if every one rests. */
  order(): TrunkEntry[] {
    const t = this.now();
    const up = this.entries.filter((e) => (this.restingUntil.get(e) ?? 0) <= t);
    return up.length > 0 ? up : [...this.entries];
  }

  rest(entry: TrunkEntry, seconds: number): void {
    this.restingUntil.set(entry, this.now() + Math.min(seconds, MAX_REST_SECONDS) * 1000);
  }
}

/** Whether a final failure of an attempt should move the call to the next trunk. */
export function shouldFailOver(status: number, calleeRang: boolean): boolean {
  return !calleeRang && (status === 408 || (status >= 500 && status < 600));
}

/** Seconds of a Retry-After header (`120`, `120;duration=60`, `120 (comment)`), if it names any. */
export function retryAfterSeconds(value: unknown): number | undefined {
  const m = /^\s*(\d{1,9})/.exec(typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '');
  return m ? Number(m[1]) : undefined;
}

export interface FailoverOptions {
  /** No response at all (not even 100 Trying) within this → the next trunk, when there is one. */
  attemptTimeoutMs: number;
  log: Logger;
}

/** An outbound call over the trunk list: the `OutboundLeg` the call domain holds. */
export class FailoverDial implements OutboundLeg {
  private readonly queue: TrunkEntry[];
  private current: (OutboundLeg & { start(): void }) | undefined;
  private ended = false;
  private settled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly trunks: TrunkList,
    private readonly attempt: AttemptFactory,
    private readonly listener: OutboundListener,
    private readonly opts: FailoverOptions,
  ) {
    this.queue = trunks.order();
  }

  /** The Call-ID of the attempt in progress (the first attempt's until it fails over). */
  get sipCallId(): string {
    return this.current?.sipCallId ?? '';
  }

  start(): void {
    this.next();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.current?.end();
  }

  private next(): void {
    const target = this.queue.shift();
    if (!target) return;
    const last = this.queue.length === 0;
    let rang = false;
    let responded = false;
    let transportError: string | undefined;
    const where = `${target.host}:${target.port}/${target.transport}`;
    const settle = (fn: () => void): void => {
      if (this.settled || this.ended) return;
      this.settled = true;
      guarded(this.opts.log, 'outbound listener', fn);
    };
    const pass = (fn: () => void): void => {
      if (!this.ended) guarded(this.opts.log, 'outbound listener', fn);
    };
    const observe: ResponseObserver = (rs: SipResponse) => {
      if (!responded) {
        responded = true;
        clearTimeout(this.timer);
      }
      if (rs.transportError !== undefined) transportError = rs.transportError;
      if (rs.status === 503 && rs.transportError === undefined) {
        const rest = retryAfterSeconds(rs.headers['retry-after']);
        if (rest !== undefined && rest > 0) {
          this.trunks.rest(target, rest);
          this.opts.log.info({ trunk: where, seconds: Math.min(rest, MAX_REST_SECONDS) }, 'sip: trunk asked to rest (503 Retry-After)');
        }
      }
    };
    const listener: OutboundListener = {
      ringing: () => {
        rang = true;
        pass(() => this.listener.ringing());
      },
      earlyMedia: (sdp) => {
        rang = true;
        pass(() => this.listener.earlyMedia(sdp));
      },
      answered: (sdp) => settle(() => this.listener.answered(sdp)),
      remoteOffer: (sdp) => this.listener.remoteOffer(sdp),
      ended: (reason) => pass(() => this.listener.ended(reason)),
      failed: (reason, status) => {
        if (this.settled || this.ended || this.current !== leg) return;
        clearTimeout(this.timer);
        if (transportError !== undefined) {
          this.opts.log.warn(
            { code: 'SIP_TRANSPORT_FAILED', trunk: where, err: transportError },
            `sip: could not reach the trunk over ${target.transport}${target.transport === 'tls' ? ' (check sip.trunk.tls: caFile, servername, the trunk certificate)' : ''}`,
          );
        }
        if (!last && shouldFailOver(status, rang)) {
          this.opts.log.warn({ code: 'SIP_TRUNK_FAILOVER', trunk: where, status }, 'sip: trunk failed, trying the next one');
          this.next();
          return;
        }
        settle(() => this.listener.failed(reason, status));
      },
    };
    const leg = this.attempt(target, listener, observe);
    this.current = leg;
    if (!last) {
      this.timer = setTimeout(() => {
        if (responded || this.ended || this.settled || this.current !== leg) return;
        this.opts.log.warn({ code: 'SIP_TRUNK_FAILOVER', trunk: where, timeoutMs: this.opts.attemptTimeoutMs }, 'sip: no response from the trunk, trying the next one');
        // Silences this attempt; if the trunk wakes up and answers, the attempt ACKs and BYEs it.
        leg.end();
        this.next();
      }, this.opts.attemptTimeoutMs);
    }
    leg.start();
  }
}
