import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { adminEnabled } from '../../src/api/admin.js';
import { adminKeyChecker, generateAdminKey, hashAdminKey } from '../../src/api/admin-key.js';
import { newId } from '../../src/ids.js';
import { startApiRig, type ApiRig } from './fixture.js';
import { freeTcpPort } from '../helpers/ports.js';
import { signalClient } from '../helpers/signal-client.js';

/**
 * The admin API (issue 9 item 9): its own listener, off unless configured; one 401 for every way of not
 * holding the key; its routes exist only there; create user → token → /v1 works; revoke ends the token
 * and its live socket at once; lookup by the keyed phone hash; extra body fields refused; every action
 * audited in a chain that verifies; the key never reaches a log line.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEY = generateAdminKey();
const HASH = hashAdminKey(KEY);
/** Failed authentications allowed per address per minute in the rig (the 429 test counts on it). */
const AUTH_FAILURES = 50;

interface Raw {
  status: number;
  /** Raw header pairs in wire order, `date` left out. */
  headers: Array<[string, string]>;
  body: string;
  json<T = Record<string, unknown>>(): T;
  header(name: string): string | undefined;
}

/** One HTTP exchange on a fresh connection (so that `localAddress` picks the source address). */
function http(base: string, method: string, path: string, o: { key?: string; authorization?: string; body?: unknown; rawBody?: string; localAddress?: string } = {}): Promise<Raw> {
  const url = new URL(path.replace(/^\//, ''), base);
  const headers: Record<string, string> = {};
  if (o.key !== undefined) headers.authorization = `Bearer ${o.key}`;
  if (o.authorization !== undefined) headers.authorization = o.authorization;
  const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, ...(o.localAddress && { localAddress: o.localAddress }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: pairs.filter(([k]) => k !== 'date'),
          body,
          json: <T>() => JSON.parse(body) as T,
          header: (name) => pairs.find(([k]) => k === name)?.[1],
        });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Status, headers but date, and body: what must be byte-identical between two refusals. */
const wire = (r: Raw) => JSON.stringify([r.status, r.headers, r.body]);

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function logSink(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

describe('admin key', () => {
  it('hashes to the SHA-256 hex the config takes, and the checker accepts only that key', () => {
    assert.equal(HASH, createHash('sha256').update(KEY).digest('hex'));
    assert.match(KEY, /^mla_[A-Za-z0-9_-]{43}$/);
    const matches = adminKeyChecker(HASH.toUpperCase());
    assert.equal(matches(KEY), true);
    assert.equal(matches(KEY.slice(0, -1) + (KEY.endsWith('A') ? 'B' : 'A')), false);
    assert.equal(matches(undefined), false);
    assert.equal(matches(''), false);
    assert.throws(() => hashAdminKey('short'), { code: 'KEY_INVALID' });
    assert.throws(() => hashAdminKey('x'.repeat(20) + ' ' + 'y'.repeat(20)), { code: 'KEY_INVALID' });
    assert.throws(() => adminKeyChecker('abc'), { code: 'CONFIG_INVALID' });
  });

  it('is refused by config unless it is a 64-hex-digit hash', () => {
    assert.throws(() => loadConfig({ env: {}, overrides: { admin: { keyHash: 'not-a-hash' } } }), { code: 'CONFIG_INVALID', message: /admin\.keyHash/ });
    assert.equal(loadConfig({ env: {}, overrides: { admin: { keyHash: HASH } } }).admin.keyHash, HASH);
  });

  it('never reaches a log line, even inside a message', () => {
    const { lines, stream } = logSink();
    createLogger('debug', stream).warn({ note: `key ${KEY}` }, `presented ${KEY}`);
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(KEY.slice(4)), lines[0]);
    assert.match(lines[0]!, /mla_\[redacted\]/);
  });

  it('CLI admin hash-key: stdin key → its hash; --generate → a key and its hash; a weak key refused', async () => {
    const run = (args: string[], stdin: string) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'admin', 'hash-key', ...args], { cwd: ROOT, env: { ...process.env, MONOLOGUE_CONFIG: '' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(stdin);
      return new Promise<{ status: number | null; stdout: string; stderr: string }>((r) => child.on('close', (status) => r({ status, stdout, stderr })));
    };
    const [piped, generated, weak] = await Promise.all([run([], `${KEY}\n`), run(['--generate'], ''), run([], 'password\n')]);
    assert.equal(piped.status, 0, piped.stderr);
    assert.deepEqual(JSON.parse(piped.stdout), { hash: HASH });
    assert.equal(generated.status, 0, generated.stderr);
    const g = JSON.parse(generated.stdout) as { key: string; hash: string };
    assert.match(g.key, /^mla_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(g.key, KEY);
    assert.equal(g.hash, createHash('sha256').update(g.key).digest('hex'));
    assert.equal(weak.status, 1);
    assert.equal((JSON.parse(weak.stderr) as { code: string }).code, 'KEY_INVALID');
  });
});

describe('admin API off', () => {
  it('is on only with both a port and a key hash; the defaults leave it off', () => {
    const defaults = loadConfig({ env: {} }).admin;
    assert.equal(adminEnabled(defaults), false);
    assert.equal(adminEnabled({ ...defaults, port: 9999 }), false);
    assert.equal(adminEnabled({ ...defaults, keyHash: HASH }), false);
    assert.equal(adminEnabled({ ...defaults, port: 9999, keyHash: HASH }), true);
  });

  it('with a port but no key hash, nothing listens on that port', async () => {
    const port = await freeTcpPort();
    const { lines, stream } = logSink();
    const rig = await startApiRig({ overrides: { admin: { port, keyHash: '' } }, logDestination: stream });
    try {
      assert.equal(rig.service.adminUrl, undefined);
      assert.equal(await refused(port), true);
      assert.ok(lines.some((l) => l.includes('"ADMIN_OFF"')), 'the operator is told why it is off');
    } finally {
      await rig.close();
    }
  });
});

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`admin API on (${database})`, () => {
    let rig: ApiRig;
    let admin: string;
    const logs = logSink();
    let n = 0;
    const phone = () => `+1555${database === 'sqlite' ? 3 : 4}${String(100000 + n++).padStart(6, '0')}`;
    const call = (method: string, path: string, o: Parameters<typeof http>[3] = {}) => http(admin, method, path, { key: KEY, ...o });
    const createUser = async (body: Record<string, unknown>) => {
      const r = await call('POST', '/admin/v1/users', { body });
      assert.equal(r.status, 201, r.body);
      return r.json<{ id: string; enrolled: boolean; consent: { version: string; at: string } | null; createdAt: string }>();
    };
    const issue = async (userId: string, body: Record<string, unknown> = {}) => {
      const r = await call('POST', `/admin/v1/users/${userId}/tokens`, { body });
      assert.equal(r.status, 201, r.body);
      return r.json<{ token: string; sessionId: string; expiresAt: string }>();
    };
    const sessionsOf = async (userId: string) => (await rig.service.db.db.selectFrom('sessions').select('id').where('user_id', '=', userId).execute()).length;

    before(async () => {
      const port = await freeTcpPort();
      rig = await startApiRig({
        database,
        // trace: every line the service can write is searched for the key. A long token check interval:
        // only the immediate path can close a revoked session's socket within the test.
        overrides: { admin: { port, keyHash: HASH }, api: { authFailuresPerMinute: AUTH_FAILURES }, accounts: { tokenCheckIntervalMs: 60_000 }, log: { level: 'trace' } },
        logDestination: logs.stream,
      });
      assert.equal(rig.service.adminUrl, `http://127.0.0.1:${port}/`);
      admin = rig.service.adminUrl;
    });
    after(() => rig?.close());

    /** Every admin route, read from the admin OpenAPI document, with well-formed ids in its path. */
    const adminRoutes = async () => {
      const doc = (await http(admin, 'GET', '/admin/openapi.json')).json<{ paths: Record<string, Record<string, unknown>> }>();
      const out: Array<{ method: string; path: string }> = [];
      for (const [path, methods] of Object.entries(doc.paths)) {
        // Authentication runs before the params are read: any well-formed id does.
        const filled = path.replace(/\{(\w+)\}/g, (_m, name: string) => (name === 'userId' ? newId('usr') : name === 'sessionId' ? newId('ses') : `${name.replace(/Id$/, '').slice(0, 3)}_${randomBytes(16).toString('base64url')}`));
        for (const method of Object.keys(methods)) out.push({ method: method.toUpperCase(), path: filled });
      }
      return out;
    };

    it('documents its own routes at /admin/openapi.json, and only them', async () => {
      const doc = (await http(admin, 'GET', '/admin/openapi.json')).json<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>();
      for (const p of ['/admin/v1/users', '/admin/v1/users/{userId}/tokens', '/admin/v1/sessions/{sessionId}', '/admin/v1/users/lookup']) assert.ok(doc.paths[p], `${p} documented`);
      assert.ok(Object.keys(doc.paths).every((p) => p.startsWith('/admin/v1/')), Object.keys(doc.paths).join(' '));
      for (const [p, methods] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(methods)) assert.ok(op.responses['401'], `${m} ${p} documents its 401`);
      const main = (await http(rig.url, 'GET', '/openapi.json')).json<{ paths: Record<string, unknown> }>();
      assert.ok(!Object.keys(main.paths).some((p) => p.startsWith('/admin')), 'the main document lists no admin route');
    });

    it('every route without the key or with a wrong one answers the same 401', async () => {
      const routes = await adminRoutes();
      assert.ok(routes.length >= 4);
      const user = await rig.service.addUser(phone());
      const flipped = KEY.slice(0, -1) + (KEY.endsWith('A') ? 'B' : 'A');
      const variants: Array<{ key?: string; authorization?: string }> = [{}, { key: flipped }, { key: generateAdminKey() }, { authorization: `Basic ${KEY}` }, { key: user.token }];
      assert.ok(routes.length * variants.length < AUTH_FAILURES, 'stays under the failure limit');
      const seen = new Set<string>();
      for (const r of routes) {
        for (const v of variants) {
          const res = await http(admin, r.method, r.path, { ...v, localAddress: '127.0.0.4', ...(r.method === 'POST' && { body: { phone: phone() } }) });
          assert.equal(res.status, 401, `${r.method} ${r.path} ${JSON.stringify(v)}: ${res.body}`);
          seen.add(wire(res));
        }
      }
      assert.equal(seen.size, 1, [...seen].join('\n'));
      assert.deepEqual(JSON.parse(JSON.parse([...seen][0]!)[2] as string), { code: 'UNAUTHENTICATED', message: 'send the admin key: Authorization: Bearer <admin key>' });
    });

    it('counts failed authentications per address: past the limit 429 with Retry-After, other addresses and the right key unaffected', async () => {
      for (let i = 0; i < AUTH_FAILURES; i++) {
        const r = await http(admin, 'POST', '/admin/v1/users/lookup', { key: 'wrong'.repeat(8), body: { phone: '+15550000000' }, localAddress: '127.0.0.2' });
        assert.equal(r.status, 401, `attempt ${i + 1}`);
      }
      const limited = await http(admin, 'POST', '/admin/v1/users/lookup', { key: 'wrong'.repeat(8), body: { phone: '+15550000000' }, localAddress: '127.0.0.2' });
      assert.equal(limited.status, 429);
      assert.equal(limited.json().code, 'RATE_LIMITED');
      assert.match(limited.header('retry-after') ?? '', /^\d+$/);
      const other = await http(admin, 'POST', '/admin/v1/users/lookup', { key: 'wrong'.repeat(8), body: { phone: '+15550000000' }, localAddress: '127.0.0.3' });
      assert.equal(other.status, 401);
      const right = await http(admin, 'POST', '/admin/v1/users/lookup', { key: KEY, body: { phone: '+15550000000' }, localAddress: '127.0.0.2' });
      assert.equal(right.status, 404, 'the admin itself is not locked out by someone guessing from its address');
    });

    it('admin routes do not exist on the main listener, nor /v1 on the admin listener', async () => {
      const user = await rig.service.addUser(phone());
      for (const r of await adminRoutes()) {
        const res = await http(rig.url, r.method, r.path, { key: KEY, ...(r.method === 'POST' && { body: { phone: phone() } }) });
        assert.equal(res.status, 404, `${r.method} ${r.path} on the main listener`);
      }
      assert.equal((await http(rig.url, 'GET', '/admin/openapi.json')).status, 404);
      assert.equal((await rig.request('GET', '/v1/me', { token: user.token })).status, 200, 'the token itself works on the main listener');
      for (const path of ['/v1/me', '/v1/calls', '/openapi.json', '/docs', '/', '/healthz']) {
        const res = await http(admin, 'GET', path, { authorization: `Bearer ${user.token}` });
        assert.equal(res.status, 404, `${path} on the admin listener`);
        const withKey = await http(admin, 'GET', path, { key: KEY });
        assert.equal(withKey.status, 404, `${path} on the admin listener with the admin key`);
      }
    });

    it('create a user, issue a token: the token works on GET /v1/me', async () => {
      const number = phone();
      const before = Date.now();
      const created = await createUser({ phone: number, enrolled: true, consentVersion: 'v3' });
      assert.match(created.id, /^usr_/);
      assert.equal(created.enrolled, true);
      assert.equal(created.consent?.version, 'v3');
      assert.ok(Date.parse(created.createdAt) >= before - 1000);
      const plain = await createUser({ phone: phone() });
      assert.equal(plain.enrolled, false);
      assert.equal(plain.consent, null);

      const res = await call('POST', `/admin/v1/users/${created.id}/tokens`, { body: { ttlHours: 2 } });
      assert.equal(res.status, 201, res.body);
      assert.equal(res.header('cache-control'), 'no-store');
      const t = res.json<{ token: string; sessionId: string; expiresAt: string }>();
      assert.deepEqual(Object.keys(t).sort(), ['expiresAt', 'sessionId', 'token']);
      assert.match(t.token, /^mlt_/);
      assert.match(t.sessionId, /^ses_/);
      assert.ok(Math.abs(Date.parse(t.expiresAt) - (Date.now() + 2 * 3_600_000)) < 60_000, t.expiresAt);
      const me = await rig.request('GET', '/v1/me', { token: t.token });
      assert.equal(me.status, 200);
      const body = (await me.json()) as { id: string; phone: string; enrolled: boolean; consent: { version: string } | null };
      assert.equal(body.id, created.id);
      assert.equal(body.phone, number);
      assert.equal(body.enrolled, true);
      assert.equal(body.consent?.version, 'v3');

      // The configured default lifetime when none is asked for, with an empty body or none at all.
      const d = await issue(created.id);
      const none = await call('POST', `/admin/v1/users/${created.id}/tokens`);
      assert.equal(none.status, 201, none.body);
      const text = await http(admin, 'POST', `/admin/v1/users/${created.id}/tokens`, { key: KEY, rawBody: 'ttlHours=2' });
      assert.equal(text.status, 400, 'a body that is there is validated');
      assert.ok(Math.abs(Date.parse(d.expiresAt) - (Date.now() + rig.service.config.accounts.tokenTtlHours * 3_600_000)) < 60_000);
    });

    it('refuses an invalid or taken number, and unknown, malformed or deleted users, with stable codes', async () => {
      const bad = await call('POST', '/admin/v1/users', { body: { phone: '555-1234' } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json().code, 'PHONE_INVALID');
      assert.ok(!bad.body.includes('1234'), 'the message does not quote the number');
      const number = phone();
      const first = await createUser({ phone: number });
      const again = await call('POST', '/admin/v1/users', { body: { phone: number.replace(/^(\+1)(\d{3})/, '$1 ($2) ') } });
      assert.equal(again.status, 409);
      assert.equal(again.json().code, 'PHONE_TAKEN');

      const unknown = await call('POST', `/admin/v1/users/${newId('usr')}/tokens`, { body: {} });
      const malformed = await call('POST', '/admin/v1/users/not-an-id/tokens', { body: {} });
      const foreignPrefix = await call('POST', `/admin/v1/users/${newId('ses')}/tokens`, { body: {} });
      await rig.service.db.db.updateTable('users').set({ deleted_at: Date.now() }).where('id', '=', first.id).execute();
      const deleted = await call('POST', `/admin/v1/users/${first.id}/tokens`, { body: {} });
      for (const r of [unknown, malformed, foreignPrefix, deleted]) {
        assert.equal(r.status, 404, r.body);
        assert.deepEqual(r.json(), { code: 'NOT_FOUND', message: 'no such resource' });
      }
      assert.equal(await sessionsOf(first.id), 0);
      const ttl = await call('POST', `/admin/v1/users/${(await createUser({ phone: phone() })).id}/tokens`, { body: { ttlHours: 0 } });
      assert.equal(ttl.status, 400);
      assert.equal(ttl.json().code, 'BAD_REQUEST');
    });

    it('of concurrent creates of one number exactly one succeeds; the rest are PHONE_TAKEN', async () => {
      const number = phone();
      const results = await Promise.all(Array.from({ length: 8 }, () => call('POST', '/admin/v1/users', { body: { phone: number } })));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409, 409, 409], results.map((r) => r.body).join('\n'));
      for (const r of results.filter((x) => x.status === 409)) assert.equal(r.json().code, 'PHONE_TAKEN');
    });

    it('revoking a session: 204, its token gets 401 on /v1 and its live socket closes at once', async () => {
      const u = await createUser({ phone: phone(), enrolled: true });
      const t = await issue(u.id);
      const other = await issue(u.id);
      const ws = await signalClient(rig.service.httpPort);
      await ws.auth(t.token);
      const revokedAt = Date.now();
      const res = await call('DELETE', `/admin/v1/sessions/${t.sessionId}`);
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      const closed = await Promise.race([ws.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000).unref())]);
      assert.ok(closed, 'the socket closed (the interval check is 60 s away: only the immediate path can do it)');
      assert.equal(closed.code, 4001);
      assert.ok(closed.at - revokedAt < 5000);
      assert.equal((await rig.request('GET', '/v1/me', { token: t.token })).status, 401);
      assert.equal((await rig.request('GET', '/v1/me', { token: other.token })).status, 200, 'the user’s other session holds');
      const again = await call('DELETE', `/admin/v1/sessions/${t.sessionId}`);
      assert.equal(again.status, 204, 'revoking twice is not an error');
      for (const path of [`/admin/v1/sessions/${newId('ses')}`, '/admin/v1/sessions/nope', `/admin/v1/sessions/${u.id}`]) {
        const r = await call('DELETE', path);
        assert.equal(r.status, 404, path);
        assert.deepEqual(r.json(), { code: 'NOT_FOUND', message: 'no such resource' });
      }
    });

    it('lookup by phone finds the id; an unknown or deleted number is 404', async () => {
      const number = phone();
      const u = await createUser({ phone: number });
      const found = await call('POST', '/admin/v1/users/lookup', { body: { phone: number.replace(/^(\+1)(\d{3})(\d{3})/, '$1 $2-$3-') } });
      assert.equal(found.status, 200, found.body);
      assert.deepEqual(found.json(), { id: u.id });
      const unknown = await call('POST', '/admin/v1/users/lookup', { body: { phone: phone() } });
      assert.equal(unknown.status, 404);
      assert.deepEqual(unknown.json(), { code: 'NOT_FOUND', message: 'no such resource' });
      await rig.service.db.db.updateTable('users').set({ deleted_at: Date.now() }).where('id', '=', u.id).execute();
      const deleted = await call('POST', '/admin/v1/users/lookup', { body: { phone: number } });
      assert.equal(wire(deleted), wire(unknown), 'a deleted user is found no more than one who never existed');
      const bad = await call('POST', '/admin/v1/users/lookup', { body: { phone: 'abc' } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json().code, 'PHONE_INVALID');
    });

    it('bodies with fields a route does not take are 400 and create nothing', async () => {
      const number = phone();
      for (const body of [
        { phone: number, userId: newId('usr') },
        { phone: number, state: 'active' },
        { phone: number, id: newId('usr') },
        { phone: number, enrolled: 'true' },
        { phone: number, consentVersion: 3 },
        {},
      ]) {
        const r = await call('POST', '/admin/v1/users', { body });
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.json().code, 'BAD_REQUEST');
      }
      const malformedJson = await call('POST', '/admin/v1/users', { rawBody: '{"phone":' });
      assert.equal(malformedJson.status, 400);
      assert.equal((await call('POST', '/admin/v1/users/lookup', { body: { phone: number } })).status, 404, 'no user was created');

      const u = await createUser({ phone: number });
      for (const body of [{ enrolled: true }, { userId: newId('usr') }, { state: 'revoked' }, { ttlHours: '2' }, { ttlHours: 1.5 }]) {
        const r = await call('POST', `/admin/v1/users/${u.id}/tokens`, { body });
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.json().code, 'BAD_REQUEST');
      }
      assert.equal(await sessionsOf(u.id), 0, 'no session was issued');
      for (const body of [{ phone: number, enrolled: true }, { phone: number, userId: u.id }]) {
        const r = await call('POST', '/admin/v1/users/lookup', { body });
        assert.equal(r.status, 400, JSON.stringify(body));
      }
      const row = await rig.service.db.db.selectFrom('users').select(['enrolled']).where('id', '=', u.id).executeTakeFirstOrThrow();
      assert.equal(row.enrolled, 0, 'nothing changed the user');
    });

    it('every admin action left its audit entry, without the phone number, and the chain verifies', async () => {
      const number = phone();
      const since = Number((await rig.service.db.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst())?.seq ?? 0);
      const u = await createUser({ phone: number, enrolled: true, consentVersion: 'v1' });
      const t = await issue(u.id);
      assert.equal((await call('DELETE', `/admin/v1/sessions/${t.sessionId}`)).status, 204);
      assert.equal((await call('POST', '/admin/v1/users/lookup', { body: { phone: number } })).status, 200);
      assert.equal((await call('POST', '/admin/v1/users/lookup', { body: { phone: phone() } })).status, 404);
      const entries = await rig.service.db.db.selectFrom('audit_log').selectAll().where('seq', '>', since).orderBy('seq').execute();
      assert.deepEqual(
        entries.map((e) => [e.actor, e.action, e.user_id]),
        [
          ['admin', 'admin.user-create', u.id],
          ['admin', 'admin.token-issue', u.id],
          ['admin', 'admin.token-revoke', u.id],
          ['admin', 'admin.user-lookup', u.id],
          ['admin', 'admin.user-lookup', null],
        ],
      );
      const digits = number.slice(-7);
      for (const e of entries) {
        assert.ok(!(e.detail ?? '').includes(digits), e.detail ?? '');
        assert.ok(!(e.detail ?? '').includes(t.token), 'no token in the audit detail');
      }
      assert.match(entries[1]!.detail ?? '', new RegExp(t.sessionId));
      // Refused requests (401, 400) changed nothing and left no entry: every admin entry here is ours.
      const verdict = await rig.service.audit.verify();
      assert.equal(verdict.ok, true, JSON.stringify(verdict));
      const adminEntries = await rig.service.db.db.selectFrom('audit_log').select('action').where('actor', '=', 'admin').execute();
      assert.ok(adminEntries.length >= 5);
    });

    it('the admin key is in no log line, though requests were logged', () => {
      assert.ok(logs.lines.some((l) => l.includes('"mod":"admin-http"') && l.includes('incoming request')), 'the admin listener’s requests were logged at this level');
      const leaks = logs.lines.filter((l) => l.includes(KEY) || l.includes(KEY.slice(4)));
      assert.deepEqual(leaks, []);
      assert.ok(!logs.lines.some((l) => l.includes(HASH)), 'nor its hash');
    });
  });
}
