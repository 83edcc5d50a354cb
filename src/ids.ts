import { randomBytes } from 'node:crypto';

/** Unguessable identifiers: 128 random bits, URL-safe. A prefix says what the id names. */
export function newId(prefix: 'usr' | 'ses' | 'call' | 'rec' | 'aud' | 'evt'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}
