import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CompiledQuery, sql } from 'kysely';
import { outboundTallyQuery } from '../../src/calls/records.js';
import { databaseKinds, withAccountStore } from '../helpers/db.js';

/** The daily caps' tally reads only the calls_user_day index (migration 0008) and still sums the same. */
for (const [kind, fresh] of databaseKinds) {
  describe(`daily tally on ${kind}`, () => {
    test('sums attempts and answered time of the day, leaving out the excepted calls', async () => {
      await withAccountStore(fresh, async ({ handle, users, records }) => {
        const user = await users.create({ phone: '+15550001111', enrolled: false });
        const other = await users.create({ phone: '+15550003333', enrolled: false });
        const day = 86_400_000 * 20_000;
        const mk = async (id: string, userId: string, direction: 'outbound' | 'inbound', createdAt: number) =>
          records.create({ id, userId, direction, counterpart: '+15550002222', createdAt });
        await mk('c_yesterday', user.id, 'outbound', day - 1);
        await mk('c_a', user.id, 'outbound', day + 10);
        await records.update('c_a', { answeredAt: day + 1_000, endedAt: day + 61_000, endReason: 'local-hangup' });
        await mk('c_live', user.id, 'outbound', day + 20);
        await records.update('c_live', { answeredAt: day + 100_000 });
        await mk('c_in', user.id, 'inbound', day + 30);
        await mk('c_other', other.id, 'outbound', day + 40);
        const now = day + 130_000;
        assert.deepEqual(await records.outboundTally(user.id, day, { now, maxCallMs: 3_600_000 }), { attempts: 2, answeredMs: 60_000 + 30_000 });
        assert.deepEqual(await records.outboundTally(user.id, day, { now, maxCallMs: 10_000 }), { attempts: 2, answeredMs: 60_000 + 10_000 }, 'an open call counts up to its maximum length');
        assert.deepEqual(await records.outboundTally(user.id, day, { now, maxCallMs: 3_600_000, except: ['c_live'] }), { attempts: 1, answeredMs: 60_000 });

        const compiled = outboundTallyQuery(handle.db, user.id, day, { now, maxCallMs: 3_600_000, except: ['c_live'] }).compile();
        if (handle.dialect === 'sqlite') {
          const plan = await handle.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
          const detail = plan.rows.map((r) => r.detail).join(' | ');
          assert.match(detail, /USING COVERING INDEX calls_user_day/, detail);
        } else {
          // A table this small is read whole unless the planner is told not to: the point is that it can use the index.
          const detail = await handle.db.connection().execute(async (conn) => {
            await sql`set enable_seqscan = off`.execute(conn);
            try {
              const plan = await conn.executeQuery<Record<string, string>>(CompiledQuery.raw(`explain ${compiled.sql}`, [...compiled.parameters]));
              return plan.rows.map((r) => Object.values(r)[0]).join(' | ');
            } finally {
              await sql`reset enable_seqscan`.execute(conn);
            }
          });
          assert.match(detail, /Index (Only )?Scan using calls_user_day/, detail);
        }
      });
    });
  });
}
