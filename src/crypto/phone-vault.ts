import { createCipheriv, createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { publicRandomBytes } from './random-pool.js';
import { MonologueError } from '../errors.js';

/**
 * Phone numbers at rest (DESIGN §4 item 5): a keyed hash to look a number up, and an
 * AES-256-GCM ciphertext so its owner can be shown it. Neither reveals the number without the key.
 *
 * Each ciphertext is bound to the row that holds it (the row id is the associated data), so a
 * ciphertext copied into another user's or call's row does not open there: whoever can write the
 * table cannot make one user's number show up as another's.
 */
export interface PhoneVault {
  /** Deterministic lookup key for an E.164 number. */
  hash(e164: string): string;
  /** Encrypt for the row `rowId` (a user or call id). */
  seal(e164: string, rowId: string): string;
  /** Decrypt a ciphertext of row `rowId`; PHONE_SEAL_INVALID when it is not that row's. */
  open(sealed: string, rowId: string): string;
  /** A v1 ciphertext (no row binding, before migration 0005) sealed anew for its row; undefined if it is current. */
  reseal(sealed: string, rowId: string): string | undefined;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function createPhoneVault(masterKey: Buffer): PhoneVault {
  const hashKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'monologue phone hash v1', 32));
  const encKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'monologue phone seal v1', 32));

  const seal = (n: string, rowId: string): string => {
    // A GCM IV must be unique, not secret: a pooled CSPRNG draw (96 bits) is as good as its own call.
    const iv = publicRandomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', encKey, iv, { authTagLength: TAG_BYTES });
    c.setAAD(aad(rowId));
    const body = Buffer.concat([c.update(n, 'utf8'), c.final()]);
    return `v2.${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url')}`;
  };

  /** v1 had no associated data; v2 binds the row id. Both fix the tag length so a short tag is refused. */
  const decrypt = (sealed: string, rowId: string | undefined): string => {
    const dot = sealed.indexOf('.');
    const version = sealed.slice(0, dot);
    const buf = Buffer.from(sealed.slice(dot + 1), 'base64url');
    if (dot < 0 || (version === 'v2') === (rowId === undefined) || (version !== 'v1' && version !== 'v2') || buf.length < IV_BYTES + TAG_BYTES) {
      throw new MonologueError('PHONE_SEAL_INVALID', 'stored phone number has an unknown format');
    }
    const d = createDecipheriv('aes-256-gcm', encKey, buf.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    if (rowId !== undefined) d.setAAD(aad(rowId));
    d.setAuthTag(buf.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([d.update(buf.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
    } catch (err) {
      throw new MonologueError('PHONE_SEAL_INVALID', 'stored phone number does not decrypt with the configured phone key for this row', { cause: err });
    }
  };

  return {
    hash: (n) => createHmac('sha256', hashKey).update(n).digest('base64url'),
    seal,
    open: (sealed, rowId) => decrypt(sealed, rowId),
    reseal: (sealed, rowId) => (sealed.startsWith('v1.') ? seal(decrypt(sealed, undefined), rowId) : undefined),
  };
}

function aad(rowId: string): Buffer {
  return Buffer.from(`monologue phone row ${rowId}`, 'utf8');
}
