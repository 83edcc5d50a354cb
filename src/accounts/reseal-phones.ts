import type { Db } from '../db/database.js';
import type { PhoneVault } from '../crypto/phone-vault.js';

/** Every column that holds a phone ciphertext, with the row id it is bound to. */
const SEALED_COLUMNS = [
  { table: 'users', column: 'phone_cipher' },
  { table: 'calls', column: 'counterpart_cipher' },
] as const;

/**
 * Data migration after schema migrations: phone ciphertexts written before they were bound to their
 * row (format v1) are sealed again for their row (v2). It needs the phone key, which the SQL
 * migrations never see, so it runs where the key is opened. Idempotent: v2 rows are left alone, and
 * two nodes doing it at once write equally valid values.
 */
export async function resealLegacyPhones(db: Db, vault: PhoneVault): Promise<number> {
  let n = 0;
  for (const { table, column } of SEALED_COLUMNS) {
    const rows = await db.selectFrom(table).select(['id', `${column} as sealed`]).where(column, 'like', 'v1.%').execute();
    for (const row of rows) {
      const next = vault.reseal(row.sealed, row.id);
      if (!next) continue;
      await db.updateTable(table).set({ [column]: next }).where('id', '=', row.id).where(column, '=', row.sealed).execute();
      n++;
    }
  }
  return n;
}
