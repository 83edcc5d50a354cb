import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { auditAbout, collectUserData } from '../accounts/data-export.js';
import { createCallHistory } from '../calls/history.js';
import { ownerOf } from './auth.js';
import { notFound, errorResponses } from './replies.js';
import { iso, isoOrNull, NullableTimestamp, Timestamp } from './schemas.js';
import { Me, meBody } from './me.js';
import { CallItem, callItem } from './calls.js';

const Str = Type.String();
const NullableStr = Type.Union([Type.String(), Type.Null()]);
const Int = Type.Integer();
const obj = <P extends Parameters<typeof Type.Object>[0]>(p: P) => Type.Object(p, { additionalProperties: false });

const ExportRecording = obj({
  id: Str,
  callId: Str,
  state: Type.Union(['recording', 'complete', 'incomplete', 'failed', 'deleted'].map((s) => Type.Literal(s))),
  chunkCount: Int,
  durationMs: Int,
  talkMs: Int,
  createdAt: Timestamp,
  endedAt: NullableTimestamp,
  deletedAt: NullableTimestamp,
  /** A fresh `download` grant for a readable recording: fetch `url` (relative to the API's origin) before `expiresAt`. */
  download: Type.Union([obj({ url: Str, expiresAt: Timestamp }), Type.Null()]),
});

export const ExportDocument = obj({
  format: Type.Literal('monologue-export/1'),
  exportedAt: Timestamp,
  profile: Me,
  consentHistory: Type.Array(obj({ id: Str, version: NullableStr, at: Timestamp })),
  sessions: Type.Array(obj({ id: Str, createdAt: Timestamp, expiresAt: Timestamp, revokedAt: NullableTimestamp })),
  calls: Type.Array(CallItem),
  recordings: Type.Array(ExportRecording),
  ledger: Type.Array(obj({ id: Str, callId: NullableStr, type: Str, state: Str, amountMicros: Int, memo: NullableStr, createdAt: Timestamp })),
  settlements: Type.Array(
    obj({
      callId: Str,
      day: Str,
      billableSeconds: Int,
      talkSeconds: Int,
      rateMicrosPerMinute: Int,
      amountMicros: Int,
      state: Str,
      flags: Type.Array(Str),
      createdAt: Timestamp,
      reviewedAt: NullableTimestamp,
      reviewer: NullableStr,
    }),
  ),
  audit: Type.Array(obj({ seq: Int, at: Timestamp, actor: Str, action: Str, recordingId: NullableStr, detail: NullableStr })),
});
export type ExportDocument = Static<typeof ExportDocument>;

/** A subject-access export is heavy (every row of the user, a grant per recording): a few a minute is plenty. */
const EXPORTS_PER_MINUTE = 5;

const errors = errorResponses(401, 404, 429);

/** GET /v1/me/export: one JSON document of everything held about the caller. */
export async function exportRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const history = createCallHistory(deps.db, deps.vault);

  app.get(
    '/me/export',
    {
      config: { access: 'user', rateLimit: { max: EXPORTS_PER_MINUTE, timeWindow: 60_000 } },
      schema: {
        tags: ['me'],
        summary: 'everything held about the caller, as one JSON document',
        description: `Profile, consent history, sessions, calls, recordings (each readable one with a fresh download grant URL), ledger, settlements and the audit events about the caller's data. Audited (user.export); at most ${EXPORTS_PER_MINUTE} a minute.`,
        response: { 200: ExportDocument, ...errors },
      },
    },
    async (req, reply): Promise<ExportDocument> => {
      const { userId } = ownerOf(req);
      const user = await deps.users.byId(userId);
      if (!user) throw notFound();
      const exportedAt = deps.now();
      // Audited before anything is read: no export leaves without its entry (which it then contains).
      await deps.audit.append({ actor: `user:${userId}`, action: 'user.export', userId });
      const [data, calls] = await Promise.all([collectUserData(deps, userId), history.all(userId)]);

      const recordings: ExportDocument['recordings'] = [];
      for (const r of data.recordings) {
        // No key-encryption key: the audio cannot be served, so no URL that would not work.
        const grant = r.readable && deps.keyring ? await deps.grants.issue(userId, r.id, 'download') : undefined;
        recordings.push({
          id: r.id,
          callId: r.callId,
          state: r.state,
          chunkCount: r.chunkCount,
          durationMs: r.durationMs,
          talkMs: r.talkMs,
          createdAt: iso(r.createdAt),
          endedAt: isoOrNull(r.endedAt),
          deletedAt: isoOrNull(r.deletedAt),
          download: grant ? { url: `/v1/media/${grant.token}`, expiresAt: iso(grant.expiresAt) } : null,
        });
      }
      // Read last, so the grants just issued are in it too.
      const audit = await auditAbout(deps.audit, userId);

      void reply
        .header('content-disposition', `attachment; filename="monologue-export-${iso(exportedAt).slice(0, 10)}.json"`)
        .header('cache-control', 'no-store');
      return {
        format: 'monologue-export/1',
        exportedAt: iso(exportedAt),
        profile: meBody(user),
        consentHistory: data.consent.map((c) => ({ id: c.id, version: c.version, at: iso(c.at) })),
        sessions: data.sessions.map((s) => ({ id: s.id, createdAt: iso(s.createdAt), expiresAt: iso(s.expiresAt), revokedAt: isoOrNull(s.revokedAt) })),
        calls: calls.map(callItem),
        recordings,
        ledger: data.ledger.map((e) => ({ id: e.id, callId: e.callId, type: e.type, state: e.state, amountMicros: e.amountMicros, memo: e.memo, createdAt: iso(e.createdAt) })),
        settlements: data.settlements.map((s) => ({ ...s, createdAt: iso(s.createdAt), reviewedAt: isoOrNull(s.reviewedAt) })),
        audit: audit.map((a) => ({ seq: a.seq, at: iso(a.at), actor: a.actor, action: a.action, recordingId: a.recordingId, detail: a.detail })),
      };
    },
  );
}
