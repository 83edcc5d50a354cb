import { test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseKinds } from '../helpers/db.js';
import { openFixture, T0 } from './fixture.js';

/** Issue 10 item 2: time the owner paused the recording earns nothing. */
for (const [kind, fresh] of databaseKinds) {
  test(`${kind}: a paused minute of a two-minute call is not billable; the provider's full length is no mismatch`, async () => {
    const f = await openFixture(fresh);
    try {
      const u = await f.user();
      const whole = await f.settler.settle(f.input(u, await f.call(u), T0, 120, 60));
      const paused = await f.settler.settle(f.input(u, await f.call(u), T0, 120, 60, { pausedMs: 60_000, providerDurationSeconds: 120 }));
      assert.equal(whole.amountMicros, 300_000);
      assert.deepEqual({ ...paused, created: true }, { state: 'credited', amountMicros: 150_000, flags: [], created: true });
      const rows = await f.handle.db.selectFrom('settlements').select(['billable_s', 'amount_micros']).orderBy('amount_micros').execute();
      assert.deepEqual(rows.map((r) => [Number(r.billable_s), Number(r.amount_micros)]), [[60, 150_000], [120, 300_000]]);
    } finally {
      await f.close();
    }
  });
}
