
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
}

export type RecordingState = 'recording' | 'complete' | 'incomplete' | 'failed';

export interface RecordingsTable {
  id: string;
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
}

export interface AuditTable {
  id: string;
  at: number;
  actor: string;
  action: string;
  recording_id: string | null;
  detail: string | null;
}

export interface Tables {
  users: UsersTable;
  sessions: SessionsTable;
  calls: CallsTable;
  recordings: RecordingsTable;
  audit: AuditTable;
}
