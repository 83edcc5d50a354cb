/** What the legs share with the endpoint that created them. Internal to src/sip. */
import type { Logger } from '../log.js';
import type { DialogOwner, Transport } from './dialog.js';
import type { SipModule, SipStack } from './sip-types.js';

export interface SipCore {
  readonly sip: SipModule;
  readonly stack: SipStack;
  readonly log: Logger;
  /** Whether an address or URI host is an allowed source (where our in-dialog requests may go). */
  trusted(host: string): boolean;
  /** Our Contact URI for a transport. */
  contact(transport: Transport): string;
  addDialog(key: string, owner: DialogOwner): void;
  removeDialog(key: string): void;
  /** Legs register so `close()` can stop their timers. */
  track(leg: { shutdown(): void }): void;
  untrack(leg: { shutdown(): void }): void;
}

/** Run `fn`; log (at warn, without message content) instead of throwing. */
export function guarded(log: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, `sip: ${what} failed`);
  }
}
