import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { databaseKinds } from '../helpers/db.js';
import { openFixture } from './fixture.js';

for (const [kind, fresh] of databaseKinds) {
  describe(`payouts ledger on ${kind}`, () => {
    test('credit is idempotent by key, amounts are integers, balance is the sum of entries', async () => {
      const f = await openFixture(fresh);
      try {
        const u = await f.user();
        const c = await f.call(u);
        const big = 9_000_000_000_123; // beyond int4: a PostgreSQL bigint must come back as an exact number
        const first = await f.ledger.credit({ userId: u, callId: c, type: 'call_credit', state: 'available', amountMicros: big });
        assert.equal(first.created, true);
        assert.equal(first.entry.idemKey, `call:${c}:call_credit`);
        assert.equal(first.entry.amountMicros, big);
        assert.equal(typeof first.entry.amountMicros, 'number');
        assert.equal(typeof first.entry.createdAt, 'number');
        const again = await f.ledger.credit({ userId: u, callId: c, type: 'call_credit', state: 'available', amountMicros: 5 });
        assert.equal(again.created, false);
        assert.equal(again.entry.id, first.entry.id);
        assert.equal(again.entry.amountMicros, big);

        const races = await Promise.all(
          Array.from({ length: 30 }, () => f.ledger.credit({ userId: u, type: 'adjustment', state: 'pending', amountMicros: 7, idemKey: 'adj:1' })),
        );
        assert.equal(races.filter((r) => r.created).length, 1);
        await assert.rejects(f.ledger.credit({ userId: u, type: 'adjustment', state: 'pending', amountMicros: 1 }), { code: 'LEDGER_KEY_MISSING' });
        await assert.rejects(f.ledger.credit({ userId: u, callId: c, type: 'reversal', state: 'pending', amountMicros: 1.5 }), { code: 'LEDGER_AMOUNT_INVALID' });

        const b = await f.ledger.balance(u);
        assert.deepEqual(b, { pendingMicros: 7, availableMicros: big, paidMicros: 0, totalMicros: big + 7 });
        const entries = await f.ledger.entries(u);
        assert.equal(entries.length, 2);
        assert.equal(entries.reduce((s, e) => s + e.amountMicros, 0), b.totalMicros);
        assert.deepEqual(await f.ledger.balance(await f.user()), { pendingMicros: 0, availableMicros: 0, paidMicros: 0, totalMicros: 0 });
      } finally {
        await f.close();
      }
    });

    test('states move only pending → available → paid, conditionally', async () => {
      const f = await openFixture(fresh);
      try {
        const u = await f.user();
        const { entry } = await f.ledger.credit({ userId: u, type: 'adjustment', state: 'pending', amountMicros: 100, idemKey: 'adj:x' });
        await assert.rejects(f.ledger.setState(entry.id, 'pending', 'paid'), { code: 'LEDGER_TRANSITION_INVALID' });
        await assert.rejects(f.ledger.setState(entry.id, 'available', 'pending'), { code: 'LEDGER_TRANSITION_INVALID' });
        assert.equal(await f.ledger.setState(entry.id, 'available', 'paid'), false, 'not in from-state');
        const moves = await Promise.all(Array.from({ length: 10 }, () => f.ledger.setState(entry.id, 'pending', 'available')));
        assert.equal(moves.filter(Boolean).length, 1);
        assert.equal(await f.ledger.setState(entry.id, 'available', 'paid'), true);
        assert.deepEqual(await f.ledger.balance(u), { pendingMicros: 0, availableMicros: 0, paidMicros: 100, totalMicros: 100 });
      } finally {
        await f.close();
      }
    });
  });
}
