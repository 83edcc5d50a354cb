import type { Config } from '../config/load.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../log.js';
import type { Users } from '../accounts/users.js';
import type { Tokens } from '../accounts/tokens.js';
import type { PhoneVault } from '../crypto/phone-vault.js';
import type { Keyring } from '../crypto/kek.js';
import type { RecordingCatalog } from '../recordings/catalog.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Spool } from '../storage/spool.js';
import type { Ledger } from '../payouts/ledger.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { EventSink } from '../events/outbox.js';
import type { Grants } from '../recordings/grants.js';

/**
 * What the running service must do when an API call changes a user's standing: the API layer declares
 * it, service.ts implements it (calls and sockets live there, not here).
 */
export interface LiveControl {
  /**
   * Stop every live recording of this user now (`recording.stopped` reason `consent-revoked`); their calls
   * go on. Resolves when those recordings are finished. Call it after the withdrawal is committed.
   */
  consentRevoked(userId: string): Promise<void> | void;
  /** These sessions were revoked: close their sockets now (their calls end with them). */
  sessionsRevoked(sessionIds: readonly string[]): void;
}

/** Everything the /v1 and admin routes reach. Each route uses what it needs. */
export interface ApiDeps {
  config: Config;
  log: Logger;
  db: Db;
  users: Users;
  tokens: Tokens;
  vault: PhoneVault;
  catalog: RecordingCatalog;
  objects: ObjectStore;
  spool: Spool;
  /** undefined when no key-encryption key can be opened: media and export of audio fail closed. */
  keyring: Keyring | undefined;
  ledger: Ledger;
  audit: AuditLog;
  grants: Grants;
  live: LiveControl;
  /** The server's clock; tests move it to expire grants. */
  now: () => number;
  /** The outgoing-event outbox (src/events); absent or a no-op while events.url is empty. */
  events?: EventSink;
}
