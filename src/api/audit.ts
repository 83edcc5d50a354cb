import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import type { AuditEntry } from '../audit/audit-log.js';
import { ownerOf } from './auth.js';
import { badRequest, errorResponses } from './replies.js';
import { iso, Page, PageQuery, Timestamp } from './schemas.js';

/** One audit event about the caller's data, as the caller sees it. */
export const AuditEvent = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    at: Timestamp,
    /** `you`, `user` (some other user: never their id), `admin`, `operator:<login>` or `system:<job>`. */
    actor: Type.String(),
    action: Type.String(),
    recordingId: Type.Union([Type.String(), Type.Null()]),
    detail: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type AuditEvent = Static<typeof AuditEvent>;

const AuditPage = Page(AuditEvent);
type AuditPage = Static<typeof AuditPage>;

const errors = errorResponses(400, 401, 429);

/**
 * An entry as its data's owner sees it. Their own actions read `you`; another user's id is never shown
 * (an entry about your data made by someone else says `user`); operator, admin and system actors are
 * kept, since who read your recording is the point of the list. Export uses this too.
 */
export function auditEventFor(ownerId: string, e: AuditEntry): AuditEvent {
  const actor = e.actor === `user:${ownerId}` ? 'you' : e.actor.startsWith('user:') ? 'user' : e.actor;
  return { seq: e.seq, at: iso(e.at), actor, action: e.action, recordingId: e.recordingId, detail: e.detail };
}

// The cursor is the seq of the last event served, wrapped like the other cursors: opaque to clients.
const encodeSeqCursor = (seq: number) => Buffer.from(JSON.stringify(['audit', seq])).toString('base64url');

function decodeSeqCursor(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && v[0] === 'audit' && Number.isSafeInteger(v[1]) && (v[1] as number) > 0) return v[1] as number;
  } catch {
    // falls through to the error below
  }
  throw badRequest('BAD_CURSOR', 'cursor is not one this API gave out; start again without it');
}

/** `GET /v1/me/audit`: the audit events about the caller's own data, newest first. */
export async function auditRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get<{ Querystring: Static<typeof PageQuery> }>(
    '/me/audit',
    {
      config: { access: 'user' },
      schema: { tags: ['me'], summary: 'audit events about the caller’s data (recording reads, grants, deletes, exports, operator access), newest first', querystring: PageQuery, response: { 200: AuditPage, ...errors } },
    },
    async (req): Promise<AuditPage> => {
      const owner = ownerOf(req).userId;
      const limit = req.query.limit ?? 20;
      const beforeSeq = decodeSeqCursor(req.query.cursor);
      // One more than asked: whether there is a next page, without a count query.
      const rows = await deps.audit.forUser(owner, { limit: limit + 1, ...(beforeSeq !== undefined && { beforeSeq }) });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { items: page.map((e) => auditEventFor(owner, e)), nextCursor: rows.length > limit && last ? encodeSeqCursor(last.seq) : null };
    },
  );
}
