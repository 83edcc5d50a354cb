import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { prepare, type SlotOf } from '../../src/db/prepared.js';
import { databaseKinds, withAccountStore } from '../helpers/db.js';

for (const [kind, fresh] of databaseKinds) {
  describe(`prepared queries on ${kind}`, () => {
    test('compiled once, run with fresh bound values each time (quotes stay data)', async () => {
      await withAccountStore(fresh, async ({ handle, users }) => {
        const owner = await users.create({ phone: '+15550001111', enrolled: false });
        const db = handle.db;
        // `direction` is a constant: it goes as a bound parameter with the value it had when compiled.
        const insertOut = prepare(db, (slot: SlotOf<{ id: string; user: string; at: number; hash: string }>) =>
          db.insertInto('calls').values({
            id: slot('id'),
            user_id: slot('user'),
            direction: 'outbound',
            counterpart_hash: slot('hash'),
            counterpart_cipher: 'x',
            created_at: slot('at'),
          }),
        );
        await insertOut.execute({ id: 'c0', user: owner.id, at: 5, hash: 'h0' });
        const good = prepare(db, (slot: SlotOf<{ id: string; user: string; dir: 'outbound' | 'inbound'; at: number; hash: string }>) =>
          db.insertInto('calls').values({
            id: slot('id'),
            user_id: slot('user'),
            direction: slot('dir'),
            counterpart_hash: slot('hash'),
            counterpart_cipher: slot('hash'),
            created_at: slot('at'),
          }),
        );
        const tricky = `x'); drop table calls; --`;
        await good.execute({ id: 'c1', user: owner.id, dir: 'outbound', at: 10, hash: tricky });
        await good.execute({ id: 'c2', user: owner.id, dir: 'inbound', at: 20, hash: 'plain' });
        const byUser = prepare(db, (slot: SlotOf<{ user: string; since: number }>) =>
          db.selectFrom('calls').select(['id', 'counterpart_hash', 'direction']).where('user_id', '=', slot('user')).where('created_at', '>=', slot('since')).orderBy('created_at'),
        );
        assert.deepEqual((await byUser.execute({ user: owner.id, since: 0 })).rows, [
          { id: 'c0', counterpart_hash: 'h0', direction: 'outbound' },
          { id: 'c1', counterpart_hash: tricky, direction: 'outbound' },
          { id: 'c2', counterpart_hash: 'plain', direction: 'inbound' },
        ]);
        assert.deepEqual((await byUser.execute({ user: owner.id, since: 15 })).rows.map((r) => r.id), ['c2']);
        assert.deepEqual((await byUser.execute({ user: 'usr_nobody', since: 0 })).rows, []);

        const unused = prepare(db, (slot: SlotOf<{ user: string; extra: number }>) => {
          slot('extra');
          return db.selectFrom('calls').select('id').where('user_id', '=', slot('user'));
        });
        await assert.rejects(unused.execute({ user: owner.id, extra: 1 }), /slot extra is not a parameter/);
      });
    });
  });
}
