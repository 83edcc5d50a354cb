
/** Times are integer milliseconds since the epoch, from the server's clock. Booleans are 0/1. */
export interface UsersTable {
  id: string;
  phone_hash: string;
  phone_cipher: string;
  enrolled: number;
  created_at: number;
  /** Recording consent: the version of the text the user accepted, and when; null = none. */
  consent_version: string | null;
  consent_at: number | null;
  /** Set when the user deleted their account: the row stays (the ledger refers to it) without personal data. */
  deleted_at: number | null;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export interface CallsTable {
  id: string;
  user_id: string;
  direction: 'outbound' | 'inbound';
  counterpart_hash: string;
  counterpart_cipher: string;
  sip_call_id: string | null;
  created_at: number;
  ringing_at: number | null;
  answered_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
  sip_status: number | null;
  /** Why a call of an enrolled user was not recorded (`no-consent`, `no-key`, `failed`), or null. */
  recording_note: string | null;
  /** The trunk provider's own duration for the call (from its signed webhook), seconds. */
  provider_duration_s: number | null;
  provider_call_id: string | null;
}

export type LedgerEntryType = 'call_credit' | 'adjustment' | 'reversal' | 'payout';
export type LedgerState = 'pending' | 'available' | 'paid';

/** Append-only: amounts never change; only `state` moves forward (pending → available → paid). */
export interface LedgerEntriesTable {
  id: string;
  user_id: string;
  call_id: string | null;
  type: LedgerEntryType;
  state: LedgerState;
  /** Integer micro-units of currency (1 USD = 1,000,000). */
  amount_micros: number;
  /** Unique: (call, entry type) for call entries, so retries and races credit a call at most once. */
  idem_key: string;
  memo: string | null;
  created_at: number;
}

export type SettlementState = 'credited' | 'held' | 'released' | 'rejected' | 'unpaid';

/** How a call was judged for payment: one row per call, the reasons kept. */
export interface SettlementsTable {
  call_id: string;
  user_id: string;
  /** UTC calendar day (YYYY-MM-DD) of the answer, for the daily cap. */
  day: string;
  billable_s: number;
  talk_s: number;
  rate_micros_per_min: number;
  amount_micros: number;
  state: SettlementState;
  /** JSON array of flag codes (`silent`, `repeat-counterpart`, `farming`, `duration-mismatch`, …). */
  flags: string;
  created_at: number;
  reviewed_at: number | null;
  reviewer: string | null;
}

export interface WebhookEventsTable {
  provider: string;
  event_id: string;
  received_at: number;
  call_ref: string | null;
}

export type RecordingState = 'recording' | 'complete' | 'incomplete' | 'failed' | 'deleted';

export interface RecordingsTable {
  id: string;
  /** The Monologue node recording it: only that node may declare it interrupted. */
  node_id: string | null;
  call_id: string;
  user_id: string;
  state: RecordingState;
  chunk_count: number;
  duration_ms: number;
  talk_ms: number;
  /** The per-recording secrets, wrapped by the key-encryption key `kek_id`; null once shredded. */
  wrapped_key: string | null;
  kek_id: string | null;
  created_at: number;
  ended_at: number | null;
  failure: string | null;
  /** When it was crypto-shredded (state `deleted`). */
  deleted_at: number | null;
  /** When a shredded recording's objects were confirmed removed; null while that is still owed (src/recordings/shred.ts). */
  objects_purged_at: number | null;
}

/** One link of the hash-chained audit log: hash = SHA-256(prev_hash ‖ canonical entry) (src/audit). */
export interface AuditLogTable {
  seq: number;
  at: number;
  actor: string;
  action: string;
  /** Whose data the event is about. */
  user_id: string | null;
  recording_id: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

/** The chain's last link (one row, id 1): a deleted tail shows as a head that no entry reaches. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/** A short-lived right to read one recording, bound to (user, recording, purpose); the token is stored hashed. */
export interface GrantsTable {
  id: string;
  token_hash: string;
  user_id: string;
  recording_id: string;
  purpose: 'play' | 'download';
  created_at: number;
  expires_at: number;
  requests: number;
  bytes_served: number;
  /** When the grant stopped serving and its read was audited; null while usable. */
  closed_at: number | null;
}

/** Consent history: every grant and withdrawal, kept for the user's export. version null = withdrawn. */
export interface ConsentEventsTable {
  id: string;
  user_id: string;
  version: string | null;
  at: number;
}

export type EventType = 'call.ended' | 'recording.completed' | 'recording.failed' | 'recording.deleted' | 'earnings.updated' | 'payout.updated';

/** The outgoing-event outbox (src/events): written with the change it reports, delivered at least once. */
export interface EventsTable {
  /** `evt_…`, random, stable across retries: the `webhook-id` the receiver dedupes on. */
  id: string;
  type: EventType;
  /** JSON: ids and figures only, never phone numbers, tokens or keys. */
  payload: string;
  created_at: number;
  attempts: number;
  /** When the next attempt is due; a claimed row is pushed ahead by the lease. Null once delivered or failed. */
  next_attempt_at: number | null;
  delivered_at: number | null;
  /** When retries were given up (events.maxRetryHours). */
  failed_at: number | null;
  last_error: string | null;
}

export interface Tables {
  events: EventsTable;
  users: UsersTable;
  sessions: SessionsTable;
  calls: CallsTable;
  recordings: RecordingsTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  grants: GrantsTable;
  consent_events: ConsentEventsTable;
  ledger_entries: LedgerEntriesTable;
  settlements: SettlementsTable;
  webhook_events: WebhookEventsTable;
}
