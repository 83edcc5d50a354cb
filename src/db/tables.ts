
/** Times are integer milliseconds since the epoch, from the server's clock. Booleans are 0/1. */
export interface UsersTable {
  id: string;
  phone_hash: string;
  phone_cipher: string;
  enrolled: number;
  created_at: number;
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
}

export interface Tables {
  users: UsersTable;
  sessions: SessionsTable;
  calls: CallsTable;
}
