import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { createCallHistory, type CallHistoryItem } from '../calls/history.js';
import { ownerOf } from './auth.js';
import { notFound, errorResponses } from './replies.js';
import { decodeCursor, encodeCursor, IdParam, iso, isoOrNull, NullableTimestamp, Page, PageQuery, Timestamp } from './schemas.js';

const SETTLEMENT_STATES = ['credited', 'held', 'released', 'rejected', 'unpaid'] as const;

export const CallItem = Type.Object(
  {
    id: Type.String(),
    direction: Type.Union([Type.Literal('outbound'), Type.Literal('inbound')]),
    /** The other party's number (E.164, or `anonymous` for a withheld caller id): the owner's own call log. */
    counterpart: Type.String(),
    createdAt: Timestamp,
    ringingAt: NullableTimestamp,
    answeredAt: NullableTimestamp,
    endedAt: NullableTimestamp,
    billableSeconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    endReason: Type.Union([Type.String(), Type.Null()]),
    recordingNote: Type.Union([Type.String(), Type.Null()]),
    recordingId: Type.Union([Type.String(), Type.Null()]),
    earning: Type.Union([
      Type.Object({ amountMicros: Type.Integer(), state: Type.Union(SETTLEMENT_STATES.map((s) => Type.Literal(s))) }, { additionalProperties: false }),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);
export type CallItem = Static<typeof CallItem>;

const CallPage = Page(CallItem);
type CallPage = Static<typeof CallPage>;
const CallParams = IdParam('callId', 'call');
type CallParams = Static<typeof CallParams>;
type PageQuery = Static<typeof PageQuery>;

const errors = errorResponses(401, 404, 429);

export function callItem(c: CallHistoryItem): CallItem {
  return {
    id: c.id,
    direction: c.direction,
    counterpart: c.counterpart,
    createdAt: iso(c.createdAt),
    ringingAt: isoOrNull(c.ringingAt),
    answeredAt: isoOrNull(c.answeredAt),
    endedAt: isoOrNull(c.endedAt),
    billableSeconds: c.billableSeconds,
    endReason: c.endReason,
    recordingNote: c.recordingNote,
    recordingId: c.recordingId,
    earning: c.earning,
  };
}

/** The caller's call log, newest first. */
export async function callRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const history = createCallHistory(deps.db, deps.vault);

  app.get<{ Querystring: PageQuery }>(
    '/calls',
    {
      config: { access: 'user' },
      schema: {
        tags: ['calls'],
        summary: 'the caller’s calls, newest first',
        querystring: PageQuery,
        response: { 200: CallPage, 400: { $ref: 'ErrorBody#' }, ...errors },
      },
    },
    async (req): Promise<CallPage> => {
      const after = decodeCursor(req.query.cursor);
      const page = await history.page(ownerOf(req).userId, { limit: req.query.limit ?? 20, after });
      return { items: page.items.map(callItem), nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get<{ Params: CallParams }>(
    '/calls/:callId',
    {
      config: { access: 'user' },
      schema: { tags: ['calls'], summary: 'one of the caller’s calls', params: CallParams, response: { 200: CallItem, ...errors } },
    },
    async (req): Promise<CallItem> => {
      const call = await history.get(ownerOf(req).userId, req.params.callId);
      if (!call) throw notFound();
      return callItem(call);
    },
  );
}
