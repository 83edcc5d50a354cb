import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { WebhookCodes, WebhookError, type ProviderAdapter, type SignedRequest, type WebhookEvent } from './event.js';
import {
  CALL_REF_HEADER, checkFreshness, isRecord, optionalDate, optionalSeconds, optionalString, parseJsonObject,
  parseTimestamp, requiredHeader, requiredId,
} from './signing.js';

export const TELNYX_SIGNATURE_HEADER = 'telnyx-signature-ed25519';
export const TELNYX_TIMESTAMP_HEADER = 'telnyx-timestamp';

/**
 * Telnyx-style Call Control webhooks: JSON, signed with Ed25519 over `${telnyx-timestamp}|${raw body}`,
 * the signature base64 in `telnyx-signature-ed25519`; the timestamp must be within the tolerance.
 */
export function telnyxAdapter(publicKey: string, toleranceSeconds: number): ProviderAdapter {
  const key = telnyxPublicKey(publicKey);
  return {
    provider: 'telnyx',
    accept(request: SignedRequest): WebhookEvent {
      const signatureB64 = requiredHeader(request, TELNYX_SIGNATURE_HEADER);
      const timestampRaw = requiredHeader(request, TELNYX_TIMESTAMP_HEADER);
      const signature = Buffer.from(signatureB64, 'base64');
      const signed = Buffer.concat([Buffer.from(`${timestampRaw}|`, 'utf8'), request.rawBody]);
      // Ed25519 signatures are 64 bytes; verify() itself runs in time independent of where a forgery differs.
      if (signature.length !== 64 || !verify(null, signed, key, signature)) {
        throw new WebhookError(WebhookCodes.signature, `${TELNYX_SIGNATURE_HEADER} does not verify for this timestamp and body`);
      }
      checkFreshness(parseTimestamp(timestampRaw, TELNYX_TIMESTAMP_HEADER), request.nowMs, toleranceSeconds);
      return telnyxEvent(parseJsonObject(request.rawBody));
    },
  };
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The configured key: base64 of the raw 32-byte Ed25519 key (as the Telnyx portal shows it), base64 SPKI DER, or PEM. */
export function telnyxPublicKey(configured: string): KeyObject {
  const text = configured.trim();
  try {
    if (text.startsWith('-----BEGIN')) return ed25519(createPublicKey(text));
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length === 32) return ed25519(createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, bytes]), format: 'der', type: 'spki' }));
    return ed25519(createPublicKey({ key: bytes, format: 'der', type: 'spki' }));
  } catch (err) {
    throw new WebhookError(WebhookCodes.badConfig, 'webhooks.telnyx.publicKey is not an Ed25519 public key (base64 of 32 bytes, base64 SPKI DER or PEM)', { cause: err });
  }
}

function ed25519(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not ed25519 but ${key.asymmetricKeyType}`);
  return key;
}

function telnyxEvent(body: Record<string, unknown>): WebhookEvent {
  const data = body.data;
  if (!isRecord(data)) throw new WebhookError(WebhookCodes.badBody, 'data is missing');
  const payload = isRecord(data.payload) ? data.payload : {};
  const event: WebhookEvent = {
    provider: 'telnyx',
    eventId: requiredId(data.id, 'data.id'),
    type: requiredId(data.event_type, 'data.event_type'),
  };
  const providerCallId = optionalString(payload.call_control_id, 'data.payload.call_control_id')
    ?? optionalString(payload.call_session_id, 'data.payload.call_session_id');
  if (providerCallId !== undefined) event.providerCallId = providerCallId;
  const sipCallId = optionalString(payload.sip_call_id, 'data.payload.sip_call_id');
  if (sipCallId !== undefined) event.sipCallId = sipCallId;
  const callRef = headerValue(payload.sip_headers) ?? headerValue(payload.custom_headers);
  if (callRef !== undefined) event.callRef = callRef;
  const status = optionalString(payload.state, 'data.payload.state') ?? optionalString(payload.hangup_cause, 'data.payload.hangup_cause');
  if (status !== undefined) event.status = status;
  const duration = optionalSeconds(payload.call_duration, 'data.payload.call_duration');
  if (duration !== undefined) event.durationSeconds = duration;
  const occurredAt = optionalDate(data.occurred_at);
  if (occurredAt !== undefined) event.occurredAt = occurredAt;
  return event;
}

/** `X-Monologue-Call` from a Telnyx `[{ name, value }]` header list. */
function headerValue(list: unknown): string | undefined {
  if (!Array.isArray(list)) return undefined;
  const wanted = CALL_REF_HEADER.toLowerCase();
  for (const item of list) {
    if (isRecord(item) && typeof item.name === 'string' && item.name.toLowerCase() === wanted) {
      return optionalString(item.value, CALL_REF_HEADER);
    }
  }
  return undefined;
}
