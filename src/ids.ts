import { publicRandomBytes } from './crypto/random-pool.js';

/** Unguessable identifiers: 128 random bits, URL-safe. A prefix says what the id names. */
export function newId(prefix: 'usr' | 'ses' | 'call' | 'rec' | 'aud' | 'evt' | 'led' | 'cev' | 'grt'): string {
  return `${prefix}_${publicRandomBytes(16).toString('base64url')}`;
}
