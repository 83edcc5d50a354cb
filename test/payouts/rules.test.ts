import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { computeEarning, prorate, utcDay, type CallMeasurements } from '../../src/payouts/rules.js';
import { defaultPayouts } from './fixture.js';

const config = defaultPayouts(); // other 150,000 µ/min (15¢), enrolled 300,000 µ/min, cap 30,000,000 µ
const base: CallMeasurements = { billableSeconds: 120, talkSeconds: 60, counterpartEnrolled: false, earnedTodayMicros: 0, callsToCounterpartToday: 1 };
const earn = (over: Partial<CallMeasurements>) => computeEarning({ ...base, ...over }, config);

describe('payout rules (pure)', () => {
  test('a talking call earns rate × seconds; an enrolled counterpart earns the higher rate', () => {
    const r = earn({});
    assert.deepEqual(r, { amountMicros: 300_000, rateMicrosPerMinute: 150_000, paidSeconds: 120, flags: [], held: false, reasons: [] });
    const e = earn({ counterpartEnrolled: true, talkSeconds: 80 });
    assert.equal(e.rateMicrosPerMinute, 300_000);
    assert.equal(e.amountMicros, 600_000);
    assert.equal(e.held, false);
    // prorated per second, floored, integer
    assert.equal(earn({ billableSeconds: 61, talkSeconds: 61 }).amountMicros, 152_500);
    assert.equal(prorate(7, 10), 1); // 70 / 60 = 1.16… → 1
    assert.equal(prorate(9_007_199_254_740_991, 60), 9_007_199_254_740_991); // BigInt: exact beyond 2^53 products
  });

  test('a silent call earns nothing and is held', () => {
    const r = earn({ talkSeconds: 10 }); // 10/120 < 0.2
    assert.equal(r.amountMicros, 0);
    assert.deepEqual(r.flags, ['silent']);
    assert.equal(r.held, true);
    assert.equal(earn({ talkSeconds: 24 }).flags.length, 0, 'exactly the minimum ratio is not silent');
  });

  test('shorter than the minimum earns 0 with no flag; the per-call maximum caps paid seconds', () => {
    const short = earn({ billableSeconds: 9, talkSeconds: 9 });
    assert.equal(short.amountMicros, 0);
    assert.deepEqual(short.flags, []);
    assert.equal(short.held, false);
    assert.equal(earn({ billableSeconds: 10, talkSeconds: 10 }).amountMicros, 25_000);
    const long = earn({ billableSeconds: 2 * 3600, talkSeconds: 3600 });
    assert.equal(long.paidSeconds, 3600);
    assert.equal(long.amountMicros, 60 * 150_000);
    assert.deepEqual(long.flags, []);
  });

  test('the daily cap: a user at $29.90 gets only 10¢ of a 1-minute 30¢ call, flagged capped, not held', () => {
    const r = earn({ billableSeconds: 60, talkSeconds: 60, counterpartEnrolled: true, earnedTodayMicros: 29_900_000 });
    assert.equal(r.amountMicros, 100_000);
    assert.deepEqual(r.flags, ['capped']);
    assert.equal(r.held, false);
    const over = earn({ earnedTodayMicros: 31_000_000 });
    assert.equal(over.amountMicros, 0);
    assert.deepEqual(over.flags, ['capped']);
    assert.deepEqual(earn({ earnedTodayMicros: 29_700_000 }).flags, [], 'exactly reaching the cap does not bite');
  });

  test('a provider duration 30 s longer flags duration-mismatch and pays only our duration', () => {
    const r = earn({ providerDurationSeconds: 150 });
    assert.deepEqual(r.flags, ['duration-mismatch']);
    assert.equal(r.held, true);
    assert.equal(r.paidSeconds, 120);
    assert.equal(r.amountMicros, 300_000);
    assert.deepEqual(earn({ providerDurationSeconds: 125 }).flags, [], 'within tolerance');
    assert.deepEqual(earn({ providerDurationSeconds: 100 }).flags, ['duration-mismatch']);
  });

  test('repeat-counterpart and farming', () => {
    assert.deepEqual(earn({ callsToCounterpartToday: 5 }).flags, []);
    const rep = earn({ callsToCounterpartToday: 6 });
    assert.deepEqual(rep.flags, ['repeat-counterpart']);
    assert.equal(rep.held, true);
    assert.equal(rep.amountMicros, 300_000, 'held, not zeroed');
    const lowTalk = earn({ counterpartEnrolled: true, talkSeconds: 50 }); // 50/120 < 0.5
    assert.deepEqual(lowTalk.flags, ['farming']);
    assert.equal(lowTalk.held, true);
    assert.deepEqual(earn({ counterpartEnrolled: true, talkSeconds: 60 }).flags, []);
    assert.deepEqual(earn({ counterpartEnrolled: true, talkSeconds: 60, callsToCounterpartToday: 4 }).flags, ['farming']);
    assert.deepEqual(earn({ counterpartEnrolled: false, talkSeconds: 50, callsToCounterpartToday: 4 }).flags, [], 'farming needs an enrolled pair');
  });

  test('utcDay: the UTC calendar day of the answer', () => {
    assert.equal(utcDay(Date.UTC(2025, 0, 1, 23, 59, 50)), '2025-01-01');
    assert.equal(utcDay(Date.UTC(2025, 0, 2, 0, 0, 0)), '2025-01-02');
  });

  test('property: integer, never above rate × own seconds, never above what is left of the cap', () => {
    fc.assert(
      fc.property(
        fc.record({
          billableSeconds: fc.integer({ min: 0, max: 20_000 }),
          talkSeconds: fc.integer({ min: 0, max: 20_000 }),
          counterpartEnrolled: fc.boolean(),
          earnedTodayMicros: fc.integer({ min: 0, max: 40_000_000 }),
          callsToCounterpartToday: fc.integer({ min: 1, max: 10 }),
          providerDurationSeconds: fc.option(fc.integer({ min: 0, max: 30_000 }), { nil: undefined }),
        }),
        (m) => {
          const r = computeEarning(m, config);
          assert.ok(Number.isSafeInteger(r.amountMicros) && r.amountMicros >= 0);
          assert.ok(r.paidSeconds <= m.billableSeconds);
          assert.ok(r.amountMicros <= Math.floor((r.rateMicrosPerMinute * m.billableSeconds) / 60));
          assert.ok(r.amountMicros <= Math.max(0, config.dailyCapMicros - m.earnedTodayMicros));
          assert.equal(r.held, r.flags.some((f) => f !== 'capped'));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
