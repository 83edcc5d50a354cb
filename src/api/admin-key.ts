import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { MonologueError } from '../errors.js';

/**
 * The admin key: a bearer secret held by the app's backend. Only SHA-256(key) is configured
 * (`admin.keyHash`, hex). An unsalted hash is enough because keys are required to be long and random
 * (`--generate` makes 256-bit ones): there is no dictionary to run against the hash.
 */

/** Printable ASCII without spaces, as a bearer token can carry it; long enough to be unguessable. */
const KEY_SHAPE = /^[\x21-\x7e]{32,200}$/;
const KEY_PREFIX = 'mla_';

export function hashAdminKey(key: string): string {
  if (!KEY_SHAPE.test(key)) {
    throw new MonologueError('KEY_INVALID', 'an admin key is 32 to 200 printable characters without spaces; run "monologue admin hash-key --generate" for a strong one');
  }
  return createHash('sha256').update(key).digest('hex');
}

/** A new key: 32 random bytes, base64url, with a prefix the log scrubber knows. */
export function generateAdminKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * A checker for presented keys against the configured hash. Both sides are 32-byte digests, so
 * `timingSafeEqual` always compares equal lengths and the time does not depend on the key.
 */
export function adminKeyChecker(keyHash: string): (presented: string | undefined) => boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(keyHash)) {
    throw new MonologueError('CONFIG_INVALID', 'config key "admin.keyHash" must be 64 hex digits (SHA-256 of the admin key); "monologue admin hash-key" prints it');
  }
  const expected = Buffer.from(keyHash, 'hex');
  return (presented) => {
    const digest = createHash('sha256')
      .update(presented ?? '')
      .digest();
    // An absent key is still hashed and compared: its refusal takes the same time as a wrong one.
    return timingSafeEqual(digest, expected) && presented !== undefined;
  };
}
