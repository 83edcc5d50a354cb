import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startApiRig } from './fixture.js';
import { BolaSuite, send } from './bola-checks.js';
import { idempotencyKey, NO_RATE_LIMITS, seedCast, targetOf } from './bola-rig.js';
import { ROUTE_TABLE, STRICT_ROUTE_TABLE } from './route-table.js';
import { GOOD_TABLE, LEAKY_TABLE, startThrowawayServer } from './throwaway-server.js';

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

test('self-test: the suite fails on routes added without ownership', async (t) => {
  const rig = await startApiRig({ overrides: NO_RATE_LIMITS });
  const leaky = await startThrowawayServer(rig);
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
      // (The service's own routes outside createHttp, like the webhook, are not on this server: not its business.)
      const coverage = suite.problems.splice(0).filter((p) => /\/v1\/(leak|good)\//.test(p));
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
