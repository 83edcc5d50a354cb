import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startApiRig, type ApiRig } from './fixture.js';
import { startThrowawayServer } from './throwaway-server.js';

/**
 * Rate limits (issue 9 §10): per token, per address without one, and on failed authentications per
 * address; a refusal is 429 with Retry-After and {code: RATE_LIMITED}; other responses carry no counter
 * headers (they would make a 404 for a foreign id differ from one for a missing id).
 */

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request from a chosen loopback address (the limits are per source address). */
function from(localAddress: string, rig: Pick<ApiRig, 'url'>, method: string, path: string, token?: string): Promise<Reply> {
  const url = new URL(path.replace(/^\//, ''), rig.url);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, localAddress, headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const COUNTERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after'];

function assertNoCounters(r: Reply, what: string): void {
  for (const h of COUNTERS) assert.equal(r.headers[h], undefined, `${what} carries ${h}`);
}

function assertRateLimited(r: Reply, what: string): void {
  assert.equal(r.status, 429, `${what}: ${r.status} ${r.body}`);
  const retry = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 60, `${what}: Retry-After ${String(r.headers['retry-after'])}`);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'RATE_LIMITED');
  for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining']) assert.equal(r.headers[h], undefined, `${what} carries ${h}`);
}

const badToken = () => `mlt_${randomBytes(32).toString('base64url')}`;

test('api.rateLimitPerMinute: per token, then per address without a token; normal responses carry no counters', async (t) => {
  const rig = await startApiRig({ overrides: { api: { rateLimitPerMinute: 5, authFailuresPerMinute: 1000, grantRateLimitPerMinute: 2 } } });
  try {
    const [u, v] = [await rig.seedOwner('+15559100001', { calls: 1 }), await rig.seedOwner('+15559100002', { calls: 1 })];

    await t.test('per token', async () => {
      for (let i = 0; i < 5; i++) {
        const ok = await from('127.0.0.1', rig, 'GET', '/v1/me', u.token);
        assert.equal(ok.status, 200);
        assertNoCounters(ok, `request ${i + 1}`);
      }
      assertRateLimited(await from('127.0.0.1', rig, 'GET', '/v1/me', u.token), 'the 6th request of a token');
      // Another token from the same address has its own budget.
      assert.equal((await from('127.0.0.1', rig, 'GET', '/v1/me', v.token)).status, 200);
      // Outside the API (health probes) nothing is limited.
      assert.equal((await from('127.0.0.1', rig, 'GET', '/healthz')).status, 200);
    });

    await t.test('per address without a token (a /v1 route that takes none, like media by grant)', async () => {
      // The real /v1 scope (same limiter) with one public route: the service has none under /v1 of its own yet.
      const server = await startThrowawayServer(rig);
      try {
        const base = { url: server.target.baseUrl };
        for (let i = 0; i < 5; i++) {
          const r = await from('127.0.0.1', base, 'GET', '/v1/good/ping');
          assert.equal(r.status, 200);
          assertNoCounters(r, `request ${i + 1} without a token`);
        }
        assertRateLimited(await from('127.0.0.1', base, 'GET', '/v1/good/ping'), 'the 6th request from the address');
        assert.equal((await from('127.0.0.2', base, 'GET', '/v1/good/ping')).status, 200, 'another address is not limited');
        // A token from the limited address is counted by its token, not the address.
        assert.equal((await from('127.0.0.1', base, 'GET', '/v1/me', v.token)).status, 200);
      } finally {
        await server.close();
      }
    });

    await t.test('a 404 carries no counters either', async () => {
      const w = await rig.seedOwner('+15559100003', { calls: 1 });
      const r = await from('127.0.0.1', rig, 'GET', '/v1/no-such-route', w.token);
      assert.equal(r.status, 404);
      assertNoCounters(r, 'a 404');
    });

    await t.test('api.grantRateLimitPerMinute: grant issuance is limited more strictly', async () => {
      const w = await rig.seedOwner('+15559100004', { calls: 1 });
      const grant = () => rig.request('POST', `/v1/recordings/${w.recordings[0]!.id}/grants`, { token: w.token, body: { purpose: 'play' } });
      for (let i = 0; i < 2; i++) assert.ok((await grant()).ok);
      const refused = await grant();
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.equal(((await refused.json()) as { code: string }).code, 'RATE_LIMITED');
      assert.equal((await rig.request('GET', '/v1/me', { token: w.token })).status, 200, 'other requests of the token go on');
    });
  } finally {
    await rig.close();
  }
});

test('api.authFailuresPerMinute: failed authentications from one address answer 429, even for a fresh bad token; another address is unaffected', async () => {
  const rig = await startApiRig({ overrides: { api: { rateLimitPerMinute: 1000, authFailuresPerMinute: 3 } } });
  try {
    const u = await rig.seedOwner('+15559100011', { calls: 1 });
    for (let i = 0; i < 3; i++) {
      const r = await from('127.0.0.1', rig, 'GET', '/v1/me', badToken());
      assert.equal(r.status, 401);
      assertNoCounters(r, `failure ${i + 1}`);
    }
    assertRateLimited(await from('127.0.0.1', rig, 'GET', '/v1/me', badToken()), 'a fresh bad token after 3 failures');
    assertRateLimited(await from('127.0.0.1', rig, 'GET', '/v1/me'), 'no token after 3 failures');
    const elsewhere = await from('127.0.0.2', rig, 'GET', '/v1/me', badToken());
    assert.equal(elsewhere.status, 401, 'another address still gets its 401');
    assertNoCounters(elsewhere, 'the other address');
    // A valid token is not a failure: its owner, behind the same address, is not locked out.
    assert.equal((await from('127.0.0.1', rig, 'GET', '/v1/me', u.token)).status, 200);
  } finally {
    await rig.close();
  }
});
