/** What the legs share with the endpoint that created them. Internal to src/sip. */
import type { Logger } from '../log.js';
import type { DialogContext, DialogOwner, TargetPolicy, Transport } from './dialog.js';
import type { SessionTimerConfig } from './session-timer.js';
import type { DigestModule, SipModule, SipStack } from './sip-types.js';

export interface SipCore {
  readonly sip: SipModule;
  readonly stack: SipStack;
  readonly digest: DigestModule;
  readonly log: Logger;
  readonly sessionTimers: SessionTimerConfig;
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

/** What a leg's dialog needs, from the core. */
export function dialogContext(core: SipCore, log: Logger, transport: Transport, policy: TargetPolicy): DialogContext {
  return {
    sip: core.sip,
    stack: core.stack,
    digest: core.digest,
    log,
    contact: core.contact(transport),
    transport,
    policy,
    register: (k, o) => core.addDialog(k, o),
    unregister: (k) => core.removeDialog(k),
  };
}

/** Run `fn`; log (at warn, without message content) instead of throwing. */
export function guarded(log: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, `sip: ${what} failed`);
  }
}
