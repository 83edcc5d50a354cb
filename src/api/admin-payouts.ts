import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { notFound, errorResponses } from './replies.js';
import { IdParam, iso, Timestamp } from './schemas.js';
import { asApi, PayoutState, withdrawalsFor } from './payouts.js';
import { MAX_REASON_LENGTH, type Payout } from '../payouts/withdrawals.js';

/** A payout as the app's backend sees it: whose it is, too. */
const AdminPayout = Type.Object(
  {
    id: Type.String(),
    userId: Type.String(),
    amountMicros: Type.Integer({ minimum: 1 }),
    state: PayoutState,
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
type AdminPayout = Static<typeof AdminPayout>;

const Params = IdParam('payoutId', 'led');
const Empty = Type.Object({}, { additionalProperties: false });
const FailBody = Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_REASON_LENGTH, pattern: '^[^\\x00-\\x1f\\x7f]*$' })) }, { additionalProperties: false });

const asBody = (p: Payout): AdminPayout => ({ id: p.id, userId: p.userId, amountMicros: p.amountMicros, state: p.state, createdAt: iso(p.createdAt) });
const errors = errorResponses(400, 401, 404, 409, 429);

/**
 * The admin API's payout routes (its listener authenticates the admin key): settle a pending payout
 * as paid or failed, once. The same functions as `monologue payouts mark-paid | fail`; audited as `admin`.
 */
export async function adminPayoutRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const withdrawals = withdrawalsFor(deps);
  // An unknown payout answers the API's one 404, whatever the domain's wording.
  const settle = async (op: () => Promise<{ payout: Payout }>): Promise<AdminPayout> => {
    try {
      return asBody((await asApi(op)).payout);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'PAYOUT_NOT_FOUND') throw notFound();
      throw err;
    }
  };

  // Neither route needs a body: an absent one is the empty object (and so still meets the schema).
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined || req.body === null) req.body = {};
  });

  app.post<{ Params: Static<typeof Params>; Body: Static<typeof Empty> | undefined }>(
    '/payouts/:payoutId/paid',
    { config: { access: 'admin' }, schema: { tags: ['admin'], summary: 'mark a pending payout paid (once)', params: Params, body: Empty, response: { 200: AdminPayout, ...errors } } },
    async (req) => settle(() => withdrawals.markPaid(req.params.payoutId, 'admin')),
  );

  app.post<{ Params: Static<typeof Params>; Body: Static<typeof FailBody> | undefined }>(
    '/payouts/:payoutId/failed',
    {
      config: { access: 'admin' },
      schema: { tags: ['admin'], summary: 'mark a pending payout failed (once): the amount returns to the user’s available balance', params: Params, body: FailBody, response: { 200: AdminPayout, ...errors } },
    },
    async (req) => settle(() => withdrawals.markFailed(req.params.payoutId, 'admin', req.body?.reason)),
  );
}
