import type { EventEmitter } from 'node:events';
import type { Logger } from './log.js';

/**
 * Emit `event` so that a throwing listener breaks neither the emitter's own work nor the other listeners
 * (DESIGN §7: watchers such as metrics must change nothing in the logic they watch).
 */
export function safeEmit<T extends Record<keyof T, unknown[]>, K extends keyof T & string>(
  emitter: EventEmitter<T>,
  log: Logger | undefined,
  event: K,
  ...args: T[K]
): void {
  // rawListeners: calling a `once` wrapper also removes it, as emit() would.
  const listeners = (emitter as unknown as EventEmitter).rawListeners(event) as Array<(...a: T[K]) => void>;
  for (const listener of listeners) {
    try {
      listener(...args);
    } catch (err) {
      log?.error({ event, err }, 'event listener threw'); // the error itself: its stack stays in the log
    }
  }
}
