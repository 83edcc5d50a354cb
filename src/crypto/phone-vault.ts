import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { MonologueError } from '../errors.js';

/**
 * Phone numbers at rest (DESIGN §4 item 5): a keyed hash to look a number up, and an
 * AES-256-GCM ciphertext so its owner can be shown it. Neither reveals the number without the key.
 */
export interface PhoneVault {
  /** Deterministic lookup key for an E.164 number. */
  hash(e164: string): string;
  seal(e164: string): string;
  open(sealed: string): string;
}

export function createPhoneVault(masterKey: Buffer): PhoneVault {
  const hashKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'monologue phone hash v1', 32));
  const encKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'monologue phone seal v1', 32));
  return {
    hash: (n) => createHmac('sha256', hashKey).update(n).digest('base64url'),
    seal(n) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', encKey, iv);
      const body = Buffer.concat([c.update(n, 'utf8'), c.final()]);
      return `v1.${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url')}`;
    },
    open(sealed) {
      const [version, data] = sealed.split('.');
      if (version !== 'v1' || !data) throw new MonologueError('PHONE_SEAL_INVALID', 'stored phone number has an unknown format');
      const buf = Buffer.from(data, 'base64url');
      const d = createDecipheriv('aes-256-gcm', encKey, buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(12, 28));
      try {
        return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
      } catch {
        throw new MonologueError('PHONE_SEAL_INVALID', 'stored phone number does not decrypt with the configured phone key');
      }
    },
  };
}
