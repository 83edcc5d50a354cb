import type { Db } from '../db/database.js';
import { prepare, type SlotOf } from '../db/prepared.js';
import type { PhoneVault } from '../crypto/phone-vault.js';
import { normaliseE164 } from '../phone-number.js';
import { MonologueError } from '../errors.js';
import { newId } from '../ids.js';
import { changeConsent, recordInitialConsent } from './consent.js';

export interface User {
  id: string;
  phone: string;
  enrolled: boolean;
  createdAt: number;
  /** Recording consent; undefined when the user has not consented (or withdrew). */
  consent?: { version: string; at: number };
}

export interface Users {
  create(input: { phone: string; enrolled: boolean; consentVersion?: string }): Promise<User>;
  /** Record consent to recording under a policy version, or withdraw it with null (kept in the history: consent.ts). */
  setConsent(userId: string, version: string | null): Promise<User>;
  byId(id: string): Promise<User | undefined>;
  byPhone(e164: string): Promise<User | undefined>;
}

export function createUsers(db: Db, vault: PhoneVault): Users {
  const toUser = (row: { id: string; phone_cipher: string; enrolled: number; created_at: number; consent_version: string | null; consent_at: number | null }): User => ({
    id: row.id,
    phone: vault.open(row.phone_cipher, row.id),
    enrolled: row.enrolled === 1,
    createdAt: Number(row.created_at),
    ...(row.consent_version !== null && { consent: { version: row.consent_version, at: Number(row.consent_at) } }),
  });
  // An erased account (DELETE /v1/me, src/accounts/erase.ts) is no user any more: its row only anchors ledger and audit entries.
  // Every call setup reads its owner: built and compiled once (see db/prepared.ts).
  const userById = prepare(db, (slot: SlotOf<{ id: string }>) =>
    db.selectFrom('users').selectAll().where('id', '=', slot('id')).where('deleted_at', 'is', null),
  );
  const byId = async (id: string) => {
    const row = (await userById.execute({ id })).rows[0];
    return row ? toUser(row) : undefined;
  };
  return {
    async create({ phone, enrolled, consentVersion }) {
      const e164 = normaliseE164(phone);
      if (!e164) throw new MonologueError('PHONE_INVALID', `"${phone}" is not an E.164 number; write it as + then country code and number, e.g. +15550001111`);
      const hash = vault.hash(e164);
      const existing = await db.selectFrom('users').select('id').where('phone_hash', '=', hash).executeTakeFirst();
      if (existing) throw new MonologueError('PHONE_TAKEN', 'a user with this phone number already exists');
      const now = Date.now();
      const user: User = { id: newId('usr'), phone: e164, enrolled, createdAt: now, ...(consentVersion && { consent: { version: consentVersion, at: now } }) };
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('users')
          .values({
            id: user.id,
            phone_hash: hash,
            phone_cipher: vault.seal(e164, user.id),
            enrolled: enrolled ? 1 : 0,
            created_at: now,
            consent_version: consentVersion ?? null,
            consent_at: consentVersion ? now : null,
          })
          .execute();
        // Consent given at sign-up opens the history like any later change.
        if (consentVersion) await recordInitialConsent(tx, user.id, consentVersion, now);
      });
      return user;
    },
    async setConsent(userId, version) {
      await changeConsent(db, userId, version, Date.now());
      const user = await byId(userId);
      if (!user) throw new MonologueError('USER_NOT_FOUND', `no user with id ${userId}`);
      return user;
    },
    byId,
    async byPhone(e164) {
      const row = await db.selectFrom('users').selectAll().where('phone_hash', '=', vault.hash(e164)).where('deleted_at', 'is', null).executeTakeFirst();
      return row ? toUser(row) : undefined;
    },
  };
}
