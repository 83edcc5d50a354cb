import type { Db } from '../db/database.js';
import { MonologueError } from '../errors.js';
import { createOutbox, type EventState, type OutboxEvent } from './outbox.js';

const STATES: readonly EventState[] = ['pending', 'delivered', 'failed'];

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
const printable = (e: OutboxEvent) => ({
  ...e,
  createdAt: iso(e.createdAt),
  nextAttemptAt: iso(e.nextAttemptAt),
  deliveredAt: iso(e.deliveredAt),
  failedAt: iso(e.failedAt),
});

/** `monologue events list [--state …]` and `monologue events redeliver EVENT_ID` (the running service's worker sends it). */
export async function runEventsCommand(db: Db, verb: string | undefined, target: string | undefined, state: string | undefined, usage: string): Promise<Record<string, unknown>> {
  const outbox = createOutbox(db);
  if (verb === 'list') {
    if (state !== undefined && !STATES.includes(state as EventState)) throw new MonologueError('USAGE', `--state is one of ${STATES.join(', ')}`);
    const events = await outbox.list({ ...(state !== undefined && { state: state as EventState }), limit: 1000 });
    return { events: events.map(printable) };
  }
  if (verb === 'redeliver') {
    if (!target) throw new MonologueError('USAGE', `missing <EVENT_ID>\n${usage}`);
    if (!(await outbox.redeliver(target))) throw new MonologueError('EVENT_NOT_FOUND', `no event ${target}; "monologue events list" shows them`);
    const e = await outbox.get(target);
    return { event: e ? printable(e) : null };
  }
  throw new MonologueError('USAGE', `unknown command "${['events', verb].filter(Boolean).join(' ')}"\n${usage}`);
}
