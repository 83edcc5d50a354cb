import type { Kysely } from 'kysely';
import type { Tables } from '../db/tables.js';
import type { Logger } from '../log.js';
import type { Users } from '../accounts/users.js';
import type { PhoneVault } from '../crypto/phone-vault.js';
import { errorMessage } from '../errors.js';
import type { Settler, SettleResult } from './settle.js';
import type { PayoutsConfig } from './rules.js';
import type { WebhookEvent } from '../webhooks/event.js';

/**
 * Pays for calls: at the end of a recorded call (server timestamps from the call record, talk time from
 * the recorder), and reconciles the provider's own durations from its signed webhooks.
 */
export interface CallPayouts {
  /** Settle a finished, recorded call once. Safe to call again (a repeat changes nothing). */
  settleCall(input: { callId: string; userId: string; talkMs: number; pausedMs?: number }): Promise<SettleResult | undefined>;
  /** A verified provider event: store its duration on our call and flag a mismatch after settlement. */
  providerEvent(event: WebhookEvent): Promise<void>;
}

export function createCallPayouts(deps: {
  db: Kysely<Tables>;
  settler: Settler;
  users: Users;
  vault: PhoneVault;
  config: PayoutsConfig;
  log: Logger;
}): CallPayouts {
  const log = deps.log.child({ mod: 'payouts' });
  return {
    async settleCall({ callId, userId, talkMs, pausedMs }) {
      const call = await deps.db.selectFrom('calls').selectAll().where('id', '=', callId).where('user_id', '=', userId).executeTakeFirst();
      if (!call || call.answered_at === null || call.ended_at === null) return undefined;
      const counterpart = deps.vault.open(call.counterpart_cipher, call.id);
      const other = await deps.users.byPhone(counterpart);
      const result = await deps.settler.settle({
        callId,
        userId,
        answeredAt: Number(call.answered_at),
        endedAt: Number(call.ended_at),
        talkMs,
        ...(pausedMs !== undefined && { pausedMs }),
        counterpartHash: call.counterpart_hash,
        // Both ends enrolled pays the higher rate; the farming rule watches exactly these pairs.
        counterpartEnrolled: Boolean(other?.enrolled && other.id !== userId),
      });
      log.info({ callId, state: result.state, amountMicros: result.amountMicros, flags: result.flags }, 'call settled');
      return result;
    },

    async providerEvent(event) {
      const call = await findCall(deps.db, event);
      if (!call) {
        log.info({ provider: event.provider, eventId: event.eventId }, 'webhook for a call we do not know; kept for the record');
        return;
      }
      if (event.durationSeconds === undefined) return;
      await deps.db
        .updateTable('calls')
        .set({ provider_duration_s: event.durationSeconds, ...(event.providerCallId && { provider_call_id: event.providerCallId }) })
        .where('id', '=', call.id)
        .execute();
      const settled = await deps.settler.get(call.id);
      if (!settled || call.answered_at === null || call.ended_at === null) return; // settle() will read it
      const ours = Math.floor((Number(call.ended_at) - Number(call.answered_at)) / 1000);
      if (Math.abs(event.durationSeconds - ours) > deps.config.reconcileToleranceSeconds) {
        await deps.settler.flag(call.id, 'duration-mismatch').catch((err: unknown) => log.error({ err: errorMessage(err) }, 'flag failed'));
        log.warn({ callId: call.id, ours, provider: event.durationSeconds }, 'provider duration differs: call held for review');
      }
    },
  };
}

async function findCall(db: Kysely<Tables>, e: WebhookEvent) {
  const q = db.selectFrom('calls').select(['id', 'answered_at', 'ended_at']);
  if (e.callRef) {
    const byRef = await q.where('id', '=', e.callRef).executeTakeFirst();
    if (byRef) return byRef;
  }
  if (e.sipCallId) {
    const bySip = await q.where('sip_call_id', '=', e.sipCallId).executeTakeFirst();
    if (bySip) return bySip;
  }
  if (e.providerCallId) return q.where('provider_call_id', '=', e.providerCallId).executeTakeFirst();
  return undefined;
}
