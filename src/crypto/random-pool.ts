/**
 * Unpredictable public values (ids, SIP tags and branches, IVs) cut from a pooled CSPRNG buffer.
 *
 * Why: every `crypto.randomBytes` call crosses into OpenSSL and allocates a buffer: ~2 µs alone, more under load,
 * and a call setup asks for eight of them (profiled in `monologue-load cps`: ~3% of the service's CPU). Drawing
 * 4 KiB at once and slicing it gives the same CSPRNG output for ~0.2 µs a value. A pool is never rewritten: a
 * refill allocates a new one, so a slice handed out stays what it was.
 *
 * Only for values that are sent or stored in the clear anyway. Keys and bearer tokens keep their own
 * `randomBytes` call, so no secret ever shares memory with values the process hands out.
 */
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
/** Larger requests go straight to `randomBytes`: they are rare and would waste the pool. */
const MAX_POOLED = 64;

let pool = Buffer.alloc(0);
let offset = 0;

/** `n` random bytes (a view into the pool: read it, do not write to it). */
export function publicRandomBytes(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`publicRandomBytes: ${n} is not a byte count`);
  if (n > MAX_POOLED) return randomBytes(n);
  if (offset + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

/** `n` random bytes as lowercase hex (2n characters). */
export function publicRandomHex(n: number): string {
  return publicRandomBytes(n).toString('hex');
}
