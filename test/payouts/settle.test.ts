import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { databaseKinds } from '../helpers/db.js';
import { defaultPayouts, openFixture, T0 } from './fixture.js';

for (const [kind, fresh] of databaseKinds) {
  describe(`payouts settle on ${kind}`, () => {
    test('exactly once: 50 concurrent settles of one call → one settlement, one credit', async () => {
      const f = await openFixture(fresh);
      try {
        const u = await f.user();
        const c = await f.call(u);
        const results = await Promise.all(Array.from({ length: 50 }, () => f.settler.settle(f.input(u, c, T0, 120, 60))));
        assert.equal(results.filter((r) => r.created).length, 1);
        for (const r of results) assert.deepEqual({ ...r, created: true }, { state: 'credited', amountMicros: 300_000, flags: [], created: true });
        const settlements = await f.handle.db.selectFrom('settlements').selectAll().execute();
        assert.equal(settlements.length, 1);
        const entries = await f.ledger.entries(u);
        assert.equal(entries.length, 1);
        assert.equal(entries[0]?.type, 'call_credit');
        assert.deepEqual(await f.ledger.balance(u), { pendingMicros: 0, availableMicros: 300_000, paidMicros: 0, totalMicros: 300_000 });
        // a later retry with different numbers is still the first judgement
        const late = await f.settler.settle(f.input(u, c, T0, 3000, 3000));
        assert.deepEqual(late, { state: 'credited', amountMicros: 300_000, flags: [], created: false });
      } finally {
        await f.close();
      }
    });

    test('concurrent settles of different calls of one user never exceed the daily cap', async () => {
      const config = { ...defaultPayouts(), dailyCapMicros: 500_000 };
      const f = await openFixture(fresh, config);
      try {
        const u = await f.user();
        const calls = await Promise.all(Array.from({ length: 8 }, () => f.call(u)));
        // each call alone earns 300,000 µ; two already cross the cap
        const results = await Promise.all(calls.map((c) => f.settler.settle(f.input(u, c, T0, 120, 60))));
        const total = results.reduce((s, r) => s + r.amountMicros, 0);
        assert.equal(total, 500_000);
        assert.equal(results.filter((r) => r.flags.includes('capped')).length, 7);
        assert.equal((await f.ledger.balance(u)).totalMicros, 500_000);
      } finally {
        await f.close();
      }
    });

    test('the cap across calls; a call answered 23:59:50 UTC counts wholly on that day', async () => {
      const f = await openFixture(fresh, defaultPayouts(), () => Date.UTC(2025, 0, 2, 12));
      try {
        const u = await f.user();
        const other = await f.user();
        const midnight = Date.UTC(2025, 0, 2);
        // each 60-minute call at 15¢/min earns $9: three earn $27, the fourth only the $3 left, the fifth nothing
        const got = [];
        for (let i = 0; i < 5; i++) {
          got.push(await f.settler.settle(f.input(u, await f.call(u), midnight - 86_400_000 + i * 3_600_000, 3600, 3000)));
        }
        assert.deepEqual(got.map((r) => [r.state, r.amountMicros, r.flags.join()]), [
          ['credited', 9_000_000, ''],
          ['credited', 9_000_000, ''],
          ['credited', 9_000_000, ''],
          ['credited', 3_000_000, 'capped'],
          ['unpaid', 0, 'capped'],
        ]);
        const day1 = await f.earnings.dailyTotals(u, 7);
        assert.deepEqual(day1, [{ day: '2025-01-01', creditedMicros: 30_000_000, heldMicros: 0, calls: 5 }]);

        const late = await f.call(u);
        const r = await f.settler.settle(f.input(u, late, midnight - 10_000, 600, 600));
        assert.deepEqual(r, { state: 'unpaid', amountMicros: 0, flags: ['capped'], created: true }, 'answered on the capped day: nothing, though it ends the next day');
        const next = await f.settler.settle(f.input(u, await f.call(u), midnight + 5_000, 60, 60));
        assert.equal(next.amountMicros, 150_000);
        const totals = await f.earnings.dailyTotals(u, 7);
        assert.deepEqual(totals, [
          { day: '2025-01-02', creditedMicros: 150_000, heldMicros: 0, calls: 1 },
          { day: '2025-01-01', creditedMicros: 30_000_000, heldMicros: 0, calls: 6 },
        ]);
        const perCall = await f.earnings.perCall(u, 100);
        assert.equal(perCall.length, 7);
        const lateRow = perCall.find((p) => p.callId === late);
        assert.deepEqual(lateRow, { callId: late, day: '2025-01-01', billableS: 600, talkS: 600, amountMicros: 0, state: 'unpaid', flags: ['capped'] });
        assert.deepEqual(await f.earnings.perCall(other), [], 'owner-filtered');
        assert.deepEqual(await f.earnings.dailyTotals(other), []);
        await assert.rejects(f.settler.settle(f.input(other, late, midnight, 60, 60)), { code: 'PAYOUT_UNKNOWN_CALL' }, "another user's call");
      } finally {
        await f.close();
      }
    });

    test('review: release makes a held credit available; reject reverses it; both idempotent', async () => {
      const f = await openFixture(fresh);
      try {
        const u = await f.user();
        const cp = 'counterpart-a';
        const settled = [];
        for (let i = 0; i < 7; i++) settled.push(await f.settler.settle(f.input(u, await f.call(u, cp), T0 + i * 1000, 120, 60)));
        assert.deepEqual(settled.map((s) => s.state), ['credited', 'credited', 'credited', 'credited', 'credited', 'held', 'held']);
        assert.deepEqual(settled[5]?.flags, ['repeat-counterpart']);
        const held = await f.settler.review.list();
        assert.equal(held.length, 2);
        const [a, b] = held;
        assert.ok(a && b);
        assert.deepEqual(await f.ledger.balance(u), { pendingMicros: 600_000, availableMicros: 1_500_000, paidMicros: 0, totalMicros: 2_100_000 });

        const rel = await f.settler.review.release(a.callId, 'alice');
        assert.equal(rel.changed, true);
        assert.equal(rel.settlement.state, 'released');
        assert.equal((await f.settler.review.release(a.callId, 'alice')).changed, false);
        assert.deepEqual(await f.ledger.balance(u), { pendingMicros: 300_000, availableMicros: 1_800_000, paidMicros: 0, totalMicros: 2_100_000 });
        await assert.rejects(f.settler.review.reject(a.callId, 'bob'), { code: 'PAYOUT_NOT_HELD' });

        const rejections = await Promise.all(Array.from({ length: 5 }, () => f.settler.review.reject(b.callId, 'bob')));
        assert.equal(rejections.filter((r) => r.changed).length, 1);
        assert.deepEqual(await f.ledger.balance(u), { pendingMicros: 0, availableMicros: 1_800_000, paidMicros: 0, totalMicros: 1_800_000 });
        const reversals = (await f.ledger.entries(u)).filter((e) => e.type === 'reversal');
        assert.deepEqual(reversals.map((e) => [e.callId, e.amountMicros, e.state]), [[b.callId, -300_000, 'pending']]);
        assert.deepEqual(await f.settler.review.list(), []);
        const stored = await f.settler.get(b.callId);
        assert.equal(stored?.reviewer, 'bob');
        await assert.rejects(f.settler.review.release('call_nope', 'x'), { code: 'PAYOUT_NOT_SETTLED' });
      } finally {
        await f.close();
      }
    });

    test('a late flag holds a credited call and its credit; silent calls are held with nothing to pay', async () => {
      const f = await openFixture(fresh);
      try {
        const u = await f.user();
        const c = await f.call(u);
        await f.settler.settle(f.input(u, c, T0, 120, 60));
        assert.equal((await f.ledger.balance(u)).availableMicros, 300_000);
        const flagged = await Promise.all([f.settler.flag(c, 'duration-mismatch'), f.settler.flag(c, 'duration-mismatch')]);
        assert.equal(flagged.filter((x) => x.changed).length, 1);
        const s = await f.settler.get(c);
        assert.equal(s?.state, 'held');
        assert.deepEqual(s?.flags, ['duration-mismatch']);
        assert.deepEqual(await f.ledger.balance(u), { pendingMicros: 300_000, availableMicros: 0, paidMicros: 0, totalMicros: 300_000 });
        await assert.rejects(f.settler.flag(c, 'Bad Flag!'), { code: 'PAYOUT_FLAG_INVALID' });
        await f.settler.review.release(c, 'alice');
        assert.equal((await f.ledger.balance(u)).availableMicros, 300_000);

        const quiet = await f.call(u);
        const r = await f.settler.settle(f.input(u, quiet, T0, 120, 5));
        assert.deepEqual(r, { state: 'held', amountMicros: 0, flags: ['silent'], created: true });
        assert.equal((await f.ledger.entries(u)).length, 1, 'no entry for a zero amount');
        const mism = await f.call(u);
        const m = await f.settler.settle(f.input(u, mism, T0, 120, 60, { providerDurationSeconds: 150 }));
        assert.deepEqual(m, { state: 'held', amountMicros: 300_000, flags: ['duration-mismatch'], created: true });
      } finally {
        await f.close();
      }
    });
  });
}
