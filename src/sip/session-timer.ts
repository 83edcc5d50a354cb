/**
 * Session timers (RFC 4028): how long a dialog lives without a refresh, who refreshes, and the timers
 * that send our refresh at half the interval or end the call when theirs does not come.
 *
 * Roles in the headers are relative to each transaction (`refresher=uac` is whoever sent that
 * request); here they are turned into "we refresh" or "they refresh" at once.
 */
import type { Logger } from '../log.js';
import type { SipHeaders, SipRequest, SipResponse } from './sip-types.js';

export interface SessionTimerConfig {
  /** Interval we ask for on our INVITEs (Session-Expires). */
  seconds: number;
  /** Smallest interval we accept (Min-SE); a smaller Session-Expires gets 422. */
  minSeconds: number;
}

export const DEFAULT_SESSION_TIMERS: SessionTimerConfig = { seconds: 1800, minSeconds: 90 };

/** Longest interval we run a timer for: a day (and far below setTimeout's 24.8-day limit, past which it fires at once). */
const MAX_SECONDS = 86_400;

/** An interval from the peer, kept within what we are willing to run. */
function bounded(seconds: number, cfg: SessionTimerConfig): number {
  return Math.min(MAX_SECONDS, Math.max(cfg.minSeconds, seconds));
}

/** Option tags we implement: anything else in Require gets 420. */
export const SUPPORTED_OPTIONS = ['timer', '100rel'] as const;

export interface SessionExpires {
  seconds: number;
  refresher?: 'uac' | 'uas';
}

/** Session-Expires (or its compact form `x`), if present and readable. */
export function sessionExpiresOf(h: SipHeaders): SessionExpires | undefined {
  const raw = h['session-expires'] ?? h.x;
  if (typeof raw !== 'string') return undefined;
  const m = /^\s*(\d{1,9})\s*((?:;[^,]*)?)$/.exec(raw.split(',')[0] ?? '');
  if (!m) return undefined;
  const r = /;\s*refresher\s*=\s*(uac|uas)\b/i.exec(m[2] ?? '')?.[1]?.toLowerCase();
  return { seconds: Number(m[1]), ...(r && { refresher: r as 'uac' | 'uas' }) };
}

export function minSeOf(h: SipHeaders): number | undefined {
  const raw = h['min-se'];
  if (typeof raw !== 'string') return undefined;
  const m = /^\s*(\d{1,9})/.exec(raw);
  return m ? Number(m[1]) : undefined;
}

/** Option tags of Supported (npm `sip` maps `k`) or Require, lower case. */
export function optionTags(h: SipHeaders, name: 'supported' | 'require' | 'proxy-require'): Set<string> {
  const raw = h[name];
  if (typeof raw !== 'string') return new Set();
  return new Set(raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/** Option tags in Require we do not implement (→ 420 with Unsupported). */
export function unsupportedRequired(h: SipHeaders): string[] {
  const known = new Set<string>(SUPPORTED_OPTIONS);
  return [...optionTags(h, 'require')].filter((t) => !known.has(t));
}

export type Negotiated = { seconds: number; weRefresh: boolean } | undefined;

/**
 * UAS: what an initial INVITE asks for. 422 when its interval is below our minimum; otherwise the
 * interval (never above what it asked, never below any Min-SE) and the refresher: the UAC's choice if
 * it made one, else us (RFC 4028 §9 allows either; we would rather not trust the trunk to remember).
 */
export function negotiateAsUas(rq: SipRequest, cfg: SessionTimerConfig):
  | { reject: { status: 422; headers: SipHeaders } }
  | { session: Negotiated; headers: SipHeaders } {
  const se = sessionExpiresOf(rq.headers);
  if (!se) return { session: undefined, headers: {} };
  if (se.seconds < cfg.minSeconds) return { reject: { status: 422, headers: { 'Min-SE': String(cfg.minSeconds) } } };
  const floor = bounded(minSeOf(rq.headers) ?? 0, cfg);
  const seconds = bounded(Math.max(floor, Math.min(se.seconds, Math.max(cfg.seconds, floor))), cfg);
  const uacSupports = optionTags(rq.headers, 'supported').has('timer');
  // Without `timer` in its Supported the UAC cannot refresh: refresher must be us (§9).
  const refresher = uacSupports ? se.refresher ?? 'uas' : 'uas';
  const headers: SipHeaders = { 'session-expires': `${seconds};refresher=${refresher}` };
  if (uacSupports) headers.require = 'timer';
  return { session: { seconds, weRefresh: refresher === 'uas' }, headers };
}

/** UAC: what the 2xx to our INVITE (or our refresh) settled. No Session-Expires: no timer. */
export function negotiatedAsUac(rs: SipResponse, cfg: SessionTimerConfig): Negotiated {
  const se = sessionExpiresOf(rs.headers);
  if (!se) return undefined;
  // §7.2: the UAS must say; when it does not, the request's sender (us) refreshes. A trunk that
  // answers with less than our Min-SE (or absurdly much) does not get to set our timers' pace.
  return { seconds: bounded(se.seconds, cfg), weRefresh: (se.refresher ?? 'uac') === 'uac' };
}

/** Headers of our INVITEs and refreshes. */
export function requestHeaders(cfg: SessionTimerConfig, seconds: number = cfg.seconds): SipHeaders {
  return { 'session-expires': String(seconds), 'Min-SE': String(cfg.minSeconds) };
}

/** What the timer does to the dialog when it fires. */
export interface SessionTimerActions {
  /**
   * Send a refresh; resolves with what its 2xx settled, `false` when the dialog is gone on their side
   * (408, 481, no answer), `null` when it was refused otherwise (the session still runs to its end).
   */
  refresh(seconds: number): Promise<Negotiated | false | null>;
  /** End the call: BYE with Reason, `ended('session-expired')`. */
  expire(): void;
}

export class SessionTimer {
  private timer: NodeJS.Timeout | undefined;
  /** While our refresh is out: the session's end, unless a refresh (ours or theirs) succeeds first. */
  private deadline: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly cfg: SessionTimerConfig,
    private readonly actions: SessionTimerActions,
    private readonly log: Logger,
    private seconds: number,
    private weRefresh: boolean,
  ) {
    this.schedule();
  }

  get state(): { seconds: number; weRefresh: boolean } {
    return { seconds: this.seconds, weRefresh: this.weRefresh };
  }

  /** A mid-dialog request from the peer whose Session-Expires is below our minimum: 422. */
  checkRequest(rq: SipRequest): { status: number; headers: SipHeaders } | undefined {
    const se = sessionExpiresOf(rq.headers);
    if (se && se.seconds < this.cfg.minSeconds) return { status: 422, headers: { 'Min-SE': String(this.cfg.minSeconds) } };
    return undefined;
  }

  /**
   * The peer refreshed (re-INVITE/UPDATE we answer 200): restart, and the Session-Expires of our 200.
   * Its refresher param is relative to this transaction (they are its UAC).
   */
  acceptRequest(rq: SipRequest): SipHeaders {
    const se = sessionExpiresOf(rq.headers);
    if (se) {
      this.seconds = bounded(se.seconds, this.cfg);
      // A refresh without refresher: they are refreshing, let them go on (the UAS picks, §9).
      this.weRefresh = se.refresher === 'uas';
    }
    this.schedule();
    const headers: SipHeaders = { 'session-expires': `${this.seconds};refresher=${this.weRefresh ? 'uas' : 'uac'}` };
    if (optionTags(rq.headers, 'supported').has('timer')) headers.require = 'timer';
    return headers;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    this.deadline = undefined;
    if (this.stopped) return;
    if (this.weRefresh) {
      this.timer = setTimeout(() => void this.fire(), (this.seconds * 1000) / 2);
    } else {
      // §10: BYE slightly before expiry when no refresh came.
      const ms = (this.seconds - Math.min(32, this.seconds / 3)) * 1000;
      this.timer = setTimeout(() => {
        if (this.stopped) return;
        this.log.info({ seconds: this.seconds }, 'sip: no session refresh from the trunk in time');
        this.actions.expire();
      }, ms);
    }
  }

  /**
   * Our refresh is due. It must succeed before the session's end (the other half of the interval):
   * a trunk that never answers would otherwise keep the call alive for a whole transaction timeout.
   * A refusal that does not say the dialog is gone (a 500, say) leaves the session to run to that end,
   * where a refresh from their side may still save it.
   */
  private async fire(): Promise<void> {
    if (this.stopped) return;
    const deadline = setTimeout(() => {
      if (this.stopped || this.deadline !== deadline) return;
      this.log.info('sip: no successful session refresh before the session ended');
      this.actions.expire();
    }, (this.seconds * 1000) / 2);
    this.deadline = deadline;
    const result = await this.actions.refresh(this.seconds);
    if (this.stopped || this.deadline !== deadline) return; // ended, or refreshed by them meanwhile
    if (result === null) return;
    clearTimeout(deadline);
    this.deadline = undefined;
    if (result === false) {
      this.log.info('sip: our session refresh failed: the dialog is gone');
      this.actions.expire();
      return;
    }
    if (result) {
      this.seconds = result.seconds;
      this.weRefresh = result.weRefresh;
    }
    this.schedule();
  }
}
