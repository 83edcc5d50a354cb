import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '../../src/db/database.js';
import { createPhoneVault } from '../../src/crypto/phone-vault.js';
import { createUsers } from '../../src/accounts/users.js';
import { createTokens } from '../../src/accounts/tokens.js';
import { createCallRecords } from '../../src/calls/records.js';
import { databaseKinds } from '../helpers/db.js';

for (const [kind, fresh] of databaseKinds) {
  describe(`accounts on ${kind}`, () => {
    test('users, tokens and call records keep phone numbers only hashed and sealed', async () => {
      const target = await fresh();
      const handle = await openDatabase(target.url);
      try {
        const vault = createPhoneVault(randomBytes(32));
        const users = createUsers(handle.db, vault);
        let clock = 1_000_000;
        const tokens = createTokens(handle.db, () => clock);

        const alice = await users.create({ phone: '+1 (555) 000-1111', enrolled: true });
        assert.equal(alice.phone, '+15550001111');
        assert.match(alice.id, /^usr_[A-Za-z0-9_-]{22}$/);
        await assert.rejects(users.create({ phone: '+15550001111', enrolled: false }), { code: 'PHONE_TAKEN' });
        await assert.rejects(users.create({ phone: '555-0001', enrolled: false }), { code: 'PHONE_INVALID' });
        assert.equal((await users.byPhone('+15550001111'))?.id, alice.id);
        assert.equal(await users.byPhone('+15550009999'), undefined);

        const raw = await handle.db.selectFrom('users').selectAll().execute();
        const dump = JSON.stringify(raw);
        assert.ok(!dump.includes('5550001111'), 'the phone number is not stored in the clear');

        const issued = await tokens.issue(alice.id, 60_000);
        assert.match(issued.token, /^mlt_/);
        assert.equal(await tokens.verify(issued.token), alice.id);
        const sessions = JSON.stringify(await handle.db.selectFrom('sessions').selectAll().execute());
        assert.ok(!sessions.includes(issued.token), 'only the token hash is stored');
        assert.equal(await tokens.verify(issued.token + 'x'), undefined);
        assert.equal(await tokens.verify('not-a-token'), undefined);
        clock += 60_001;
        assert.equal(await tokens.verify(issued.token), undefined, 'expired');
        const second = await tokens.issue(alice.id, 60_000);
        assert.equal(await tokens.revoke(second.sessionId), true);
        assert.equal(await tokens.verify(second.token), undefined, 'revoked');
        assert.equal(await tokens.revoke(second.sessionId), false);
        await assert.rejects(tokens.issue('usr_nobody', 1000), { code: 'USER_NOT_FOUND' });

        const records = createCallRecords(handle.db, vault);
        await records.create({ id: 'call_x', userId: alice.id, direction: 'outbound', counterpart: '+15550002222', createdAt: 5 });
        await records.update('call_x', { ringingAt: 6, answeredAt: 7, endedAt: 8, endReason: 'remote-hangup', sipCallId: 'abc@h' });
        const rec = await records.get(alice.id, 'call_x');
        assert.deepEqual(
          { ...rec },
          { id: 'call_x', userId: alice.id, direction: 'outbound', counterpart: '+15550002222', sipCallId: 'abc@h', createdAt: 5, ringingAt: 6, answeredAt: 7, endedAt: 8, endReason: 'remote-hangup', sipStatus: null, recordingNote: null },
        );
        const bob = await users.create({ phone: '+15550003333', enrolled: false });
        assert.equal(await records.get(bob.id, 'call_x'), undefined, 'another owner reads nothing');
        assert.ok(!JSON.stringify(await handle.db.selectFrom('calls').selectAll().execute()).includes('5550002222'));
      } finally {
        await handle.close();
        await target.drop();
      }
    });
  });
}
