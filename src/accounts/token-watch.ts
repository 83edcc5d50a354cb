import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { Session, SessionEnd, Tokens } from './tokens.js';

/**
 * Ends what a token opened (live dialer sockets) when the token stops holding: at its expiry instant,
 * at once when this process revokes it, and within one check interval when another process does
 * (the operator CLI, another node). `revoked()` is also the entry point for a cross-node notification
 * (PostgreSQL LISTEN/NOTIFY, DESIGN §6); the interval check stays as the backstop for a lost one.
 */
export interface TokenWatch {
  /** Watch one user of a session; `end` runs once, when the session ends. Returns the unwatch function. */
  watch(session: Session, end: (why: SessionEnd) => void): () => void;
  /** The session's token was revoked: end everything it opened now. */
  revoked(sessionId: string): void;
  /** Ask the database about one session now; if it no longer holds, end it and answer false. */
  confirm(sessionId: string): Promise<boolean>;
  /** Sessions being watched (tests and metrics). */
  readonly watched: number;
  close(): void;
}

export interface TokenWatchOptions {
  /** How often every watched session is checked, with one query for all of them. */
  intervalMs: number;
}

/** setTimeout's ceiling (about 24.8 days); later expiries are left to the interval check. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Watcher {
  end(why: SessionEnd): void;
}

interface Watched {
  watchers: Set<Watcher>;
  expiryTimer?: NodeJS.Timeout;
}

export function createTokenWatch(deps: { tokens: Tokens; log: Logger }, options: TokenWatchOptions, now: () => number = Date.now): TokenWatch {
  const log = deps.log.child({ mod: 'token-watch' });
  const sessions = new Map<string, Watched>();
  let checking = false;

  const endSession = (sessionId: string, why: SessionEnd): void => {
    const entry = sessions.get(sessionId);
    if (!entry) return;
    sessions.delete(sessionId);
    clearTimeout(entry.expiryTimer);
    log.info({ sessionId, why, sockets: entry.watchers.size }, 'session ended; closing what it opened');
    for (const w of entry.watchers) {
      try {
        w.end(why);
      } catch (err) {
        log.error({ sessionId, err: errorMessage(err) }, 'closing a watched connection failed');
      }
    }
  };

  const armExpiry = (session: Session, entry: Watched): void => {
    const delay = session.expiresAt - now();
    if (delay > MAX_TIMER_MS) return;
    entry.expiryTimer = setTimeout(() => {
      // Timers may fire a hair early against the wall clock the expiry is written in.
      if (now() < session.expiresAt) armExpiry(session, entry);
      else endSession(session.sessionId, 'expired');
    }, Math.max(0, delay));
    entry.expiryTimer.unref();
  };

  const check = async (): Promise<void> => {
    if (checking || sessions.size === 0) return;
    checking = true;
    try {
      const ended = await deps.tokens.ended([...sessions.keys()]);
      for (const [sessionId, why] of ended) endSession(sessionId, why);
    } catch (err) {
      // Fail open for one interval rather than drop every dialer on a database blip; the next check retries.
      log.warn({ err: errorMessage(err) }, 'session check failed; retrying at the next interval');
    } finally {
      checking = false;
    }
  };
  const interval = setInterval(() => void check(), options.intervalMs);
  interval.unref();

  return {
    watch(session, end) {
      let entry = sessions.get(session.sessionId);
      if (!entry) {
        entry = { watchers: new Set() };
        sessions.set(session.sessionId, entry);
        armExpiry(session, entry);
      }
      const watcher: Watcher = { end };
      entry.watchers.add(watcher);
      return () => {
        const current = sessions.get(session.sessionId);
        if (!current?.watchers.delete(watcher) || current.watchers.size > 0) return;
        clearTimeout(current.expiryTimer);
        sessions.delete(session.sessionId);
      };
    },
    revoked(sessionId) {
      endSession(sessionId, 'revoked');
    },
    async confirm(sessionId) {
      const why = (await deps.tokens.ended([sessionId])).get(sessionId);
      if (why) endSession(sessionId, why);
      return why === undefined;
    },
    get watched() {
      return sessions.size;
    },
    close() {
      clearInterval(interval);
      for (const entry of sessions.values()) clearTimeout(entry.expiryTimer);
      sessions.clear();
    },
  };
}
