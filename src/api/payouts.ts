import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { ownerOf } from './auth.js';
import { ApiError, badRequest, errorResponses } from './replies.js';
import { decodeCursor, encodeCursor, iso, Page, PageQuery, Timestamp } from './schemas.js';
import { MonologueError } from '../errors.js';
import { createWithdrawals, IDEMPOTENCY_KEY_RE, type Payout as PayoutRow, type Withdrawals } from '../payouts/withdrawals.js';

export const PayoutState = Type.Union([Type.Literal('pending'), Type.Literal('paid'), Type.Literal('failed')]);

export const Payout = Type.Object(
  {
    id: Type.String(),
    amountMicros: Type.Integer({ minimum: 1, description: 'integer micro-units withdrawn (1 USD = 1,000,000)' }),
    state: PayoutState,
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Payout = Static<typeof Payout>;

const RequestBody = Type.Object({ amountMicros: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false });

// Documents the header; the preValidation hook below enforces it with its own code.
const RequestHeaders = Type.Object({
  'idempotency-key': Type.String({ pattern: '^[\\x21-\\x7e]{1,128}$', description: '1-128 visible ASCII characters, unique per withdrawal; a retry with the same key returns the first answer' }),
});

/** Domain refusals → HTTP. Anything else is not a client error. */
const STATUS: Record<string, number> = {
  IDEMPOTENCY_KEY_REQUIRED: 400,
  PAYOUT_AMOUNT_INVALID: 400,
  IDEMPOTENCY_KEY_REUSED: 409,
  PAYOUT_NOT_PENDING: 409,
  PAYOUT_BELOW_MINIMUM: 422,
  INSUFFICIENT_BALANCE: 422,
  PAYOUT_REASON_INVALID: 400,
};

/** Runs a withdrawals call, answering its refusals with their status and code. */
export async function asApi<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const status = err instanceof MonologueError ? STATUS[err.code] : undefined;
    if (err instanceof MonologueError && status !== undefined) throw new ApiError(status, err.code, err.message);
    throw err;
  }
}

export function withdrawalsFor(deps: ApiDeps): Withdrawals {
  return createWithdrawals({ db: deps.db, audit: deps.audit, minimumPayoutMicros: deps.config.payouts.minimumPayoutMicros, now: deps.now, ...(deps.events && { events: deps.events }) });
}

const asBody = (p: PayoutRow): Payout => ({ id: p.id, amountMicros: p.amountMicros, state: p.state, createdAt: iso(p.createdAt) });

const errors = errorResponses(400, 401, 429);

/** The caller's withdrawals: request one, list their own. */
export async function payoutRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const withdrawals = withdrawalsFor(deps);

  app.post<{ Body: Static<typeof RequestBody> }>(
    '/payouts',
    {
      config: { access: 'user' },
      schema: {
        tags: ['payouts'],
        summary: 'withdraw from the available balance (Idempotency-Key required)',
        headers: RequestHeaders,
        body: RequestBody,
        response: { 201: Payout, ...errors, 409: { $ref: 'ErrorBody#' }, 422: { $ref: 'ErrorBody#' } },
      },
      // Before body validation, so a request without a key is told exactly that.
      preValidation: async (req) => {
        const key = req.headers['idempotency-key'];
        if (typeof key !== 'string' || !IDEMPOTENCY_KEY_RE.test(key)) {
          throw badRequest('IDEMPOTENCY_KEY_REQUIRED', 'send an Idempotency-Key header of 1-128 visible ASCII characters, unique per withdrawal');
        }
      },
    },
    async (req, reply): Promise<Payout> => {
      const key = req.headers['idempotency-key'] as string;
      const { payout } = await asApi(() => withdrawals.request(ownerOf(req).userId, key, req.body.amountMicros));
      // A repeat answers what the first request answered: same status, same body.
      reply.code(201);
      return asBody(payout);
    },
  );

  app.get<{ Querystring: Static<typeof PageQuery> }>(
    '/payouts',
    { config: { access: 'user' }, schema: { tags: ['payouts'], summary: 'the caller’s payouts, newest first', querystring: PageQuery, response: { 200: Page(Payout), ...errors } } },
    async (req) => {
      const limit = req.query.limit ?? 20;
      const after = decodeCursor(req.query.cursor);
      const rows = await withdrawals.listOwn(ownerOf(req).userId, { limit: limit + 1, ...(after && { after }) });
      const items = rows.slice(0, limit);
      const last = items.at(-1);
      return { items: items.map(asBody), nextCursor: rows.length > limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null };
    },
  );
}
