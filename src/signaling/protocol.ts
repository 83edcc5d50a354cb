import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DTMF_DIGITS } from '../calls/ports.js';

/** Client → server messages of `/v1/signal`. Anything else is answered with an `error`. */
const Sdp = Type.String({ minLength: 10, maxLength: 16384 });
const CallId = Type.String({ minLength: 1, maxLength: 64 });

export const ClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('auth'), token: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('call.start'),
      ref: Type.String({ minLength: 1, maxLength: 64 }),
      to: Type.String({ minLength: 1, maxLength: 32 }),
      sdp: Sdp,
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('call.hangup'), callId: CallId }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('call.accept'), callId: CallId, sdp: Sdp }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('call.reject'), callId: CallId }, { additionalProperties: false }),
  // Digits the dialer pressed; sent to the trunk as RFC 4733 events. Bounded so one message cannot hold the line.
  Type.Object(
    { type: Type.Literal('call.dtmf'), callId: CallId, digits: Type.String({ minLength: 1, maxLength: 32, pattern: DTMF_DIGITS.source }) },
    { additionalProperties: false },
  ),
  // The owner pauses / resumes the recording of their own call (paused time is neither kept nor paid).
  Type.Object({ type: Type.Literal('recording.pause'), callId: CallId }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('recording.resume'), callId: CallId }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false }),
]);
export type ClientMessage = Static<typeof ClientMessage>;

/** Server → client messages: pure types in ./messages.ts, which the dialer page imports too. */
export type { ServerMessage } from './messages.js';

export const KNOWN_TYPES = new Set(['auth', 'call.start', 'call.hangup', 'call.accept', 'call.reject', 'call.dtmf', 'recording.pause', 'recording.resume', 'ping']);

const check = TypeCompiler.Compile(ClientMessage);
const checkByType = new Map(ClientMessage.anyOf.map((s) => [s.properties.type.const as string, TypeCompiler.Compile(s)]));

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; code: string; message: string; ref?: string };

/** Parse and validate one text frame; the error says what was wrong in words a client author can fix. */
export function parseClientMessage(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'BAD_JSON', message: 'messages must be JSON objects' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'BAD_MESSAGE', message: 'messages must be JSON objects with a "type"' };
  }
  const obj = value as Record<string, unknown>;
  const ref = typeof obj.ref === 'string' && obj.ref.length <= 64 ? obj.ref : undefined;
  if (typeof obj.type !== 'string' || !KNOWN_TYPES.has(obj.type)) {
    return { ok: false, code: 'UNKNOWN_TYPE', message: `unknown message type ${JSON.stringify(String(obj.type)).slice(0, 40)}; see the protocol in the README`, ref };
  }
  if (check.Check(value)) return { ok: true, message: value };
  // Report the first problem inside the branch that matches this type, not the union's noise.
  const first = checkByType.get(obj.type)?.Errors(value).First();
  const where = first?.path ? first.path.slice(1) : 'message';
  return { ok: false, code: 'BAD_MESSAGE', message: `${obj.type}: "${where}" ${first?.message ?? 'is invalid'}`, ref };
}
