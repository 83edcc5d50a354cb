import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { createPhoneVault } from '../../src/crypto/phone-vault.js';
import { resealLegacyPhones } from '../../src/accounts/reseal-phones.js';
import { databaseKinds, withAccountStore } from '../helpers/db.js';

const key = randomBytes(32);

/** A ciphertext as releases before row binding wrote it: v1, no associated data. */
function legacySeal(n: string): string {
  const encKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'monologue phone seal v1', 32));
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', encKey, iv);
  const body = Buffer.concat([c.update(n, 'utf8'), c.final()]);
  return `v1.${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url')}`;
}

test('a sealed number opens only for the row it was sealed for', () => {
  const vault = createPhoneVault(key);
  const sealed = vault.seal('+15550001111', 'usr_a');
  assert.match(sealed, /^v2\./);
  assert.equal(vault.open(sealed, 'usr_a'), '+15550001111');
  assert.throws(() => vault.open(sealed, 'usr_b'), { code: 'PHONE_SEAL_INVALID' });
  assert.throws(() => createPhoneVault(randomBytes(32)).open(sealed, 'usr_a'), { code: 'PHONE_SEAL_INVALID' }, 'another key');
});

test('truncated tags, unknown versions and unbound legacy ciphertexts are refused', () => {
  const vault = createPhoneVault(key);
  const sealed = vault.seal('+15550001111', 'usr_a');
  const raw = Buffer.from(sealed.slice(3), 'base64url');
  // Keep the IV and 4 bytes of tag only: GCM would check a short tag unless its length is fixed.
  const shortTag = `v2.${raw.subarray(0, 16).toString('base64url')}`;
  assert.throws(() => vault.open(shortTag, 'usr_a'), { code: 'PHONE_SEAL_INVALID' });
  assert.throws(() => vault.open(`v9.${raw.toString('base64url')}`, 'usr_a'), { code: 'PHONE_SEAL_INVALID' });
  assert.throws(() => vault.open('garbage', 'usr_a'), { code: 'PHONE_SEAL_INVALID' });
  assert.throws(() => vault.open(legacySeal('+15550001111'), 'usr_a'), { code: 'PHONE_SEAL_INVALID' }, 'v1 opens only through reseal');
  assert.equal(vault.reseal(sealed, 'usr_a'), undefined, 'a current ciphertext is left alone');
});

for (const [kind, fresh] of databaseKinds) {
  describe(`legacy phone ciphertexts on ${kind}`, () => {
    test('are sealed again for their rows at start-up, and a copied ciphertext no longer opens', () =>
      withAccountStore(fresh, async ({ handle, vault, users, records }) => {
        const alice = await users.create({ phone: '+15550001111', enrolled: true });
        const bob = await users.create({ phone: '+15550003333', enrolled: true });
        await records.create({ id: 'call_1', userId: alice.id, direction: 'outbound', counterpart: '+15550002222', createdAt: 1 });
        // Rows as an older release left them.
        await handle.db.updateTable('users').set({ phone_cipher: legacySeal('+15550001111') }).where('id', '=', alice.id).execute();
        await handle.db.updateTable('calls').set({ counterpart_cipher: legacySeal('+15550002222') }).where('id', '=', 'call_1').execute();

        assert.equal(await resealLegacyPhones(handle.db, vault), 2);
        assert.equal(await resealLegacyPhones(handle.db, vault), 0, 'idempotent');
        assert.equal((await users.byId(alice.id))?.phone, '+15550001111');
        assert.equal((await records.get(alice.id, 'call_1'))?.counterpart, '+15550002222');

        // Someone with write access to the table copies Alice's ciphertext into Bob's row.
        const aliceRow = await handle.db.selectFrom('users').select('phone_cipher').where('id', '=', alice.id).executeTakeFirstOrThrow();
        assert.match(aliceRow.phone_cipher, /^v2\./);
        await handle.db.updateTable('users').set({ phone_cipher: aliceRow.phone_cipher }).where('id', '=', bob.id).execute();
        await assert.rejects(users.byId(bob.id), { code: 'PHONE_SEAL_INVALID' });
      }, createPhoneVault(key)));
  });
}
