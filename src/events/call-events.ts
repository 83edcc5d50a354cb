import type { Db } from '../db/database.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { Call } from '../calls/call.js';
import type { EventSink } from './outbox.js';

/**
 * `call.ended` as a subscriber of the switchboard's `call` event (like calls/recording-hook.ts). The call
 * record's end is written by the call itself, outside any transaction, so this event is written right
 * after that write has landed (`call.flushed()`), not with it: a crash in between loses the event.
 */
export function emitCallEnded(deps: { db: Db; events: EventSink; log: Logger }): (call: Call) => void {
  const log = deps.log.child({ mod: 'events' });
  return (call) => {
    call.once('ended', () => {
      if (!call.isAdmitted) return;
      void (async () => {
        await call.flushed();
        const answeredAt = call.answeredAt;
        const row = await deps.db.selectFrom('calls').select(['ended_at', 'end_reason']).where('id', '=', call.id).executeTakeFirst();
        const endedAt = row?.ended_at == null ? null : Number(row.ended_at);
        await deps.events.write(deps.db, 'call.ended', {
          callId: call.id,
          userId: call.userId,
          direction: call.direction,
          reason: call.reason ?? null,
          answered: answeredAt !== undefined,
          durationMs: answeredAt !== undefined && endedAt !== null ? Math.max(0, endedAt - answeredAt) : 0,
        });
      })().catch((err: unknown) => log.error({ callId: call.id, err: errorMessage(err) }, 'call.ended event not written'));
    });
  };
}
