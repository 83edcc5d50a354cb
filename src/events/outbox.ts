import type { Db } from '../db/database.js';
import type { EventType, EventsTable } from '../db/tables.js';
import { newId } from '../ids.js';

export type { EventType } from '../db/tables.js';

/** An event's data: ids and figures only (never phone numbers, tokens or keys). */
export type EventData = Record<string, string | number | boolean | null | readonly string[]>;

/**
 * What a domain module writes to. No HTTP here: delivery is src/events/delivery.ts's business. `ex` is the
 * executor of the change being reported, a transaction where there is one, so that the event exists if
 * and only if the change does.
 */
export interface EventSink {
  write(ex: Db, type: EventType, data: EventData): Promise<void>;
}

/** A sink that writes nothing (events.url empty, or a module used without events). */
export const NO_EVENTS: EventSink = { write: async () => undefined };

export type EventState = 'pending' | 'delivered' | 'failed';

export interface OutboxEvent {
  id: string;
  type: EventType;
  data: EventData;
  createdAt: number;
  attempts: number;
  state: EventState;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  failedAt: number | null;
  lastError: string | null;
}

export interface Outbox extends EventSink {
  list(opts?: { state?: EventState; limit?: number }): Promise<OutboxEvent[]>;
  get(id: string): Promise<OutboxEvent | undefined>;
  /** Due now again (attempts kept, failed/delivered cleared). False for an unknown id. */
  redeliver(id: string): Promise<boolean>;
  /**
   * Take up to `limit` due rows for `leaseMs`: each row is moved ahead by the lease in a conditional
   * update (`where id = ? and next_attempt_at = <seen>`), so of several nodes exactly one wins a row; a
   * node that dies holding it lets the lease run out and another retries it.
   */
  claim(limit: number, leaseMs: number): Promise<OutboxEvent[]>;
  delivered(id: string): Promise<void>;
  retry(id: string, at: number, error: string): Promise<void>;
  failed(id: string, error: string): Promise<void>;
}

export function eventSink(now: () => number = Date.now): EventSink {
  return {
    async write(ex, type, data) {
      const at = now();
      await ex
        .insertInto('events')
        .values({ id: newId('evt'), type, payload: JSON.stringify(data), created_at: at, attempts: 0, next_attempt_at: at, delivered_at: null, failed_at: null, last_error: null })
        .execute();
    },
  };
}

export function createOutbox(db: Db, now: () => number = Date.now): Outbox {
  const sink = eventSink(now);
  return {
    write: sink.write,

    async list({ state, limit = 100 } = {}) {
      let q = db.selectFrom('events').selectAll();
      if (state === 'delivered') q = q.where('delivered_at', 'is not', null);
      if (state === 'failed') q = q.where('failed_at', 'is not', null);
      if (state === 'pending') q = q.where('delivered_at', 'is', null).where('failed_at', 'is', null);
      const rows = await q.orderBy('created_at').orderBy('id').limit(limit).execute();
      return rows.map(toEvent);
    },

    async get(id) {
      const row = await db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toEvent(row) : undefined;
    },

    async redeliver(id) {
      const r = await db.updateTable('events').set({ next_attempt_at: now(), delivered_at: null, failed_at: null }).where('id', '=', id).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    async claim(limit, leaseMs) {
      const at = now();
      const due = await db
        .selectFrom('events')
        .selectAll()
        .where('next_attempt_at', '<=', at)
        .orderBy('next_attempt_at')
        .orderBy('id')
        .limit(limit)
        .execute();
      const won: OutboxEvent[] = [];
      for (const row of due) {
        const r = await db
          .updateTable('events')
          .set({ next_attempt_at: at + leaseMs, attempts: Number(row.attempts) + 1 })
          .where('id', '=', row.id)
          .where('next_attempt_at', '=', row.next_attempt_at)
          .where('attempts', '=', row.attempts)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) > 0) won.push(toEvent({ ...row, attempts: Number(row.attempts) + 1 }));
      }
      return won;
    },

    async delivered(id) {
      await db.updateTable('events').set({ delivered_at: now(), next_attempt_at: null, last_error: null }).where('id', '=', id).execute();
    },

    async retry(id, at, error) {
      await db.updateTable('events').set({ next_attempt_at: at, last_error: error.slice(0, 500) }).where('id', '=', id).where('delivered_at', 'is', null).execute();
    },

    async failed(id, error) {
      await db.updateTable('events').set({ failed_at: now(), next_attempt_at: null, last_error: error.slice(0, 500) }).where('id', '=', id).where('delivered_at', 'is', null).execute();
    },
  };
}

function toEvent(r: EventsTable): OutboxEvent {
  const deliveredAt = r.delivered_at === null ? null : Number(r.delivered_at);
  const failedAt = r.failed_at === null ? null : Number(r.failed_at);
  return {
    id: r.id,
    type: r.type,
    data: JSON.parse(r.payload) as EventData,
    createdAt: Number(r.created_at),
    attempts: Number(r.attempts),
    state: deliveredAt !== null ? 'delivered' : failedAt !== null ? 'failed' : 'pending',
    nextAttemptAt: r.next_attempt_at === null ? null : Number(r.next_attempt_at),
    deliveredAt,
    failedAt,
    lastError: r.last_error,
  };
}
