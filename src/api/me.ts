import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import type { User } from '../accounts/users.js';
import { changeConsent } from '../accounts/consent.js';
import { MonologueError } from '../errors.js';
import { ownerOf } from './auth.js';
import { ApiError, notFound, errorResponses } from './replies.js';
import { iso, Timestamp } from './schemas.js';

export const Me = Type.Object(
  {
    id: Type.String(),
    /** The owner's own number, shown only to them. */
    phone: Type.String(),
    enrolled: Type.Boolean(),
    consent: Type.Union([Type.Object({ version: Type.String(), at: Timestamp }, { additionalProperties: false }), Type.Null()]),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Me = Static<typeof Me>;

/** The version of the consent text the user accepts: short, printable, no spaces (it goes into logs and the audit). */
export const ConsentBody = Type.Object({ version: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7E]+$' }) }, { additionalProperties: false });
type ConsentBody = Static<typeof ConsentBody>;

const errors = errorResponses(401, 404, 429);

export function meBody(user: User): Me {
  return {
    id: user.id,
    phone: user.phone,
    enrolled: user.enrolled,
    consent: user.consent ? { version: user.consent.version, at: iso(user.consent.at) } : null,
    createdAt: iso(user.createdAt),
  };
}

/** The caller's own account, and their consent to being recorded. */
export async function meRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const me = async (userId: string): Promise<Me> => {
    const user = await deps.users.byId(userId);
    if (!user) throw notFound();
    return meBody(user);
  };

  /** Commit the change, audit it, then (a withdrawal) stop what records now. */
  const setConsent = async (userId: string, version: string | null): Promise<Me> => {
    let changed: boolean;
    try {
      changed = await changeConsent(deps.db, userId, version, deps.now());
    } catch (err) {
      if (err instanceof MonologueError && err.code === 'USER_NOT_FOUND') throw notFound();
      throw err;
    }
    if (changed) await deps.audit.append({ actor: `user:${userId}`, action: 'user.consent', userId, detail: version === null ? 'withdrawn' : `version ${version}` });
    // Even when nothing changed here: a withdrawal made from the CLI (another process) reaches the
    // recordings this process runs only now.
    if (version === null) await deps.live.consentRevoked(userId);
    return me(userId);
  };

  app.get('/me', { config: { access: 'user' }, schema: { tags: ['me'], summary: 'the caller’s account', response: { 200: Me, ...errors } } }, async (req): Promise<Me> => me(ownerOf(req).userId));

  app.put<{ Body: ConsentBody }>(
    '/me/consent',
    {
      config: { access: 'user' },
      schema: {
        tags: ['me'],
        summary: 'consent to recording under a version of the consent text',
        description: 'Records the consent and keeps it in the history (export). Only the current version (`GET /v1/consent/current`) is accepted: another answers 409 `CONSENT_VERSION_OUTDATED`. Repeating it changes nothing.',
        body: ConsentBody,
        response: { 200: Me, 400: { $ref: 'ErrorBody#' }, 409: { $ref: 'ErrorBody#' }, ...errors },
      },
    },
    async (req): Promise<Me> => {
      // Consent is to a text the user was shown: only the one in force (GET /v1/consent/current) can be accepted.
      const current = deps.config.recording.consent.version;
      if (req.body.version !== current) throw new ApiError(409, 'CONSENT_VERSION_OUTDATED', `version ${req.body.version} is not the current consent text; accept version ${current} (GET /v1/consent/current)`);
      return setConsent(ownerOf(req).userId, req.body.version);
    },
  );

  app.delete(
    '/me/consent',
    {
      config: { access: 'user' },
      schema: {
        tags: ['me'],
        summary: 'withdraw consent to recording',
        description: 'Every live recording of the caller stops before this answers (the dialer hears `recording.stopped`, reason `consent-revoked`); the calls go on unrecorded, and no new recording starts.',
        response: { 200: Me, ...errors },
      },
    },
    async (req): Promise<Me> => setConsent(ownerOf(req).userId, null),
  );
}
