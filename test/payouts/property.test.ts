import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { databaseKinds } from '../helpers/db.js';
import { MonologueError } from '../../src/errors.js';
import { callEntryKey } from '../../src/payouts/ledger.js';
import { defaultPayouts, openFixture, T0, type Fixture } from './fixture.js';

const CALLS = 8;
const DAY = 86_400_000;
/** A small cap so that it bites often. */
const config = { ...defaultPayouts(), dailyCapMicros: 1_000_000 };

type Op =
  | { kind: 'settle'; call: number; seconds: number; talk: number; enrolled: boolean; provider: number | undefined; copies: number }
  | { kind: 'flag'; call: number; flag: 'duration-mismatch' | 'farming' | 'note' }
  | { kind: 'release' | 'reject'; call: number; copies: number }
  | { kind: 'withdraw'; call: number };

const callIx = fc.integer({ min: 0, max: CALLS - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    kind: fc.constant('settle' as const), call: callIx, seconds: fc.integer({ min: 0, max: 900 }), talk: fc.integer({ min: 0, max: 900 }),
    enrolled: fc.boolean(), provider: fc.option(fc.integer({ min: 0, max: 950 }), { nil: undefined }), copies: fc.integer({ min: 1, max: 4 }),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flag' as const), call: callIx, flag: fc.constantFrom('duration-mismatch' as const, 'farming' as const, 'note' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('release' as const, 'reject' as const), call: callIx, copies: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), call: callIx }) },
);

const EXPECTED = new Set(['PAYOUT_NOT_SETTLED', 'PAYOUT_NOT_HELD']);
async function tolerate(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof MonologueError && EXPECTED.has(err.code))) throw err;
  }
}

async function run(f: Fixture, ops: Op[]): Promise<void> {
  const users = [await f.user(), await f.user()];
  // calls 0..7: alternating users, two counterparts, two days (the second starting at midnight)
  const calls: Array<{ id: string; user: string; answeredAt: number }> = [];
  for (let i = 0; i < CALLS; i++) {
    const user = users[i % 2]!;
    calls.push({ id: await f.call(user, `cp-${i % 3}`), user, answeredAt: T0 + (i % 4 < 2 ? 0 : DAY / 2 - 5_000) + i * 1000 });
  }
  for (const op of ops) {
    const c = calls[op.call]!;
    switch (op.kind) {
      case 'settle': {
        const input = f.input(c.user, c.id, c.answeredAt, op.seconds, op.talk, { counterpartEnrolled: op.enrolled, providerDurationSeconds: op.provider });
        const rs = await Promise.all(Array.from({ length: op.copies }, () => f.settler.settle(input)));
        assert.ok(rs.filter((r) => r.created).length <= 1);
        break;
      }
      case 'flag':
        await tolerate(f.settler.flag(c.id, op.flag));
        break;
      case 'release':
      case 'reject': {
        const fn = op.kind === 'release' ? f.settler.review.release : f.settler.review.reject;
        await Promise.all(Array.from({ length: op.copies }, () => tolerate(fn(c.id, 'prop'))));
        break;
      }
      case 'withdraw': {
        const e = await f.ledger.byKey(callEntryKey(c.id, 'call_credit'));
        if (e) await f.ledger.setState(e.id, 'available', 'paid');
        break;
      }
    }
    await check(f, users);
  }
}

async function check(f: Fixture, users: string[]): Promise<void> {
  const db = f.handle.db;
  for (const u of users) {
    const entries = await f.ledger.entries(u);
    const b = await f.ledger.balance(u);
    const sum = (s: string) => entries.filter((e) => e.state === s).reduce((t, e) => t + e.amountMicros, 0);
    assert.deepEqual(b, { pendingMicros: sum('pending'), availableMicros: sum('available'), paidMicros: sum('paid'), totalMicros: sum('pending') + sum('available') + sum('paid') });
    const credits = new Map<string, number>();
    for (const e of entries.filter((x) => x.type === 'call_credit')) {
      assert.ok(!credits.has(e.callId!), 'at most one call_credit per call');
      credits.set(e.callId!, e.amountMicros);
    }
    for (const e of entries.filter((x) => x.type === 'reversal')) {
      assert.ok(credits.has(e.callId!), 'no reversal without a credit');
      assert.equal(e.amountMicros, -credits.get(e.callId!)!);
    }
    const settlements = await db.selectFrom('settlements').selectAll().where('user_id', '=', u).execute();
    const perDay = new Map<string, number>();
    for (const s of settlements) {
      const net = entries.filter((e) => e.callId === s.call_id).reduce((t, e) => t + e.amountMicros, 0);
      perDay.set(s.day, (perDay.get(s.day) ?? 0) + net);
      const credit = entries.find((e) => e.callId === s.call_id && e.type === 'call_credit');
      const amount = Number(s.amount_micros);
      assert.equal(credit?.amountMicros ?? 0, amount, 'the credit is the settled amount');
      if (credit && (s.state === 'credited' || s.state === 'released')) assert.ok(credit.state !== 'pending', `${s.state} credit is not pending`);
      if (credit && s.state === 'held') assert.ok(credit.state !== 'available', 'a held credit cannot be withdrawn');
      if (credit && s.state === 'rejected') assert.equal(net, 0, 'a rejected call nets zero');
    }
    for (const [day, net] of perDay) assert.ok(net <= config.dailyCapMicros, `user-day ${day} nets ${net} > cap`);
  }
}

for (const [kind, fresh] of databaseKinds) {
  describe(`payouts property on ${kind}`, () => {
    let f: Fixture;
    before(async () => {
      f = await openFixture(fresh, config);
    });
    after(async () => {
      await f.close();
    });
    test('any sequence of settles, retries, flags, reviews and withdrawals keeps the ledger sound', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: kind === 'sqlite' ? 25 : 15 }), (ops) => run(f, ops)),
        { numRuns: kind === 'sqlite' ? 60 : 15 },
      );
    });
  });
}
