import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { ownerOf } from './auth.js';
import { ApiError, notFound, errorResponses } from './replies.js';
import { decodeCursor, encodeCursor, IdParam, iso, isoOrNull, NullableTimestamp, Page, PageQuery, Timestamp } from './schemas.js';
import type { RecordingRow } from '../recordings/catalog.js';
import type { GrantPurpose } from '../recordings/grants.js';

/**
 * The caller's recordings (metadata only: no key, no KEK id, no storage key ever leaves) and the grants
 * that let a player fetch one recording's audio from /v1/media/{grant} for a few minutes.
 */
export const Recording = Type.Object(
  {
    id: Type.String(),
    callId: Type.String(),
    /** `recording` while the call is live; `incomplete` when the service stopped during the call. Deleted ones are gone. */
    state: Type.Union([Type.Literal('recording'), Type.Literal('complete'), Type.Literal('incomplete'), Type.Literal('failed')]),
    /** Length of the recorded audio. */
    durationMs: Type.Integer({ minimum: 0 }),
    /** How much of it the user was talking (voice activity). */
    talkMs: Type.Integer({ minimum: 0 }),
    createdAt: Timestamp,
    endedAt: NullableTimestamp,
  },
  { additionalProperties: false, $id: 'Recording' },
);
export type Recording = Static<typeof Recording>;

export const GrantBody = Type.Object({ purpose: Type.Union([Type.Literal('play'), Type.Literal('download')]) }, { additionalProperties: false });

export const Grant = Type.Object(
  {
    /** Relative to the API's origin: `/v1/media/<grant>`. Needs no Authorization header. */
    url: Type.String(),
    expiresAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Grant = Static<typeof Grant>;

const errors = errorResponses(401, 404, 429);
const RecordingParams = IdParam('recordingId', 'rec');

export function toRecording(r: RecordingRow): Recording {
  if (r.state === 'deleted') throw new Error(`recording ${r.id} is deleted and must not be shown`);
  return { id: r.id, callId: r.callId, state: r.state, durationMs: r.durationMs, talkMs: r.talkMs, createdAt: iso(r.createdAt), endedAt: isoOrNull(r.endedAt) };
}

/** Deleted (crypto-shredded): its key is destroyed first, so a row without one is gone to its owner too. */
export function isShredded(r: RecordingRow): boolean {
  return r.state === 'deleted' || r.wrappedKey === null || r.kekId === null;
}

/** A recording whose audio can be served: finished and holding audio. */
export function isReadable(r: RecordingRow): boolean {
  if (isShredded(r)) return false;
  return r.state === 'complete' || (r.state === 'incomplete' && r.chunkCount > 0);
}

/**
 * Issues a media grant for the owner's readable recording: undefined for anything else (foreign,
 * unknown, deleted, failed, empty), which every caller answers with the one 404. A live recording of
 * the owner's is RECORDING_LIVE (409). Shared with the export, which lists recordings as grant URLs.
 */
export async function issueMediaGrant(deps: ApiDeps, userId: string, recordingId: string, purpose: GrantPurpose, actor?: string): Promise<Grant | undefined> {
  const row = await deps.catalog.getOwned(userId, recordingId);
  if (!row || isShredded(row)) return undefined;
  if (row.state === 'recording') throw new ApiError(409, 'RECORDING_LIVE', 'the recording is still being made; ask again when the call has ended');
  if (!isReadable(row)) return undefined;
  const g = await deps.grants.issue(userId, recordingId, purpose, actor);
  return { url: `/v1/media/${g.token}`, expiresAt: iso(g.expiresAt) };
}

export async function recordingRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get(
    '/recordings',
    { config: { access: 'user' }, schema: { tags: ['recordings'], summary: 'the caller’s recordings, newest first', querystring: PageQuery, response: { 200: Page(Recording), 400: { $ref: 'ErrorBody#' }, ...errors } } },
    async (req) => {
      const { userId } = ownerOf(req);
      const q = req.query as Static<typeof PageQuery>;
      const limit = q.limit ?? 20;
      const after = decodeCursor(q.cursor);
      // The columns shown and no others: the wrapped key and KEK id are never read here.
      let query = deps.db
        .selectFrom('recordings')
        .select(['id', 'call_id', 'state', 'duration_ms', 'talk_ms', 'created_at', 'ended_at'])
        .where('user_id', '=', userId)
        // Shredded: the key goes first, then the state follows (shred.ts); either one hides it.
        .where('state', '!=', 'deleted')
        .where('wrapped_key', 'is not', null)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1);
      if (after) query = query.where((eb) => eb.or([eb('created_at', '<', after.at), eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)])]));
      const rows = await query.execute();
      const items = rows.slice(0, limit).map(
        (r): Recording => ({
          id: r.id,
          callId: r.call_id,
          state: r.state as Recording['state'],
          durationMs: Number(r.duration_ms),
          talkMs: Number(r.talk_ms),
          createdAt: iso(Number(r.created_at)),
          endedAt: isoOrNull(r.ended_at === null ? null : Number(r.ended_at)),
        }),
      );
      const tail = items[items.length - 1];
      return { items, nextCursor: rows.length > limit && tail ? encodeCursor({ at: Date.parse(tail.createdAt), id: tail.id }) : null };
    },
  );

  app.get(
    '/recordings/:recordingId',
    { config: { access: 'user' }, schema: { tags: ['recordings'], summary: 'one of the caller’s recordings', params: RecordingParams, response: { 200: Recording, ...errors } } },
    async (req) => {
      const { recordingId } = req.params as Static<typeof RecordingParams>;
      const row = await deps.catalog.getOwned(ownerOf(req).userId, recordingId);
      if (!row || isShredded(row)) throw notFound();
      return toRecording(row);
    },
  );

  app.post(
    '/recordings/:recordingId/grants',
    {
      config: { access: 'user', rateLimit: { max: deps.config.api.grantRateLimitPerMinute, timeWindow: 60_000 } },
      schema: {
        tags: ['recordings'],
        summary: 'a short-lived URL that serves this recording’s audio (Ogg Opus) without a token',
        params: RecordingParams,
        body: GrantBody,
        response: { 201: Grant, 400: { $ref: 'ErrorBody#' }, 409: { $ref: 'ErrorBody#' }, ...errors },
      },
    },
    async (req, reply) => {
      const { recordingId } = req.params as Static<typeof RecordingParams>;
      const { purpose } = req.body as Static<typeof GrantBody>;
      const grant = await issueMediaGrant(deps, ownerOf(req).userId, recordingId, purpose);
      if (!grant) throw notFound();
      return reply.code(201).send(grant);
    },
  );
}
