import type { Db } from '../db/database.js';
import type { PhoneVault } from '../crypto/phone-vault.js';
import { normaliseE164 } from '../phone-number.js';
import { MonologueError } from '../errors.js';
import { newId } from '../ids.js';

export interface User {
  id: string;
  phone: string;
  enrolled: boolean;
  createdAt: number;
}

export interface Users {
  create(input: { phone: string; enrolled: boolean }): Promise<User>;
  byId(id: string): Promise<User | undefined>;
  byPhone(e164: string): Promise<User | undefined>;
}

export function createUsers(db: Db, vault: PhoneVault): Users {
  const toUser = (row: { id: string; phone_cipher: string; enrolled: number; created_at: number }): User => ({
    id: row.id,
    phone: vault.open(row.phone_cipher),
    enrolled: row.enrolled === 1,
    createdAt: Number(row.created_at),
  });
  return {
    async create({ phone, enrolled }) {
      const e164 = normaliseE164(phone);
      if (!e164) throw new MonologueError('PHONE_INVALID', `"${phone}" is not an E.164 number; write it as + then country code and number, e.g. +15550001111`);
      const hash = vault.hash(e164);
      const existing = await db.selectFrom('users').select('id').where('phone_hash', '=', hash).executeTakeFirst();
      if (existing) throw new MonologueError('PHONE_TAKEN', 'a user with this phone number already exists');
      const user = { id: newId('usr'), phone: e164, enrolled, createdAt: Date.now() };
      await db
        .insertInto('users')
        .values({ id: user.id, phone_hash: hash, phone_cipher: vault.seal(e164), enrolled: enrolled ? 1 : 0, created_at: user.createdAt })
        .execute();
      return user;
    },
    async byId(id) {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toUser(row) : undefined;
    },
    async byPhone(e164) {
      const row = await db.selectFrom('users').selectAll().where('phone_hash', '=', vault.hash(e164)).executeTakeFirst();
      return row ? toUser(row) : undefined;
    },
  };
}
