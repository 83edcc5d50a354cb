import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Fastify from 'fastify';
import { startApiRig, type ApiRig, type SeededOwner } from './fixture.js';
import { adminPayoutRoutes } from '../../src/api/admin-payouts.js';
import { apiErrorHandler, ErrorBody } from '../../src/api/replies.js';
import type { ApiDeps } from '../../src/api/deps.js';
import { createLogger } from '../../src/log.js';
import { newId } from '../../src/ids.js';
import { createWithdrawals } from '../../src/payouts/withdrawals.js';

/**
 * Withdrawals through the API on both databases: idempotency under concurrency, serialised balance
 * checks (the service and a second process racing), refusals that write nothing, own-only listing,
 * the earnings report against the ledger, the admin routes, and the operator CLI.
 */

const MIN = 5_000_000; // payouts.minimumPayoutMicros (config/default.json)

interface Reply {
  status: number;
  body: string;
}

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`payouts on ${database}`, () => {
    let rig: ApiRig;
    let phone = 0;
    before(async () => {
      rig = await startApiRig({ database });
    });
    after(() => rig?.close());

    const owner = (calls: number) => rig.seedOwner(`+1555300${String(phone++).padStart(4, '0')}`, { calls, seconds: 1 });
    const post = async (o: SeededOwner, body: unknown, key?: string): Promise<Reply> => {
      const res = await rig.request('POST', '/v1/payouts', { token: o.token, body, headers: key === undefined ? {} : { 'idempotency-key': key } });
      return { status: res.status, body: await res.text() };
    };
    const payoutEntries = (userId: string) => rig.service.db.db.selectFrom('ledger_entries').selectAll().where('user_id', '=', userId).where('type', '=', 'payout').execute();
    const audited = async (userId: string, action: string) => (await rig.service.audit.forUser(userId, { limit: 1000 })).filter((e) => e.action === action);
    const earnings = async (o: SeededOwner) => {
      const res = await rig.request('GET', '/v1/earnings', { token: o.token });
      assert.equal(res.status, 200);
      return (await res.json()) as { balance: Record<string, number>; days: Array<Record<string, unknown>>; calls: Array<Record<string, unknown>> };
    };
    const cliEnv = () => ({ ...process.env, MONOLOGUE_DATA_DIR: rig.service.config.dataDir, DATABASE_URL: rig.service.config.database.url });

    test('20 concurrent requests with one Idempotency-Key: one ledger entry, one audit entry, 20 identical answers', async () => {
      const a = await owner(2); // 8,000,000 available
      const replies = await Promise.all(Array.from({ length: 20 }, () => post(a, { amountMicros: MIN }, 'one-key-for-all')));
      assert.equal(replies[0]?.status, 201, replies[0]?.body);
      for (const r of replies) assert.deepEqual(r, replies[0]);
      const body = JSON.parse(replies[0]!.body) as { id: string; amountMicros: number; state: string };
      assert.equal(body.amountMicros, MIN);
      assert.equal(body.state, 'pending');
      const entries = await payoutEntries(a.id);
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.id, body.id);
      assert.equal(Number(entries[0]?.amount_micros), -MIN);
      assert.equal((await audited(a.id, 'payout.request')).length, 1);
      // A later retry still answers the same, and the balance moved once.
      assert.deepEqual(await post(a, { amountMicros: MIN }, 'one-key-for-all'), replies[0]);
      assert.equal((await earnings(a)).balance.withdrawableMicros, 8_000_000 - MIN);
    });

    test('requests with different keys from the service and a second process at once never overdraw: exactly what fits is accepted', async () => {
      // 200,000,000: at 5,500,000 each 36 of the 60 requests fit and 2,000,000 stay. Many requests on
      // each side, so that the two processes' bursts overlap.
      const b = await rig.seedOwner('+15553999999', { calls: 2, seconds: 1, creditMicros: 100_000_000 });
      const amount = 5_500_000;
      const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'api', 'payout-burst.ts'), b.id, '30', String(amount), 'proc'], { env: cliEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = once(child, 'exit');
      const lines = createInterface({ input: child.stdout });
      const next = async () => String((await once(lines, 'line'))[0]);
      assert.equal(await next(), 'ready');
      const outcomeLine = next();
      child.stdin.write('go\n');
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => post(b, { amountMicros: amount }, `http-${i}`)));
      const outcomes = JSON.parse(await outcomeLine) as string[];
      child.stdin.end();
      assert.deepEqual(await exited, [0, null]);

      const httpOk = replies.filter((r) => r.status === 201).length;
      for (const r of replies.filter((x) => x.status !== 201)) {
        assert.equal(r.status, 422, r.body);
        assert.equal((JSON.parse(r.body) as { code: string }).code, 'INSUFFICIENT_BALANCE');
      }
      const procOk = outcomes.filter((o) => o === 'created').length;
      assert.deepEqual(outcomes.filter((o) => o !== 'created' && o !== 'INSUFFICIENT_BALANCE'), [], 'the second process saw only acceptances and balance refusals');
      assert.equal(httpOk + procOk, 36, `accepted ${httpOk} over HTTP and ${procOk} from the other process`);
      const entries = await payoutEntries(b.id);
      assert.equal(entries.length, 36);
      assert.equal(entries.reduce((s, e) => s + Number(e.amount_micros), 0), -36 * amount);
      const { balance } = await earnings(b);
      assert.equal(balance.withdrawableMicros, 200_000_000 - 36 * amount);
      assert.equal(balance.pendingPayoutMicros, 36 * amount);
      assert.equal((await audited(b.id, 'payout.request')).length, 36);
      // Which process won how many is timing; both must have been heard (the race was a race).
      if (httpOk === 0 || procOk === 0) process.stderr.write(`note: one side took every payout (http ${httpOk}, other process ${procOk})\n`);
    });

    test('refusals write nothing: over the balance, below the minimum, no or bad Idempotency-Key, extra fields, wrong types', async () => {
      const c = await owner(2); // 8,000,000
      const other = await owner(1);
      const code = (r: Reply) => [r.status, (JSON.parse(r.body) as { code: string }).code];
      assert.deepEqual(code(await post(c, { amountMicros: 8_000_001 }, 'k-over')), [422, 'INSUFFICIENT_BALANCE']);
      assert.deepEqual(code(await post(c, { amountMicros: MIN - 1 }, 'k-min')), [422, 'PAYOUT_BELOW_MINIMUM']);
      assert.deepEqual(code(await post(c, { amountMicros: MIN })), [400, 'IDEMPOTENCY_KEY_REQUIRED']);
      for (const bad of ['', 'has space', 'x'.repeat(129), 'clé']) {
        assert.deepEqual(code(await post(c, { amountMicros: MIN }, bad)), [400, 'IDEMPOTENCY_KEY_REQUIRED'], JSON.stringify(bad));
      }
      assert.deepEqual(code(await post(c, { amountMicros: MIN, userId: other.id }, 'k-user')), [400, 'BAD_REQUEST']);
      assert.deepEqual(code(await post(c, { amountMicros: MIN, state: 'paid' }, 'k-state')), [400, 'BAD_REQUEST']);
      assert.deepEqual(code(await post(c, { amountMicros: MIN + 0.5 }, 'k-frac')), [400, 'BAD_REQUEST']);
      assert.deepEqual(code(await post(c, { amountMicros: -MIN }, 'k-neg')), [400, 'BAD_REQUEST']);
      assert.deepEqual(code(await post(c, {}, 'k-empty')), [400, 'BAD_REQUEST']);
      assert.deepEqual(code(await post(c, { amountMicros: Number.MAX_SAFE_INTEGER + 1 }, 'k-huge')), [400, 'BAD_REQUEST']);
      assert.deepEqual(await payoutEntries(c.id), []);
      assert.deepEqual(await payoutEntries(other.id), []);
      assert.deepEqual(await audited(c.id, 'payout.request'), []);
      assert.equal((await earnings(c)).balance.withdrawableMicros, 8_000_000);

      // A refused request is not remembered: the same key may then succeed.
      assert.equal((await post(c, { amountMicros: MIN }, 'k-over')).status, 201);
      // The same key with another amount is a different request: refused, nothing more written.
      assert.deepEqual(code(await post(c, { amountMicros: MIN + 1 }, 'k-over')), [409, 'IDEMPOTENCY_KEY_REUSED']);
      assert.equal((await payoutEntries(c.id)).length, 1);
      // Keys are per user: another user's equal key is their own request.
      const d = await owner(2);
      assert.equal((await post(d, { amountMicros: MIN }, 'k-over')).status, 201);
      assert.equal((await payoutEntries(d.id)).length, 1);
    });

    test('GET /v1/payouts lists the caller’s payouts only, newest first, in pages', async () => {
      const e = await owner(5);
      const f = await owner(2);
      const mine: string[] = [];
      for (let i = 0; i < 3; i++) mine.unshift((JSON.parse((await post(e, { amountMicros: MIN }, `list-${i}`)).body) as { id: string }).id);
      const theirs = (JSON.parse((await post(f, { amountMicros: MIN }, 'list-0')).body) as { id: string }).id;

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await rig.request('GET', `/v1/payouts?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: e.token });
        assert.equal(res.status, 200);
        const page = (await res.json()) as { items: Array<{ id: string; amountMicros: number; state: string; createdAt: string }>; nextCursor: string | null };
        for (const it of page.items) {
          assert.deepEqual(Object.keys(it).sort(), ['amountMicros', 'createdAt', 'id', 'state']);
          assert.equal(it.amountMicros, MIN);
          assert.equal(it.state, 'pending');
        }
        seen.push(...page.items.map((i) => i.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, mine);
      const fList = (await (await rig.request('GET', '/v1/payouts', { token: f.token })).json()) as { items: Array<{ id: string }> };
      assert.deepEqual(fList.items.map((i) => i.id), [theirs]);
      const bad = await rig.request('GET', '/v1/payouts?cursor=notacursor', { token: e.token });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { code: string }).code, 'BAD_CURSOR');
      assert.equal((await rig.request('GET', '/v1/payouts')).status, 401);
      assert.equal((await rig.request('POST', '/v1/payouts', { body: { amountMicros: MIN }, headers: { 'idempotency-key': 'no-token' } })).status, 401);
    });

    test('admin routes (mounted alone): paid or failed once; failed returns the money; unknown and malformed ids are the one 404', async () => {
      const g = await owner(4); // 16,000,000
      const s = rig.service;
      const deps: ApiDeps = {
        config: s.config, log: createLogger('warn'), db: s.db.db, users: s.users, tokens: s.tokens, vault: s.vault, catalog: s.catalog, objects: s.objects,
        spool: s.spool, keyring: undefined, ledger: s.ledger, audit: s.audit, grants: s.grants, live: { consentRevoked: () => undefined, sessionsRevoked: () => undefined }, now: Date.now,
      };
      const admin = Fastify({ ajv: { customOptions: { removeAdditional: false } } });
      admin.addSchema(ErrorBody);
      admin.setErrorHandler(apiErrorHandler(deps.log));
      await admin.register(async (scope) => adminPayoutRoutes(scope, deps));
      try {
        const p1 = (JSON.parse((await post(g, { amountMicros: MIN }, 'adm-1')).body) as { id: string }).id;
        const p2 = (JSON.parse((await post(g, { amountMicros: 6_000_000 }, 'adm-2')).body) as { id: string }).id;
        assert.equal((await earnings(g)).balance.withdrawableMicros, 16_000_000 - MIN - 6_000_000);
        const call = (url: string, payload?: unknown) => admin.inject({ method: 'POST', url, ...(payload !== undefined && { payload: payload as Record<string, unknown> }) });

        const paid = await call(`/payouts/${p1}/paid`);
        assert.equal(paid.statusCode, 200, paid.body);
        assert.deepEqual({ ...paid.json<Record<string, unknown>>(), createdAt: undefined }, { id: p1, userId: g.id, amountMicros: MIN, state: 'paid', createdAt: undefined });
        for (const again of [call(`/payouts/${p1}/paid`), call(`/payouts/${p1}/failed`, { reason: 'too late' })]) {
          const r = await again;
          assert.equal(r.statusCode, 409);
          assert.equal(r.json<{ code: string }>().code, 'PAYOUT_NOT_PENDING');
        }
        assert.equal((await call(`/payouts/${p2}/failed`, { reason: 'bank refused', state: 'paid' })).statusCode, 400, 'extra field');
        const failed = await call(`/payouts/${p2}/failed`, { reason: 'bank refused' });
        assert.equal(failed.statusCode, 200, failed.body);
        assert.equal(failed.json<{ state: string }>().state, 'failed');
        assert.equal((await call(`/payouts/${p2}/paid`)).statusCode, 409);

        const missing = await call(`/payouts/${newId('aud').replace('aud_', 'led_')}/paid`);
        const malformed = await call('/payouts/nonsense/paid');
        for (const r of [missing, malformed]) {
          assert.equal(r.statusCode, 404);
          assert.deepEqual(r.json(), { code: 'NOT_FOUND', message: 'no such resource' });
        }
        assert.equal(missing.body, malformed.body);

        const { balance } = await earnings(g);
        assert.deepEqual(
          { available: balance.availableMicros, paid: balance.paidMicros, pendingPayout: balance.pendingPayoutMicros, withdrawable: balance.withdrawableMicros },
          { available: 16_000_000 - MIN, paid: MIN, pendingPayout: 0, withdrawable: 16_000_000 - MIN },
        );
        const compensation = await s.ledger.byKey(`payout:${p2}:failed`);
        assert.equal(compensation?.amountMicros, 6_000_000);
        assert.equal(compensation?.state, 'available');
        const list = (await (await rig.request('GET', '/v1/payouts', { token: g.token })).json()) as { items: Array<{ id: string; state: string }> };
        assert.deepEqual(list.items.map((i) => [i.id, i.state]), [[p2, 'failed'], [p1, 'paid']]);
        assert.deepEqual((await audited(g.id, 'payout.paid')).map((e) => e.actor), ['admin']);
        assert.deepEqual((await audited(g.id, 'payout.failed')).map((e) => [e.actor, e.detail]), [['admin', `${p2} 6000000 micros: bank refused`]]);
      } finally {
        await admin.close();
      }
    });

    test('GET /v1/earnings matches the ledger and the settlements: pending, available, paid, pending payouts, per day, per call', async () => {
      const h = await owner(3); // 12,000,000 available from seeded credits
      const s = rig.service;
      const settleCall = async (talkMs: number, providerDurationSeconds?: number) => {
        const id = newId('call');
        const answeredAt = Date.now() - 200_000;
        await s.records.create({ id, userId: h.id, direction: 'outbound', counterpart: '+15557770001', createdAt: answeredAt - 1000 });
        await s.records.update(id, { answeredAt, endedAt: answeredAt + 120_000, endReason: 'remote-hangup', sipStatus: 200 });
        const r = await s.settler.settle({ callId: id, userId: h.id, answeredAt, endedAt: answeredAt + 120_000, talkMs, counterpartHash: s.vault.hash('+15557770001'), counterpartEnrolled: false, providerDurationSeconds });
        return { id, ...r };
      };
      const credited = await settleCall(100_000);
      const held = await settleCall(100_000, 400);
      assert.equal(credited.state, 'credited');
      assert.equal(held.state, 'held');
      const rate = s.config.payouts.rateOtherMicrosPerMinute;
      assert.equal(credited.amountMicros, (rate * 120) / 60);

      const request = async (amountMicros: number, key: string) => {
        const r = await post(h, { amountMicros }, key);
        assert.equal(r.status, 201, r.body);
        return (JSON.parse(r.body) as { id: string }).id;
      };
      const ops = createWithdrawals({ db: s.db.db, audit: s.audit, minimumPayoutMicros: MIN });
      await ops.markPaid(await request(MIN, 'earn-0'), 'operator:test');
      await ops.markFailed(await request(6_000_000, 'earn-1'), 'operator:test', 'closed account');
      await request(5_500_000, 'earn-2');

      const report = await earnings(h);
      const available = 12_000_000 + credited.amountMicros - MIN;
      assert.deepEqual(report.balance, {
        pendingMicros: held.amountMicros,
        availableMicros: available,
        paidMicros: MIN,
        pendingPayoutMicros: 5_500_000,
        withdrawableMicros: available - 5_500_000,
        totalMicros: 12_000_000 + credited.amountMicros + held.amountMicros,
      });
      // The same numbers straight from the ledger rows, signed as stored.
      const entries = await s.ledger.entries(h.id);
      const sum = (pred: (e: (typeof entries)[number]) => boolean) => entries.filter(pred).reduce((t, e) => t + e.amountMicros, 0);
      assert.equal(report.balance.withdrawableMicros, sum((e) => e.state === 'available' || e.type === 'payout'));
      assert.equal(sum(() => true), report.balance.withdrawableMicros + report.balance.pendingMicros, 'all entries = withdrawable + under review');
      assert.equal(-sum((e) => e.type === 'payout' && e.state === 'paid'), report.balance.paidMicros);

      const day = new Date(Date.now() - 200_000).toISOString().slice(0, 10);
      assert.deepEqual(report.days, [{ day, creditedMicros: credited.amountMicros, heldMicros: held.amountMicros, calls: 2 }]);
      assert.deepEqual(
        report.calls.map((c) => [c.callId, c.state, c.amountMicros, c.billableS]).sort(),
        [[credited.id, 'credited', credited.amountMicros, 120], [held.id, 'held', held.amountMicros, 120]].sort(),
      );
      const narrow = await rig.request('GET', '/v1/earnings?calls=1&days=1', { token: h.token });
      assert.equal(((await narrow.json()) as { calls: unknown[] }).calls.length, 1);
      assert.equal((await rig.request('GET', '/v1/earnings?userId=x', { token: h.token })).status, 400);

      // Another user's report is their own.
      const other = await owner(1);
      const theirs = await earnings(other);
      assert.deepEqual(theirs.days, []);
      assert.equal(theirs.balance.availableMicros, 4_000_000);

      if (database === 'sqlite') {
        // The operator CLI prints the very same report.
        const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'earnings', '--user', h.id], { env: cliEnv(), encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), { userId: h.id, ...report });
      }
    });

    if (database === 'sqlite') {
      test('operator CLI: payouts list, mark-paid (any user’s payout) and fail, each once; the user sees the outcome, not other users’ payouts', async () => {
        const alice = await owner(3);
        const bob = await owner(3);
        const pa = (JSON.parse((await post(alice, { amountMicros: MIN }, 'cli-a')).body) as { id: string }).id;
        const pb = (JSON.parse((await post(bob, { amountMicros: 7_000_000 }, 'cli-b')).body) as { id: string }).id;
        const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: cliEnv(), encoding: 'utf8' });
        const ok = (...args: string[]) => {
          const r = cli(...args);
          assert.equal(r.status, 0, r.stderr);
          return JSON.parse(r.stdout) as Record<string, unknown>;
        };
        const failsWith = (code: string, ...args: string[]) => {
          const r = cli(...args);
          assert.equal(r.status, 1, r.stdout);
          assert.equal((JSON.parse(r.stderr) as { code: string }).code, code);
        };
        // Each CLI run is a process start (~2 s here): once-only is proven over every pairing by the admin test.

        const pending = (ok('payouts', 'list', '--state', 'pending').payouts as Array<{ id: string; userId: string; amountMicros: number; state: string }>).filter((p) => p.id === pa || p.id === pb);
        assert.deepEqual(pending.map((p) => [p.id, p.userId, p.amountMicros, p.state]), [[pa, alice.id, MIN, 'pending'], [pb, bob.id, 7_000_000, 'pending']]);

        // The operator settles Bob's payout while the service runs on the same SQLite file.
        assert.equal((ok('payouts', 'mark-paid', pb).payout as { state: string }).state, 'paid');
        failsWith('PAYOUT_NOT_PENDING', 'payouts', 'mark-paid', pb);
        const failed = ok('payouts', 'fail', pa, '--reason', 'IBAN rejected');
        assert.equal((failed.payout as { state: string }).state, 'failed');
        assert.match(String(failed.compensationId), /^led_/);

        const list = async (o: SeededOwner) => ((await (await rig.request('GET', '/v1/payouts', { token: o.token })).json()) as { items: Array<{ id: string; state: string }> }).items.map((i) => [i.id, i.state]);
        assert.deepEqual(await list(alice), [[pa, 'failed']]);
        assert.deepEqual(await list(bob), [[pb, 'paid']]);
        assert.equal((await earnings(alice)).balance.withdrawableMicros, 12_000_000);
        assert.equal((await earnings(bob)).balance.withdrawableMicros, 5_000_000);
        const actor = (await audited(bob.id, 'payout.paid'))[0]?.actor ?? '';
        assert.match(actor, /^operator:/);
        assert.equal((await rig.service.audit.verify()).ok, true);
      });
    }
  });
}
