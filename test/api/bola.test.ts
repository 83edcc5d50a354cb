import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
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
import { startApiRig, type ApiRig } from './fixture.js';
import { BolaSuite, send, type Target } from './bola-checks.js';
import { idempotencyKey, NO_RATE_LIMITS, seedCast, targetOf } from './bola-rig.js';
import { ROUTE_TABLE, STRICT_ROUTE_TABLE, type RouteCase } from './route-table.js';

/**
 * The BOLA suite (issue 9): every route fastify registered is in the route table (route-table.ts), and
 * from the table, with a victim A and an attacker B who both have calls, recordings and ledger
 * entries, cases are generated: B on A's ids answers exactly what a random or malformed id answers and
 * changes nothing; every bad token gets the one 401; lists show only the caller's objects; every
 * success matches its strict response schema; A's media grant serves A's recording only.
 */

/** Runs one check as a subtest; it fails with the check's problems, listed. */
async function check(t: TestContext, suite: BolaSuite, name: string, fn: () => Promise<void> | void): Promise<void> {
  await t.test(name, async () => {
    const from = suite.problems.length;
    await fn();
    const found = suite.problems.slice(from);
    assert.deepEqual(found, [], `${found.length} problem(s):\n${found.join('\n')}`);
  });
}

async function runSuite(t: TestContext, database: 'sqlite' | 'postgres'): Promise<void> {
  const rig = await startApiRig({ database, overrides: NO_RATE_LIMITS });
  try {
    const cast = await seedCast(rig);
    const target = targetOf(rig);
    // Payouts for the payout list to show, when that route is there.
    if (rig.service.routes.some((r) => r.method === 'POST' && r.url === '/v1/payouts')) {
      for (const u of [cast.victim, cast.attacker]) {
        const res = await send(target, 'POST', '/v1/payouts', { token: u.token, body: { amountMicros: 5_000_000 }, headers: { 'idempotency-key': idempotencyKey() } });
        assert.ok(res.status >= 200 && res.status < 300, `setup payout: ${res.status} ${res.body.toString()}`);
      }
    }
    const suite = new BolaSuite(target, ROUTE_TABLE, cast.victim, cast.attacker, cast.scratch, cast.phones);
    await check(t, suite, 'every registered route is in the route table, with the access it declares', () => suite.checkCoverage());
    await check(t, suite, 'every user route: no, malformed, random, revoked and expired tokens get the same 401', () => suite.checkUnauthenticated());
    await check(t, suite, "every id-bearing route: another user's id = a random id = a malformed id (404, byte-identical), nothing changed", () => suite.checkForeignIds());
    await check(t, suite, "every list route: only the caller's objects, on every page and with another user's cursor", () => suite.checkLists());
    await check(t, suite, "media grants: the victim's grant serves only the victim's recording; unknown and malformed grants get one 404", () => suite.checkGrants());
    await check(t, suite, 'public routes show no user data', () => suite.checkPublic());
    await check(t, suite, 'every user route succeeds for its owner with a body matching its strict response schema', () => suite.checkOwnCalls());
    if (suite.pending.length) t.diagnostic(`route table rows not registered (yet): ${suite.pending.join(', ')}${STRICT_ROUTE_TABLE ? '' : ' — reported only: STRICT_ROUTE_TABLE is false'}`);
    t.diagnostic(`BOLA cases on ${database}: ${suite.tally.generated} generated from ${suite.ops.length} table rows, ${suite.tally.ran} run against the ${rig.service.routes.length} registered routes`);
  } finally {
    await rig.close();
  }
}

test('BOLA suite over every route, on SQLite', (t) => runSuite(t, 'sqlite'));
test('BOLA suite over every route, on PostgreSQL', (t) => runSuite(t, 'postgres'));

// ---- the suite catches a leaky route ------------------------------------------------------------

/**
 * What a careless route looks like: each of these leaks in its own way. They are mounted inside the
 * real /v1 scope (same auth hook, error handler and rate limits) of a throwaway server.
 */
async function leakyRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
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
async function goodRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
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

const GOOD_TABLE: RouteCase[] = [
  { url: '/v1/good/calls/:callId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { callId: 'call' } },
  { url: '/v1/good/calls', methods: ['GET', 'HEAD'], access: 'user', kind: 'list', paged: true, expectIds: (u) => u.calls },
  { url: '/v1/good/recordings/:recordingId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { recordingId: 'recording' } },
  { url: '/v1/good/recordings/:recordingId/grants', methods: ['POST'], access: 'user', kind: 'object', params: { recordingId: 'recording' }, body: () => ({ purpose: 'play' }), mutates: true },
];

/** What a developer who added the leaky routes to the table (and nothing else) would have written. */
const LEAKY_TABLE: RouteCase[] = [
  { url: '/v1/leak/calls/:callId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { callId: 'call' } },
  { url: '/v1/leak/recordings/:recordingId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { recordingId: 'recording' } },
  { url: '/v1/leak/calls', methods: ['GET', 'HEAD'], access: 'user', kind: 'list', paged: true },
  { url: '/v1/leak/me', methods: ['GET', 'HEAD'], access: 'user', kind: 'self' },
  { url: '/v1/leak/public-calls/:callId', methods: ['GET', 'HEAD'], access: 'user', kind: 'object', params: { callId: 'call' } },
];

/** The real owner API plus the leaky routes, on its own listener, over the rig's database. */
async function startLeakyServer(rig: ApiRig): Promise<{ target: Target; close: () => Promise<void> }> {
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

test('self-test: the suite fails on routes added without ownership', async (t) => {
  const rig = await startApiRig({ overrides: NO_RATE_LIMITS });
  const leaky = await startLeakyServer(rig);
  try {
    const cast = await seedCast(rig);

    await t.test('a route missing from the table fails the coverage check', () => {
      const suite = new BolaSuite(leaky.target, ROUTE_TABLE, cast.victim, cast.attacker, cast.scratch, cast.phones);
      suite.checkCoverage();
      for (const r of [...LEAKY_TABLE, ...GOOD_TABLE]) for (const m of r.methods) assert.ok(suite.problems.some((p) => p.startsWith(`${m} ${r.url} is registered but not in the BOLA route table`)), `${m} ${r.url} not caught: ${suite.problems.join('\n')}`);
    });

    await t.test('with the leaky routes in the table, each check catches its leak', async () => {
      const suite = new BolaSuite(leaky.target, [...ROUTE_TABLE, ...LEAKY_TABLE, ...GOOD_TABLE], cast.victim, cast.attacker, cast.scratch, cast.phones);
      suite.checkCoverage();
      const coverage = suite.problems.splice(0);
      assert.deepEqual(coverage, ['GET /v1/leak/public-calls/:callId declares access public but the route table says user', 'HEAD /v1/leak/public-calls/:callId declares access public but the route table says user']);

      // Only the leaky rows are attacked: the throwaway server is about them.
      const only = new BolaSuite(leaky.target, LEAKY_TABLE, cast.victim, cast.attacker, cast.scratch, cast.phones);
      await only.checkUnauthenticated();
      await only.checkForeignIds();
      await only.checkLists();
      await only.checkOwnCalls();
      const found = only.problems;
      const expect = (what: string, re: RegExp) => assert.ok(found.some((p) => re.test(p)), `${what} not caught; problems were:\n${found.join('\n')}`);
      expect('no owner filter', /^GET \/v1\/leak\/calls\/:callId with another user's id answered 200/);
      expect("another user's data in the body", /^GET \/v1\/leak\/calls\/:callId \(foreign id\) shows another user's data/);
      expect('no response schema', /^GET \/v1\/leak\/calls\/:callId \(own id\) answered 200 but declares no response schema/);
      expect('403 for foreign vs 404 for missing', /^GET \/v1\/leak\/recordings\/:recordingId: another user's id and a random id answer differently: status 403 vs 404/);
      expect('HEAD twin of the same', /^HEAD \/v1\/leak\/recordings\/:recordingId: another user's id and a random id answer differently: status 403 vs 404/);
      expect('list without owner', /^GET \/v1\/leak\/calls lists call_/);
      expect('extra property through a lax schema', /^GET \/v1\/leak\/me \(own call\) response does not match its strict schema: .*additionalProperty.*phoneHash/);
      expect('a public route that should need a token', /^GET \/v1\/leak\/public-calls\/:callId with no token: not the same 401 as every other: status 401 vs 200/);
      if (process.env.BOLA_SHOW) console.log(found.join('\n'));
      t.diagnostic(`self-test: ${found.length} problems found on ${LEAKY_TABLE.length} leaky routes`);
    });

    await t.test('the same kinds of routes done right pass every check', async () => {
      const good = new BolaSuite(leaky.target, GOOD_TABLE, cast.victim, cast.attacker, cast.scratch, cast.phones);
      await good.checkUnauthenticated();
      await good.checkForeignIds();
      await good.checkLists();
      await good.checkOwnCalls();
      assert.deepEqual(good.problems, []);
      assert.ok(good.tally.ran > 50, `only ${good.tally.ran} cases ran`);
    });
  } finally {
    await leaky.close();
    await rig.close();
  }
});
