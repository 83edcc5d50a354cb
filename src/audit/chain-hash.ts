import { createHash } from 'node:crypto';

/** The fields of an audit entry that its hash covers, in this order. */
export interface ChainedFields {
  seq: number;
  at: number;
  actor: string;
  action: string;
  userId: string | null;
  recordingId: string | null;
  detail: string | null;
}

/** The first entry's `prev_hash`. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * SHA-256(previous hash ‖ canonical entry), hex. The canonical form is a JSON array in a fixed field
 * order: no key order or whitespace to disagree on, and every field (nulls included) is bound.
 */
export function chainHash(prevHash: string, e: ChainedFields): string {
  const canonical = JSON.stringify([e.seq, e.at, e.actor, e.action, e.userId, e.recordingId, e.detail]);
  return createHash('sha256').update(prevHash, 'utf8').update(canonical, 'utf8').digest('hex');
}
