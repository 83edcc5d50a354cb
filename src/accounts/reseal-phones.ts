import type { Db } from '../db/database.js';
import type { PhoneVault } from '../crypto/phone-vault.js';

/**
 * Data migration after schema migrations: phone ciphertexts written before they were bound to their
 * row (format v1) are sealed again for their row (v2). It needs the phone key, which the SQL
 * migrations never see, so it runs where the key is opened. Idempotent: v2 rows are left alone, and
 * two nodes doing it at once write equally valid values.
 */
export async function resealLegacyPhones(db: Db, vault: PhoneVault): Promise<number> {
  let n = 0;
  const users = await db.selectFrom('users').select(['id', 'phone_cipher']).where('phone_cipher', 'like', 'v1.%').execute();
  for (const u of users) {
    const next = vault.reseal(u.phone_cipher, u.id);
    if (!next) continue;
    await db.updateTable('users').set({ phone_cipher: next }).where('id', '=', u.id).where('phone_cipher', '=', u.phone_cipher).execute();
    n++;
  }
  const calls = await db.selectFrom('calls').select(['id', 'counterpart_cipher']).where('counterpart_cipher', 'like', 'v1.%').execute();
  for (const c of calls) {
    const next = vault.reseal(c.counterpart_cipher, c.id);
    if (!next) continue;
    await db.updateTable('calls').set({ counterpart_cipher: next }).where('id', '=', c.id).where('counterpart_cipher', '=', c.counterpart_cipher).execute();
    n++;
  }
  return n;
}
