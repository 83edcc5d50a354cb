import type { Page } from 'playwright-core';
import type { ServerMessage } from '../../src/signaling/protocol.js';
import { until } from './until.js';

/** A server message as the page received it, with the Node-side arrival time. */
export interface LoggedMessage {
  at: number;
  msg: ServerMessage;
}

/**
 * Every `/v1/signal` frame the page receives, in order: tests check the order of events (early media
 * before the answer, the recording only after it) on the wire, not through the page's rendering.
 * Attach before the page connects.
 */
export function logServerMessages(page: Page): { messages: LoggedMessage[]; next(type: ServerMessage['type'], timeoutMs?: number): Promise<LoggedMessage> } {
  const messages: LoggedMessage[] = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', (frame) => {
      if (typeof frame.payload !== 'string') return;
      try {
        messages.push({ at: Date.now(), msg: JSON.parse(frame.payload) as ServerMessage });
      } catch {
        // not JSON: not ours
      }
    });
  });
  return {
    messages,
    async next(type, timeoutMs = 15_000) {
      let found: LoggedMessage | undefined;
      await until(`server message ${type}`, () => (found = messages.find((m) => m.msg.type === type)) !== undefined, timeoutMs);
      return found!;
    },
  };
}
