import type { Db } from '../db/database.js';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { LedgerEntry, Ledger } from '../payouts/ledger.js';
import { toSafeInt } from '../payouts/ledger.js';
import type { RecordingState } from '../db/tables.js';
import type { Settlement } from '../payouts/settle.js';
import { consentHistory, type ConsentEvent } from './consent.js';

/**
 * Everything held about one user, for their export (GET /v1/me/export), read in owner-filtered queries.
 * Calls come from the call history read model (calls/history.ts); the route adds the profile and the
 * recordings' grant URLs. Secrets stay out: no token hashes, wrapped keys, KEK ids or storage keys.
 */
export interface UserData {
  consent: ConsentEvent[];
  sessions: Array<{ id: string; createdAt: number; expiresAt: number; revokedAt: number | null }>;
  recordings: Array<{
    id: string;
    callId: string;
    state: RecordingState;
    chunkCount: number;
    durationMs: number;
    talkMs: number;
    createdAt: number;
    endedAt: number | null;
    deletedAt: number | null;
    /** It holds audio that can be served (finished, key present, not deleted). */
    readable: boolean;
  }>;
  ledger: LedgerEntry[];
  /** As the settler keeps them, with the export's clearer names for the two durations and no user id. */
  settlements: Array<Omit<Settlement, 'userId' | 'billableS' | 'talkS'> & { billableSeconds: number; talkSeconds: number }>;
}

export async function collectUserData(deps: { db: Db; ledger: Ledger }, userId: string): Promise<UserData> {
  const { db } = deps;
  const num = (v: number | null) => (v === null ? null : Number(v));
  const [consent, sessions, recordings, ledger, settlements] = await Promise.all([
    consentHistory(db, userId),
    db.selectFrom('sessions').select(['id', 'created_at', 'expires_at', 'revoked_at']).where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute(),
    db
      .selectFrom('recordings')
      .select(['id', 'call_id', 'state', 'chunk_count', 'duration_ms', 'talk_ms', 'created_at', 'ended_at', 'deleted_at', 'wrapped_key', 'kek_id'])
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute(),
    deps.ledger.entries(userId),
    db.selectFrom('settlements').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').orderBy('call_id', 'desc').execute(),
  ]);
  return {
    consent,
    sessions: sessions.map((s) => ({ id: s.id, createdAt: Number(s.created_at), expiresAt: Number(s.expires_at), revokedAt: num(s.revoked_at) })),
    recordings: recordings.map((r) => ({
      id: r.id,
      callId: r.call_id,
      state: r.state,
      chunkCount: Number(r.chunk_count),
      durationMs: Number(r.duration_ms),
      talkMs: Number(r.talk_ms),
      createdAt: Number(r.created_at),
      endedAt: num(r.ended_at),
      deletedAt: num(r.deleted_at),
      readable: r.wrapped_key !== null && r.kek_id !== null && r.deleted_at === null && (r.state === 'complete' || (r.state === 'incomplete' && Number(r.chunk_count) > 0)),
    })),
    ledger,
    settlements: settlements.map((s) => ({
      callId: s.call_id,
      day: s.day,
      billableSeconds: toSafeInt(s.billable_s, 'billable_s'),
      talkSeconds: toSafeInt(s.talk_s, 'talk_s'),
      rateMicrosPerMinute: toSafeInt(s.rate_micros_per_min, 'rate_micros_per_min'),
      amountMicros: toSafeInt(s.amount_micros, 'amount_micros'),
      state: s.state,
      flags: parseFlags(s.flags),
      createdAt: Number(s.created_at),
      reviewedAt: num(s.reviewed_at),
      reviewer: s.reviewer,
    })),
  };
}

/** Every audit entry about the user's data, newest first, read in pages. */
export async function auditAbout(audit: AuditLog, userId: string): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  let beforeSeq: number | undefined;
  for (;;) {
    const page = await audit.forUser(userId, { limit: 1000, ...(beforeSeq !== undefined && { beforeSeq }) });
    out.push(...page);
    if (page.length < 1000) return out;
    beforeSeq = page[page.length - 1]!.seq;
  }
}

function parseFlags(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
