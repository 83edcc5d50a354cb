import { createHmac } from 'node:crypto';
import { WebhookCodes, WebhookError, type ProviderAdapter, type SignedRequest, type WebhookEvent } from './event.js';
import { CALL_REF_HEADER, optionalDate, optionalSeconds, optionalString, requiredHeader, requiredId, safeEqual } from './signing.js';

export const TWILIO_SIGNATURE_HEADER = 'X-Twilio-Signature';

/**
 * Twilio-style status callbacks: `application/x-www-form-urlencoded`, signed with
 * `X-Twilio-Signature` = base64(HMAC-SHA1(authToken, url + each POST parameter's name and value, sorted by name)).
 * The URL is the public one the provider posted to, query included. There is no signed timestamp:
 * replays are stopped by the event-id deduplication only.
 */
export function twilioAdapter(authToken: string): ProviderAdapter {
  return {
    provider: 'twilio',
    accept(request: SignedRequest): WebhookEvent {
      const signature = requiredHeader(request, TWILIO_SIGNATURE_HEADER);
      const params = formParams(request.rawBody);
      const expected = twilioSignature(authToken, request.url, params);
      if (!safeEqual(Buffer.from(signature, 'utf8'), Buffer.from(expected, 'utf8'))) {
        throw new WebhookError(WebhookCodes.signature, `${TWILIO_SIGNATURE_HEADER} does not match the URL and body`);
      }
      const contentType = request.headers['content-type'];
      if (typeof contentType !== 'string' || !/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
        throw new WebhookError(WebhookCodes.badBody, 'body must be application/x-www-form-urlencoded');
      }
      return twilioEvent(params);
    },
  };
}

/** The signature Twilio puts in `X-Twilio-Signature` for this URL and these POST parameters. */
export function twilioSignature(authToken: string, url: string, params: ReadonlyArray<readonly [string, string]>): string {
  // Sorted by name (code units, case-sensitive); repeated names keep a deterministic order by value.
  const sorted = [...params].sort(([an, av], [bn, bv]) => compare(an, bn) || compare(av, bv));
  const hmac = createHmac('sha1', authToken).update(url, 'utf8');
  for (const [name, value] of sorted) hmac.update(name, 'utf8').update(value, 'utf8');
  return hmac.digest('base64');
}

/** Form parameters, decoded (`+` is a space, `%XX` bytes), in body order. */
export function formParams(body: Buffer): Array<[string, string]> {
  return [...new URLSearchParams(body.toString('utf8'))];
}

function twilioEvent(pairs: Array<[string, string]>): WebhookEvent {
  const p = new Map<string, string>();
  let callRef: string | undefined;
  const refKey = `sipheader_${CALL_REF_HEADER.toLowerCase()}`;
  for (const [name, value] of pairs) {
    if (!p.has(name)) p.set(name, value);
    if (callRef === undefined && name.toLowerCase() === refKey) callRef = value;
  }
  const callSid = requiredId(p.get('CallSid'), 'CallSid');
  const status = requiredId(p.get('CallStatus'), 'CallStatus');
  const sequence = optionalSeconds(p.get('SequenceNumber'), 'SequenceNumber');
  const event: WebhookEvent = {
    provider: 'twilio',
    eventId: sequence === undefined ? `${callSid}:${status}` : `${callSid}:${status}:${sequence}`,
    type: `call.${status}`,
    providerCallId: callSid,
    status,
  };
  const sipCallId = optionalString(p.get('SipCallId'), 'SipCallId');
  if (sipCallId !== undefined) event.sipCallId = sipCallId;
  const ref = optionalString(callRef, `SipHeader_${CALL_REF_HEADER}`);
  if (ref !== undefined) event.callRef = ref;
  const duration = optionalSeconds(p.get('CallDuration'), 'CallDuration');
  if (duration !== undefined) event.durationSeconds = duration;
  const occurredAt = optionalDate(p.get('Timestamp'));
  if (occurredAt !== undefined) event.occurredAt = occurredAt;
  return event;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
