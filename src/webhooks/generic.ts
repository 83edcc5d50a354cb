import { createHmac } from 'node:crypto';
import { WebhookCodes, WebhookError, type ProviderAdapter, type SignedRequest, type WebhookEvent } from './event.js';
import {
  checkFreshness, optionalSeconds, optionalString, parseJsonObject, parseTimestamp, requiredHeader, requiredId, safeEqual,
} from './signing.js';

export const GENERIC_SIGNATURE_HEADER = 'x-monologue-signature';
export const GENERIC_TIMESTAMP_HEADER = 'x-monologue-timestamp';

/**
 * Our own scheme for any other trunk: `x-monologue-signature` = hex HMAC-SHA256(secret, `${x-monologue-timestamp}.${raw body}`),
 * JSON body `{ id, type, sipCallId?, callRef?, durationSeconds?, status? }`.
 */
export function genericAdapter(secret: string, toleranceSeconds: number): ProviderAdapter {
  return {
    provider: 'generic',
    accept(request: SignedRequest): WebhookEvent {
      const signatureHex = requiredHeader(request, GENERIC_SIGNATURE_HEADER);
      const timestampRaw = requiredHeader(request, GENERIC_TIMESTAMP_HEADER);
      const expected = genericSignature(secret, timestampRaw, request.rawBody);
      const given = /^[0-9a-f]{64}$/i.test(signatureHex) ? Buffer.from(signatureHex, 'hex') : Buffer.alloc(0);
      if (!safeEqual(given, expected)) {
        throw new WebhookError(WebhookCodes.signature, `${GENERIC_SIGNATURE_HEADER} does not match the timestamp and body`);
      }
      const timestamp = parseTimestamp(timestampRaw, GENERIC_TIMESTAMP_HEADER);
      checkFreshness(timestamp, request.nowMs, toleranceSeconds);
      return genericEvent(parseJsonObject(request.rawBody), timestamp);
    },
  };
}

/** The raw HMAC-SHA256 digest a sender puts, hex-encoded, in `x-monologue-signature`. */
export function genericSignature(secret: string, timestamp: string, rawBody: Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(rawBody).digest();
}

function genericEvent(body: Record<string, unknown>, timestampSeconds: number): WebhookEvent {
  const event: WebhookEvent = {
    provider: 'generic',
    eventId: requiredId(body.id, 'id'),
    type: requiredId(body.type, 'type'),
    occurredAt: timestampSeconds * 1000,
  };
  const sipCallId = optionalString(body.sipCallId, 'sipCallId');
  if (sipCallId !== undefined) event.sipCallId = sipCallId;
  const callRef = optionalString(body.callRef, 'callRef');
  if (callRef !== undefined) event.callRef = callRef;
  const status = optionalString(body.status, 'status');
  if (status !== undefined) event.status = status;
  const duration = optionalSeconds(body.durationSeconds, 'durationSeconds');
  if (duration !== undefined) event.durationSeconds = duration;
  return event;
}
