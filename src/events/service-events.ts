import type { Db } from '../db/database.js';
import type { Logger } from '../log.js';
import type { Config } from '../config/load.js';
import { MonologueError } from '../errors.js';
import { Webhook } from 'standardwebhooks';
import { createOutbox, NO_EVENTS, type EventSink, type Outbox } from './outbox.js';
import { startDelivery, type DeliveryWorker } from './delivery.js';

export interface OutgoingEvents {
  /** True when events.url is set. */
  readonly on: boolean;
  /** What producers write to: the outbox, or a no-op while events are off. */
  readonly sink: EventSink;
  readonly outbox: Outbox;
  stop(): Promise<void>;
}

/** Refuses a set url without a usable secret: events would go out unsigned or not at all. */
export function checkEventsConfig(c: Config['events']): void {
  if (c.url === '') return;
  if (!/^https?:\/\//.test(c.url)) throw new MonologueError('EVENTS_URL_INVALID', 'events.url must be an http:// or https:// URL (or empty: events off)');
  if (!c.secret.startsWith('whsec_')) throw new MonologueError('EVENTS_SECRET_INVALID', 'events.secret must be a Standard Webhooks secret: "whsec_" followed by base64 of at least 24 random bytes');
  try {
    new Webhook(c.secret);
  } catch (err) {
    throw new MonologueError('EVENTS_SECRET_INVALID', 'events.secret is not valid base64 after "whsec_"', { cause: err });
  }
  if (c.maxBackoffMs < c.minBackoffMs) throw new MonologueError('EVENTS_BACKOFF_INVALID', 'events.maxBackoffMs must be at least events.minBackoffMs');
}

/** The service's outgoing events: the outbox and, when events.url is set, its delivery worker. */
export function startOutgoingEvents(db: Db, c: Config['events'], log: Logger, now: () => number = Date.now): OutgoingEvents {
  checkEventsConfig(c);
  const outbox = createOutbox(db, now);
  if (c.url === '') return { on: false, sink: NO_EVENTS, outbox, stop: async () => undefined };
  const worker: DeliveryWorker = startDelivery(outbox, c, log, now);
  log.info({ code: 'EVENTS_ON' }, 'outgoing events on');
  return { on: true, sink: outbox, outbox, stop: () => worker.stop() };
}
