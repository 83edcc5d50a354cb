import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { errorResponses } from './replies.js';
import { ownerOf } from './auth.js';
import { earningsReport } from '../payouts/earnings.js';

const Micros = Type.Integer({ description: 'integer micro-units (1 USD = 1,000,000)' });

export const Balance = Type.Object(
  {
    pendingMicros: Type.Integer({ description: 'credits under review, not yet withdrawable' }),
    availableMicros: Type.Integer({ description: 'cleared credits less what was paid out' }),
    paidMicros: Type.Integer({ description: 'paid out to the user' }),
    pendingPayoutMicros: Type.Integer({ description: 'requested withdrawals not yet paid or failed' }),
    withdrawableMicros: Type.Integer({ description: 'availableMicros - pendingPayoutMicros: what POST /v1/payouts may take now' }),
    totalMicros: Type.Integer({ description: 'pending + available + paid: everything earned, net of reversals' }),
  },
  { additionalProperties: false },
);

const Day = Type.Object(
  {
    day: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'UTC day of the calls’ answer' }),
    creditedMicros: Micros,
    heldMicros: Micros,
    calls: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

const CallEarning = Type.Object(
  {
    callId: Type.String(),
    day: Type.String(),
    billableS: Type.Integer({ minimum: 0 }),
    talkS: Type.Integer({ minimum: 0 }),
    amountMicros: Micros,
    state: Type.Union(['credited', 'held', 'released', 'rejected', 'unpaid'].map((s) => Type.Literal(s))),
    flags: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

export const EarningsBody = Type.Object({ balance: Balance, days: Type.Array(Day), calls: Type.Array(CallEarning) }, { additionalProperties: false });
export type EarningsBody = Static<typeof EarningsBody>;

const Query = Type.Object(
  {
    days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 30, description: 'UTC days back from today' })),
    calls: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'most recent settled calls' })),
  },
  { additionalProperties: false },
);

const errors = errorResponses(400, 401, 429);

/** The caller's earnings: the same report as `monologue earnings --user`, for their own id only. */
export async function earningRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get<{ Querystring: Static<typeof Query> }>(
    '/earnings',
    { config: { access: 'user' }, schema: { tags: ['earnings'], summary: 'the caller’s balance by state, per day and per call (micro-units)', querystring: Query, response: { 200: EarningsBody, ...errors } } },
    async (req): Promise<EarningsBody> => earningsReport(deps.db, ownerOf(req).userId, { now: deps.now, days: req.query.days, calls: req.query.calls }),
  );
}
