import type { Kysely } from 'kysely';
import type { Tables } from '../db/tables.js';
import type { WebhookEvent } from './event.js';

/**
 * Claims an event id: inserts `(provider, event_id)` unless it is there already.
 * True for exactly one of any number of concurrent claims of the same id (SQLite and PostgreSQL alike).
 */
export async function claimEvent(db: Kysely<Tables>, event: WebhookEvent, nowMs: number): Promise<boolean> {
  const result = await db
    .insertInto('webhook_events')
    .values({ provider: event.provider, event_id: event.eventId, received_at: nowMs, call_ref: event.callRef ?? null })
    .onConflict((oc) => oc.columns(['provider', 'event_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Gives a claim back after the handler failed, so the provider's retry is processed rather than taken for a duplicate. */
export async function releaseEvent(db: Kysely<Tables>, event: WebhookEvent): Promise<void> {
  await db.deleteFrom('webhook_events').where('provider', '=', event.provider).where('event_id', '=', event.eventId).execute();
}
