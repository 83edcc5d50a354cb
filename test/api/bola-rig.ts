import { randomBytes } from 'node:crypto';
import type { DeepPartial } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startApiRig, type ApiRig } from './fixture.js';
import type { Subject } from './route-table.js';
import type { Target } from './bola-checks.js';

/** Limits far above what a suite sends, so that no case meets a 429 it did not ask for. */
export const NO_RATE_LIMITS: DeepPartial<Config> = { api: { rateLimitPerMinute: 1_000_000, grantRateLimitPerMinute: 1_000_000, authFailuresPerMinute: 1_000_000 } };

export interface Cast {
  /** A: whose ids are attacked. */
  victim: Subject;
  /** B: holds a valid token of their own. */
  attacker: Subject;
  /** C: makes the calls that change or destroy what they touch. */
  scratch: Subject;
  /** Each user's own number and their calls' counterparts. */
  phones: Map<string, string[]>;
}

let phoneSeq = 0;

/** Three users, each with two settled calls, two sealed recordings, two available credits and a live media grant. */
export async function seedCast(rig: ApiRig): Promise<Cast> {
  const subject = async (): Promise<Subject> => {
    // +15559…: apart from the counterparts seedOwner gives calls (+15552…), so no number is two people's.
    const o = await rig.seedOwner(`+15559${String((process.pid * 10 + phoneSeq++) % 1_000_000).padStart(6, '0')}`, { calls: 2 });
    // Settled as the service settles a finished call: per-day and per-call earnings name the calls.
    for (const callId of o.calls) {
      const call = await rig.service.db.db.selectFrom('calls').select(['answered_at', 'ended_at', 'counterpart_hash']).where('id', '=', callId).executeTakeFirstOrThrow();
      await rig.service.settler.settle({ callId, userId: o.id, answeredAt: Number(call.answered_at), endedAt: Number(call.ended_at), talkMs: 25_000, counterpartHash: call.counterpart_hash, counterpartEnrolled: false });
    }
    const g = await rig.service.grants.issue(o.id, o.recordings[0]!.id, 'play');
    return { ...o, grant: g.token };
  };
  const victim = await subject();
  const attacker = await subject();
  const scratch = await subject();
  const phones = new Map<string, string[]>();
  for (const u of [victim, attacker, scratch]) {
    const counterparts = await Promise.all(u.calls.map(async (c) => (await rig.service.records.get(u.id, c))!.counterpart));
    phones.set(u.id, [u.phone, ...counterparts]);
  }
  return { victim, attacker, scratch, phones };
}

export const targetOf = (rig: ApiRig): Target => ({ baseUrl: rig.url, routes: rig.service.routes, db: rig.service.db.db, tokens: rig.service.tokens });

export const idempotencyKey = () => `bola-${randomBytes(12).toString('base64url')}`;
