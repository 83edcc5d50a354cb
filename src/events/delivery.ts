import { Webhook } from 'standardwebhooks';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { Outbox, OutboxEvent } from './outbox.js';

export interface DeliveryOptions {
  url: string;
  /** `whsec_` + base64, the Standard Webhooks secret shared with the receiver. */
  secret: string;
  maxRetryHours: number;
  timeoutMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  pollMs: number;
}

export interface DeliveryWorker {
  /** Stop polling; an attempt in flight finishes (bounded by timeoutMs), its row stays leased or settled. */
  stop(): Promise<void>;
}

/** Rows taken per poll. */
const BATCH = 20;

/**
 * The outbox's delivery: poll, claim due rows under a lease, POST each one signed, settle the row.
 * At-least-once: a row is marked delivered only after a 2xx; a crash between the POST and that mark sends
 * it again (same `webhook-id`) once its lease runs out. All state is in the database, so a restart resumes.
 */
export function startDelivery(outbox: Outbox, opts: DeliveryOptions, log: Logger, now: () => number = Date.now): DeliveryWorker {
  const lg = log.child({ mod: 'events' });
  const webhook = new Webhook(opts.secret);
  // A claimed row is ours until the attempt's timeout (plus margin) passes; then another node may retry it.
  const leaseMs = opts.timeoutMs + 5000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const backoff = (attempts: number) => {
    const cap = Math.min(opts.maxBackoffMs, opts.minBackoffMs * 2 ** Math.min(30, attempts - 1));
    return Math.floor(Math.random() * cap); // full jitter
  };

  async function attempt(e: OutboxEvent): Promise<void> {
    const body = JSON.stringify({ type: e.type, timestamp: new Date(e.createdAt).toISOString(), data: e.data });
    const sentAt = new Date(now());
    let error: string;
    try {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': e.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': webhook.sign(e.id, sentAt, body),
        },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        await outbox.delivered(e.id);
        lg.debug({ eventId: e.id, type: e.type, attempts: e.attempts }, 'event delivered');
        return;
      }
      error = `HTTP ${res.status}`;
    } catch (err) {
      error = errorMessage(err);
    }
    if (now() - e.createdAt >= opts.maxRetryHours * 3_600_000) {
      await outbox.failed(e.id, error);
      lg.error({ code: 'EVENT_UNDELIVERED', eventId: e.id, type: e.type, attempts: e.attempts, error }, 'event not delivered within events.maxRetryHours: marked failed ("monologue events redeliver" sends it again)');
      return;
    }
    const delay = backoff(e.attempts);
    await outbox.retry(e.id, now() + delay, error);
    // The first failure is worth a warning; the retries of a long outage are not one each.
    lg[e.attempts === 1 ? 'warn' : 'info']({ eventId: e.id, type: e.type, attempts: e.attempts, retryInMs: delay, error }, 'event delivery failed; retrying');
  }

  async function poll(): Promise<void> {
    try {
      for (;;) {
        const batch = await outbox.claim(BATCH, leaseMs);
        await Promise.all(batch.map((e) => attempt(e).catch((err: unknown) => lg.warn({ eventId: e.id, err: errorMessage(err) }, 'event attempt not recorded; its lease runs out and it is retried'))));
        if (batch.length < BATCH || stopped) break;
      }
    } catch (err) {
      lg.warn({ err: errorMessage(err) }, 'outbox poll failed; the next poll retries');
    }
  }

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = poll().then(schedule);
    }, opts.pollMs);
    timer.unref();
  };
  running = poll().then(schedule);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      clearTimeout(timer);
    },
  };
}
