/**
 * Server → client messages of `/v1/signal`, as types only. Kept apart from protocol.ts (typebox schemas
 * and the parser) so the dialer page can import them without pulling the server's dependencies into
 * the browser build: a type-only import is erased there.
 */
import type { EndReason, RecordingStopReason } from '../calls/ports.js';

export type ServerMessage =
  | { type: 'ready'; userId: string }
  | { type: 'call.created'; ref: string; callId: string }
  | { type: 'call.ringing'; callId: string }
  | { type: 'call.answered'; callId: string; sdp: string }
  /** Early media: apply this WebRTC answer now; `call.answered` follows without a new SDP negotiation (its sdp is the same). */
  | { type: 'call.progress'; callId: string; sdp: string }
  | { type: 'call.held'; callId: string }
  | { type: 'call.resumed'; callId: string }
  | { type: 'call.incoming'; callId: string; from: string; sdp: string }
  | { type: 'call.ended'; callId: string; reason: EndReason }
  | { type: 'error'; code: string; message: string; ref?: string }
  | { type: 'recording.started'; callId: string }
  | { type: 'recording.stopped'; callId: string; reason: RecordingStopReason }
  /** The owner's `recording.pause` / `recording.resume` took effect (also when repeated). */
  | { type: 'recording.paused'; callId: string }
  | { type: 'recording.resumed'; callId: string }
  | { type: 'earnings.updated'; callId: string; amountMicros: number; state: string }
  | { type: 'pong' };
