import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { createPhoneVault, type PhoneVault } from '../../src/crypto/phone-vault.js';
import { createUsers, type Users } from '../../src/accounts/users.js';
import { createCallRecords, type CallRecords } from '../../src/calls/records.js';

/** A database target for one test: a fresh SQLite file, or a fresh schema in the test PostgreSQL. */
export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  url: string;
  drop(): Promise<void>;
}

/** The PostgreSQL the test command found or started (scripts/test.sh); never skipped. */
export function testPostgresUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

export async function freshSqlite(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'monologue-db-'));
  return { name: 'sqlite', url: join(dir, 'test.db'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

export async function freshPostgres(): Promise<TestDatabase> {
  const base = testPostgresUrl();
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const sep = base.includes('?') ? '&' : '?';
  return {
    name: 'postgres',
    url: `${base}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

export const databaseKinds: Array<[string, () => Promise<TestDatabase>]> = [
  ['sqlite', freshSqlite],
  ['postgres', freshPostgres],
];

/** An opened fresh database with the account stores on it, closed and dropped after `fn`. */
export async function withAccountStore<T>(
  fresh: () => Promise<TestDatabase>,
  fn: (s: { handle: DatabaseHandle; vault: PhoneVault; users: Users; records: CallRecords }) => Promise<T>,
  vault: PhoneVault = createPhoneVault(randomBytes(32)),
): Promise<T> {
  const target = await fresh();
  const handle = await openDatabase(target.url);
  try {
    return await fn({ handle, vault, users: createUsers(handle.db, vault), records: createCallRecords(handle.db, vault) });
  } finally {
    await handle.close();
    await target.drop();
  }
}
