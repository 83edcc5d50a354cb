/**
 * Media liveness: ends calls whose media died without a BYE.
 *
 * rtpengine drops a call on its own `--timeout` only when every stream of it is silent, and never tells
 * us over ng. A trunk that stops sending while the browser goes on would keep the call (and its pay) alive
 * forever. So one timer polls ng `query` for every watched call and ends a call `media-timeout` as soon as
 * one of its legs, while its SDP says that leg sends, has received no valid RTP for `timeoutMs`.
 *
 * "Valid" matters: rtpengine counts packets it drops under `strict source` in `stats.packets` and moves
 * `last packet` for them too (measured: an off-path sprayer raised both, and `stats.errors` by as much).
 * So silence is read from `packets - errors`, which only the signalled peer can move; an attacker spraying
 * the port cannot keep a dead call open.
 *
 * A leg whose SDP says it does not send (hold: `inactive`, `recvonly`) is exempt until it sends again; the
 * call is then bounded by `calls.maxCallSeconds` only. A call rtpengine no longer has (it restarted, or its
 * own timeout dropped it) ends `media-failed`; so do all watched calls when rtpengine answered no ng request
 * at all for `unreachableMs` (an external rtpengine that hangs or is cut off).
 *
 * Cost: one `query` per watched call every `pollMs` (default timeout/5, between 250 ms and 2 s), at most
 * `maxInFlight` at once, and never two rounds at once: a slow rtpengine slows the polling, not piles it up.
 */
import type { Logger } from '../log.js';
import { MonologueError, errorMessage } from '../errors.js';
import { isDict, type NgClient, type NgDict } from './ng-client.js';

export type MediaLoss = 'media-timeout' | 'media-failed';

export interface MediaWatchOptions {
  ng: NgClient;
  /** A sending leg silent this long ends its call `media-timeout`. */
  timeoutMs: number;
  /** No ng reply at all for this long ends every watched call `media-failed`. */
  unreachableMs: number;
  /** Polling period. Default timeoutMs / 5, clamped to 250..2000 ms. */
  pollMs?: number;
  /** Queries in flight at once. Default 16. */
  maxInFlight?: number;
  log: Logger;
}

export interface WatchedCall {
  readonly callId: string;
  /** rtpengine tags of the legs whose peers must keep sending (the dialer's and the trunk's, not the fork). */
  readonly legs: readonly string[];
  /** Called at most once per watch; the watch is over when it is called. */
  lost(reason: MediaLoss): void;
}

export interface MediaWatch {
  /** Start watching; the returned function stops it (idempotent). */
  watch(call: WatchedCall): () => void;
  readonly watching: number;
  /** ng queries sent since creation (for measuring the cost). */
  readonly queries: number;
  /** Stop the timer and forget every call, without calling `lost`. */
  close(): void;
}

export function createMediaWatch(opts: MediaWatchOptions): MediaWatch {
  return new Watch(opts);
}

/**
 * Per leg: how many valid packets it had received when we last saw that number change, and when (our
 * clock, so rtpengine's clock and ours need not agree). `undefined` count: not seen yet.
 */
interface LegState {
  good: number | undefined;
  since: number;
}

interface Entry {
  call: WatchedCall;
  legs: Map<string, LegState>;
  done: boolean;
}

class Watch implements MediaWatch {
  readonly #ng: NgClient;
  readonly #timeoutMs: number;
  readonly #unreachableMs: number;
  readonly #pollMs: number;
  readonly #maxInFlight: number;
  readonly #log: Logger;
  readonly #entries = new Set<Entry>();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #closed = false;
  #queries = 0;
  /** Last time rtpengine answered anything (ok or error): its silence is measured from here. */
  #lastReplyAt = Date.now();

  constructor(opts: MediaWatchOptions) {
    if (!(opts.timeoutMs > 0) || !(opts.unreachableMs > 0)) {
      throw new MonologueError('CONFIG', 'media watch timeouts must be positive');
    }
    this.#ng = opts.ng;
    this.#timeoutMs = opts.timeoutMs;
    this.#unreachableMs = opts.unreachableMs;
    this.#pollMs = opts.pollMs ?? Math.min(2000, Math.max(250, Math.floor(opts.timeoutMs / 5)));
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? 16);
    this.#log = opts.log.child({ mod: 'media-watch' });
  }

  get watching(): number {
    return this.#entries.size;
  }

  get queries(): number {
    return this.#queries;
  }

  watch(call: WatchedCall): () => void {
    if (this.#closed) return () => undefined;
    const now = Date.now();
    const entry: Entry = { call, legs: new Map(call.legs.map((tag) => [tag, { good: undefined, since: now }])), done: false };
    if (this.#entries.size === 0) this.#lastReplyAt = now; // nothing was asked while idle: no silence to count
    this.#entries.add(entry);
    this.#arm();
    return () => {
      entry.done = true;
      this.#entries.delete(entry);
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const e of this.#entries) e.done = true;
    this.#entries.clear();
  }

  #arm(): void {
    if (this.#timer || this.#closed || this.#entries.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#round().finally(() => this.#arm());
    }, this.#pollMs);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const queue = [...this.#entries];
      const worker = async (): Promise<void> => {
        // Checked before each query too: with many calls and every query timing out, a round is long.
        for (let e = queue.shift(); e && !this.#unreachable(); e = queue.shift()) await this.#check(e);
      };
      await Promise.all(Array.from({ length: Math.min(this.#maxInFlight, queue.length) }, worker));
      this.#unreachable();
    } finally {
      this.#polling = false;
    }
  }

  /** rtpengine answered nothing for too long: every watched call ends `media-failed`. */
  #unreachable(): boolean {
    const silentMs = Date.now() - this.#lastReplyAt;
    if (this.#entries.size === 0 || silentMs < this.#unreachableMs) return false;
    this.#log.error({ calls: this.#entries.size, silentMs }, 'rtpengine stopped answering; ending its calls');
    for (const e of [...this.#entries]) this.#lose(e, 'media-failed');
    return true;
  }

  async #check(entry: Entry): Promise<void> {
    if (entry.done) return;
    let reply: NgDict;
    try {
      this.#queries++;
      reply = await this.#ng.query(entry.call.callId);
      this.#lastReplyAt = Date.now();
    } catch (err) {
      if (err instanceof MonologueError && err.code === 'MEDIA_REJECTED') {
        this.#lastReplyAt = Date.now();
        if (/unknown call/i.test(err.message)) {
          this.#log.warn({ callId: entry.call.callId }, 'rtpengine no longer has the call');
          this.#lose(entry, 'media-failed');
        } else {
          this.#log.warn({ callId: entry.call.callId, err: errorMessage(err) }, 'rtpengine query refused');
        }
      }
      // No reply at all (MEDIA_TIMEOUT, MEDIA_CLOSED): the round's unreachable check decides.
      return;
    }
    if (entry.done) return; // closed while the query was in flight
    const now = Date.now();
    for (const [tag, state] of entry.legs) {
      const leg = legCounters(reply, tag);
      // A leg that says it does not send (hold) is not expected to; its silence starts when it sends again.
      if (!leg || !leg.sends) {
        state.good = leg?.good;
        state.since = now;
        continue;
      }
      // First sight: its silence counts from the start of the watch (or of the hold's end), not from now.
      if (state.good === undefined || leg.good !== state.good) {
        if (state.good !== undefined) state.since = now;
        state.good = leg.good;
        continue;
      }
      if (now - state.since >= this.#timeoutMs) {
        this.#log.info({ callId: entry.call.callId, leg: tag, silentMs: now - state.since }, 'media timeout');
        this.#lose(entry, 'media-timeout');
        return;
      }
    }
  }

  #lose(entry: Entry, reason: MediaLoss): void {
    if (entry.done) return;
    entry.done = true;
    this.#entries.delete(entry);
    try {
      entry.call.lost(reason);
    } catch (err) {
      this.#log.error({ callId: entry.call.callId, err: errorMessage(err) }, 'media loss listener threw');
    }
  }
}

/**
 * A leg's valid RTP packets received (over its RTP streams; RTCP-only streams do not count: "no RTP"),
 * and whether its SDP says it sends. Undefined when rtpengine's reply has no such leg.
 */
export function legCounters(query: NgDict, tag: string): { good: number; sends: boolean } | undefined {
  const tags = query.tags;
  const leg = isDict(tags) ? tags[tag] : undefined;
  if (!isDict(leg) || !Array.isArray(leg.medias)) return undefined;
  let good = 0;
  let sends = false;
  for (const media of leg.medias) {
    if (!isDict(media)) continue;
    // rtpengine's media flags are its own view of the leg: `recv` means it expects packets from this
    // peer (the peer's SDP is sendrecv or sendonly); a peer on hold (recvonly, inactive) lacks it (measured).
    if (Array.isArray(media.flags) && media.flags.includes('recv')) sends = true;
    for (const stream of Array.isArray(media.streams) ? media.streams : []) {
      if (!isDict(stream) || !Array.isArray(stream.flags) || !stream.flags.includes('RTP')) continue;
      const stats = stream.stats;
      if (!isDict(stats) || typeof stats.packets !== 'number') continue;
      good += stats.packets - (typeof stats.errors === 'number' ? stats.errors : 0);
    }
  }
  return { good, sends };
}
