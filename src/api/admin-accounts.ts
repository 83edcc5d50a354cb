import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { MonologueError } from '../errors.js';
import { normaliseE164 } from '../phone-number.js';
import { ApiError, notFound } from './replies.js';
import { IdParam, iso, Timestamp } from './schemas.js';

/**
 * What the app backend does for its users: create them, give their dialer a token, end a session, find
 * a user by phone number. Each action is one audit entry (actor `admin`, about the user concerned);
 * phone numbers appear in neither the audit detail nor a URL (lookup is a POST for that reason).
 */

const Phone = Type.String({ minLength: 1, maxLength: 32, description: 'E.164, e.g. +15550001111 (spaces, dashes, dots and brackets are ignored)' });

const CreateUserBody = Type.Object(
  {
    phone: Phone,
    enrolled: Type.Optional(Type.Boolean({ description: 'recorded and paid; default false' })),
    consentVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the consent text version the user accepted in the app' })),
  },
  { additionalProperties: false },
);
const CreatedUser = Type.Object(
  {
    id: Type.String(),
    enrolled: Type.Boolean(),
    consent: Type.Union([Type.Object({ version: Type.String(), at: Timestamp }, { additionalProperties: false }), Type.Null()]),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

/** A year: a backend that wants longer-lived sessions should issue new tokens instead. */
const MAX_TTL_HOURS = 8760;
const IssueTokenBody = Type.Object(
  { ttlHours: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TTL_HOURS, description: 'default accounts.tokenTtlHours' })) },
  { additionalProperties: false },
);
const IssuedToken = Type.Object(
  {
    token: Type.String({ description: 'shown once; only its hash is stored' }),
    sessionId: Type.String(),
    expiresAt: Timestamp,
  },
  { additionalProperties: false },
);

const LookupBody = Type.Object({ phone: Phone }, { additionalProperties: false });
const FoundUser = Type.Object({ id: Type.String() }, { additionalProperties: false });

const UserParam = IdParam('userId', 'usr');
const SessionParam = IdParam('sessionId', 'ses');

const err = { $ref: 'ErrorBody#' };
const always = { 401: err, 429: err };
const ACTOR = 'admin';

export async function adminAccountRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db;
  /** A user who has not deleted their account: the only kind the admin API acts on or finds. */
  const liveUser = (id: string) => db.selectFrom('users').select('id').where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();

  app.post<{ Body: Static<typeof CreateUserBody> }>(
    '/users',
    {
      config: { access: 'admin' },
      schema: { tags: ['users'], summary: 'create a user', body: CreateUserBody, response: { 201: CreatedUser, 400: err, 409: err, ...always } },
    },
    async (req, reply) => {
      const e164 = normaliseE164(req.body.phone);
      // The users module's own message quotes the number; this one does not, as nothing here may.
      if (!e164) throw phoneInvalid();
      const enrolled = req.body.enrolled ?? false;
      let user;
      try {
        user = await deps.users.create({ phone: e164, enrolled, ...(req.body.consentVersion !== undefined && { consentVersion: req.body.consentVersion }) });
      } catch (e) {
        if (e instanceof MonologueError && e.code === 'PHONE_TAKEN') throw phoneTaken();
        // Two creates of one number at once: the loser trips the unique index on phone_hash.
        const taken = await db.selectFrom('users').select('id').where('phone_hash', '=', deps.vault.hash(e164)).executeTakeFirst();
        if (taken) throw phoneTaken();
        throw e;
      }
      await deps.audit.append({ actor: ACTOR, action: 'admin.user-create', userId: user.id, detail: `enrolled ${user.enrolled}, consent ${user.consent?.version ?? 'none'}` });
      return reply.code(201).send({
        id: user.id,
        enrolled: user.enrolled,
        consent: user.consent ? { version: user.consent.version, at: iso(user.consent.at) } : null,
        createdAt: iso(user.createdAt),
      } satisfies Static<typeof CreatedUser>);
    },
  );

  app.post<{ Params: Static<typeof UserParam>; Body: Static<typeof IssueTokenBody> }>(
    '/users/:userId/tokens',
    {
      config: { access: 'admin' },
      schema: { tags: ['tokens'], summary: 'issue a dialer token (a new session) for a user; the body may be left out', params: UserParam, body: IssueTokenBody, response: { 201: IssuedToken, 400: err, 404: err, ...always } },
    },
    async (req, reply) => {
      const { userId } = req.params;
      if (!(await liveUser(userId))) throw notFound();
      const hours = req.body.ttlHours ?? deps.config.accounts.tokenTtlHours;
      let issued;
      try {
        issued = await deps.tokens.issue(userId, hours * 3_600_000);
      } catch (e) {
        // Deleted between the check and the insert.
        if (e instanceof MonologueError && e.code === 'USER_NOT_FOUND') throw notFound();
        throw e;
      }
      await deps.audit.append({ actor: ACTOR, action: 'admin.token-issue', userId, detail: `session ${issued.sessionId}, ${hours} h` });
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ token: issued.token, sessionId: issued.sessionId, expiresAt: iso(issued.expiresAt) } satisfies Static<typeof IssuedToken>);
    },
  );

  app.delete<{ Params: Static<typeof SessionParam> }>(
    '/sessions/:sessionId',
    {
      config: { access: 'admin' },
      schema: { tags: ['tokens'], summary: 'revoke a session: its token stops working and its live sockets close now', params: SessionParam, response: { 204: Type.Null(), 404: err, ...always } },
    },
    async (req, reply) => {
      const { sessionId } = req.params;
      const session = await db.selectFrom('sessions').select(['user_id', 'revoked_at']).where('id', '=', sessionId).executeTakeFirst();
      if (!session) throw notFound();
      // Revoking again changes nothing and answers the same: the session is revoked either way.
      const revoked = await deps.tokens.revoke(sessionId);
      // Its sockets close now, not at the next token check (accounts.tokenCheckIntervalMs).
      deps.live.sessionsRevoked([sessionId]);
      await deps.audit.append({ actor: ACTOR, action: 'admin.token-revoke', userId: session.user_id, detail: `session ${sessionId}${revoked ? '' : ' (already revoked)'}` });
      return reply.code(204).send();
    },
  );

  app.post<{ Body: Static<typeof LookupBody> }>(
    '/users/lookup',
    {
      config: { access: 'admin' },
      schema: { tags: ['users'], summary: 'find a user by phone number (a POST: the number stays out of URLs and access logs)', body: LookupBody, response: { 200: FoundUser, 400: err, 404: err, ...always } },
    },
    async (req) => {
      const e164 = normaliseE164(req.body.phone);
      if (!e164) throw phoneInvalid();
      // The keyed hash, through its unique index: never a scan, never a decryption.
      const row = await db.selectFrom('users').select('id').where('phone_hash', '=', deps.vault.hash(e164)).where('deleted_at', 'is', null).executeTakeFirst();
      // A miss is audited too: who searched is worth knowing even when nobody was found.
      await deps.audit.append({ actor: ACTOR, action: 'admin.user-lookup', userId: row?.id ?? null, detail: row ? 'found' : 'no match' });
      if (!row) throw notFound();
      return { id: row.id } satisfies Static<typeof FoundUser>;
    },
  );
}

function phoneInvalid(): ApiError {
  return new ApiError(400, 'PHONE_INVALID', 'phone is not an E.164 number; write it as + then country code and number, e.g. +15550001111');
}

function phoneTaken(): ApiError {
  return new ApiError(409, 'PHONE_TAKEN', 'a user with this phone number already exists; find it with POST /admin/v1/users/lookup');
}
