import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createHttp } from '../../src/api/http.js';
import { ownerApi } from '../../src/api/owner-api.js';
import type { ApiDeps } from '../../src/api/deps.js';
import { ownerOf } from '../../src/api/auth.js';
import { ApiError, notFound } from '../../src/api/replies.js';
import { decodeCursor, encodeCursor, IdParam, iso, Page, PageQuery, Timestamp } from '../../src/api/schemas.js';
import { packageRoot } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { openKeyringOrNone } from '../../src/recordings/storage-setup.js';
import type { ApiRig } from './fixture.js';
import type { Target } from './bola-checks.js';
import type { RouteCase } from './route-table.js';

/**
 * A throwaway server for the suites' self-tests: the real /v1 scope (auth hook, error handler, rate
 * limits, the real routes) plus routes written wrong on purpose (`/v1/leak/…`) and the same kinds
 * written right (`/v1/good/…`), over a rig's database. A check that passes on the leaky routes, or
 * fails on the good ones, is broken.
 */

/**
 * What a careless route looks like: each of these leaks in its own way. They are mounted inside the
 * real /v1 scope (same auth hook, error handler and rate limits) of a throwaway server.
 */
export async function leakyRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // No owner in the query: anyone's call by id.
  app.get<{ Params: { callId: string } }>('/leak/calls/:callId', { config: { access: 'user' } }, async (req) => {
    const row = await deps.db.selectFrom('calls').select(['id', 'user_id', 'direction']).where('id', '=', req.params.callId).executeTakeFirst();
    if (!row) throw notFound();
    return row;
  });
  // Owner checked after the fetch, and told apart: 403 for someone else's, 404 for none.
  app.get<{ Params: { recordingId: string } }>(
    '/leak/recordings/:recordingId',
    { config: { access: 'user' }, schema: { params: IdParam('recordingId', 'rec'), response: { 200: Type.Object({ id: Type.String() }, { additionalProperties: false }) } } },
    async (req) => {
      const row = await deps.catalog.get(req.params.recordingId);
      if (!row) throw notFound();
      if (row.userId !== ownerOf(req).userId) throw new ApiError(403, 'FORBIDDEN', 'not yours');
      return { id: row.id };
    },
  );
  // A list without the owner filter.
  app.get('/leak/calls', { config: { access: 'user' }, schema: { response: { 200: Page(Type.Object({ id: Type.String() }, { additionalProperties: false })) } } }, async () => {
    const rows = await deps.db.selectFrom('calls').select('id').orderBy('id').execute();
    return { items: rows, nextCursor: null };
  });
  // A response schema that lets extra fields through.
  app.get('/leak/me', { config: { access: 'user' }, schema: { response: { 200: Type.Object({ id: Type.String() }, { additionalProperties: true }) } } }, async (req) => {
    const user = await deps.db.selectFrom('users').select(['id', 'phone_hash']).where('id', '=', ownerOf(req).userId).executeTakeFirstOrThrow();
    return { id: user.id, phoneHash: user.phone_hash };
  });
  // Takes whatever the body holds: a lax schema, and the handler copies fields it should not.
  app.put<{ Body: { version: string; enrolled?: boolean } }>(
    '/leak/consent',
    { config: { access: 'user' }, schema: { body: Type.Object({ version: Type.String() }), response: { 200: Type.Object({ version: Type.String() }, { additionalProperties: false }) } } },
    async (req) => {
      await deps.db
        .updateTable('users')
        .set({ consent_version: req.body.version, ...(req.body.enrolled !== undefined && { enrolled: req.body.enrolled ? 1 : 0 }) })
        .where('id', '=', ownerOf(req).userId)
        .execute();
      return { version: req.body.version };
    },
  );
  // Declared public by mistake: no token needed.
  app.get<{ Params: { callId: string } }>('/leak/public-calls/:callId', { config: { access: 'public' }, schema: { params: IdParam('callId', 'call') } }, async (req) => {
    const row = await deps.db.selectFrom('calls').select('id').where('id', '=', req.params.callId).executeTakeFirst();
    if (!row) throw notFound();
    return row;
  });
}

const GoodCall = Type.Object({ id: Type.String(), direction: Type.String(), createdAt: Timestamp }, { additionalProperties: false });
const errors = { 401: { $ref: 'ErrorBody#' }, 404: { $ref: 'ErrorBody#' } };

/**
 * The same kind of routes done right (owner in the SQL, id schema, response schema, the one 404): the
 * suite must find nothing wrong with them, or it would be failing for its own sake.
 */
export async function goodRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // A /v1 route that takes no token (like media by grant): limited per source address.
  app.get('/good/ping', { config: { access: 'public' }, schema: { response: { 200: Type.Object({ ok: Type.Boolean() }, { additionalProperties: false }) } } }, async () => ({ ok: true }));
  app.get<{ Params: { callId: string } }>(
    '/good/calls/:callId',
    { config: { access: 'user' }, schema: { params: IdParam('callId', 'call'), response: { 200: GoodCall, ...errors } } },
    async (req) => {
      const row = await deps.db.selectFrom('calls').select(['id', 'direction', 'created_at']).where('id', '=', req.params.callId).where('user_id', '=', ownerOf(req).userId).executeTakeFirst();
      if (!row) throw notFound();
      return { id: row.id, direction: row.direction, createdAt: iso(row.created_at) };
    },
  );
  app.get<{ Querystring: Static<typeof PageQuery> }>(
    '/good/calls',
    { config: { access: 'user' }, schema: { querystring: PageQuery, response: { 200: Page(GoodCall), ...errors } } },
    async (req) => {
      const limit = req.query.limit ?? 20;
      const after = decodeCursor(req.query.cursor);
      let q = deps.db.selectFrom('calls').select(['id', 'direction', 'created_at']).where('user_id', '=', ownerOf(req).userId);
      if (after) q = q.where((eb) => eb.or([eb('created_at', '<', after.at), eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)])]));
      const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return { items: page.map((r) => ({ id: r.id, direction: r.direction, createdAt: iso(r.created_at) })), nextCursor: rows.length > limit && last ? encodeCursor({ at: last.created_at, id: last.id }) : null };
    },
  );
  app.get<{ Params: { recordingId: string } }>(
    '/good/recordings/:recordingId',
    { config: { access: 'user' }, schema: { params: IdParam('recordingId', 'rec'), response: { 200: Type.Object({ id: Type.String(), state: Type.String() }, { additionalProperties: false }), ...errors } } },
    async (req) => {
      const row = await deps.catalog.getOwned(ownerOf(req).userId, req.params.recordingId);
      if (!row) throw notFound();
      return { id: row.id, state: row.state };
    },
  );
  app.post<{ Params: { recordingId: string }; Body: { purpose: 'play' | 'download' } }>(
    '/good/recordings/:recordingId/grants',
    {
      config: { access: 'user' },
      schema: {
        params: IdParam('recordingId', 'rec'),
        body: Type.Object({ purpose: Type.Union([Type.Literal('play'), Type.Literal('download')]) }, { additionalProperties: false }),
        response: { 201: Type.Object({ expiresAt: Timestamp }, { additionalProperties: false }), ...errors },
      },
    },
    async (req, reply) => {
      const owner = ownerOf(req).userId;
      const row = await deps.catalog.getOwned(owner, req.params.recordingId);
      if (!row) throw notFound();
      const g = await deps.grants.issue(owner, row.id, req.body.purpose);
      return reply.code(201).send({ expiresAt: iso(g.expiresAt) });
    },
  );
}

export const GOOD_TABLE: RouteCase[] = [
  { url: '/v1/good/ping', methods: ['GET', 'HEAD'], access: 'public', kind: 'public' },
  { url: '/v1/good/calls/:callId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { callId: 'call' } },
  { url: '/v1/good/calls', methods: ['GET', 'HEAD'], access: 'user', kind: 'list', paged: true, expectIds: (u) => u.calls },
  { url: '/v1/good/recordings/:recordingId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { recordingId: 'recording' } },
  { url: '/v1/good/recordings/:recordingId/grants', methods: ['POST'], access: 'user', kind: 'object', params: { recordingId: 'recording' }, body: () => ({ purpose: 'play' }), mutates: true },
];

/** What a developer who added the leaky routes to the table (and nothing else) would have written. */
export const LEAKY_TABLE: RouteCase[] = [
  { url: '/v1/leak/calls/:callId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { callId: 'call' } },
  { url: '/v1/leak/recordings/:recordingId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { recordingId: 'recording' } },
  { url: '/v1/leak/calls', methods: ['GET', 'HEAD'], access: 'user', kind: 'list', paged: true },
  { url: '/v1/leak/me', methods: ['GET', 'HEAD'], access: 'user', kind: 'self' },
  { url: '/v1/leak/public-calls/:callId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { callId: 'call' } },
  { url: '/v1/leak/consent', methods: ['PUT'], access: 'user', kind: 'self', body: () => ({ version: 'v9' }), mutates: true },
];

/** The real owner API plus the leaky routes, on its own listener, over the rig's database. */
export async function startThrowawayServer(rig: ApiRig): Promise<{ target: Target; close: () => Promise<void> }> {
  const s = rig.service;
  const log = createLogger('warn');
  const root = packageRoot();
  const { app, routes } = await createHttp({ log, webSourceDir: join(root, 'src', 'web'), webBuildDir: join(root, 'dist', 'web'), ready: async () => ({}), bodyLimitBytes: 1 << 20 });
  const deps: ApiDeps = {
    config: s.config,
    log,
    db: s.db.db,
    users: s.users,
    tokens: s.tokens,
    vault: s.vault,
    catalog: s.catalog,
    objects: s.objects,
    spool: s.spool,
    keyring: openKeyringOrNone(s.config, log),
    ledger: s.ledger,
    audit: s.audit,
    grants: s.grants,
    live: { consentRevoked: () => undefined, sessionsRevoked: () => undefined },
    now: Date.now,
  };
  await app.register(
    async (scope) => {
      await ownerApi(scope, deps);
      await scope.register(async (leaky) => leakyRoutes(leaky, deps));
      await scope.register(async (good) => goodRoutes(good, deps));
    },
    { prefix: '/v1' },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return { target: { baseUrl: `http://127.0.0.1:${port}/`, routes, db: s.db.db, tokens: s.tokens }, close: () => app.close() };
}

