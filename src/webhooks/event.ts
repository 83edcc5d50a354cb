import { MonologueError } from '../errors.js';

export type WebhookProvider = 'twilio' | 'telnyx' | 'generic';
export const WEBHOOK_PROVIDERS: readonly WebhookProvider[] = ['twilio', 'telnyx', 'generic'];

/** A provider's call-status callback after its signature was verified, in one shape for every provider. */
export interface WebhookEvent {
  provider: WebhookProvider;
  /** Unique per provider; the idempotency key together with `provider`. */
  eventId: string;
  type: string;
  /** The SIP Call-ID of the call, when the provider reports it. */
  sipCallId?: string;
  /** Our call id, echoed from the `X-Monologue-Call` header we put on the INVITE, when the provider passes it back. */
  callRef?: string;
  /** The provider's own id for the call (Twilio CallSid, Telnyx call_control_id). */
  providerCallId?: string;
  /** The provider's billed duration of the call, whole seconds. */
  durationSeconds?: number;
  status?: string;
  /** When the provider says the event happened, ms since the epoch. */
  occurredAt?: number;
}

/** One request as the adapters see it: raw bytes (signatures cover them), headers, and the URL the provider signed. */
export interface SignedRequest {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  rawBody: Buffer;
  /** Public URL of the request, path and query included (Twilio signs it). */
  url: string;
  nowMs: number;
}

/** Verifies one provider's signature and turns its body into a `WebhookEvent`; throws `WebhookError`. */
export interface ProviderAdapter {
  readonly provider: WebhookProvider;
  accept(request: SignedRequest): WebhookEvent;
}

export const WebhookCodes = {
  signature: 'WEBHOOK_SIGNATURE',
  stale: 'WEBHOOK_STALE',
  unknownProvider: 'WEBHOOK_UNKNOWN_PROVIDER',
  tooLarge: 'WEBHOOK_TOO_LARGE',
  badBody: 'WEBHOOK_BAD_BODY',
  notConfigured: 'WEBHOOK_NOT_CONFIGURED',
  handlerFailed: 'WEBHOOK_HANDLER_FAILED',
  badConfig: 'WEBHOOK_CONFIG_INVALID',
} as const;
export type WebhookCode = (typeof WebhookCodes)[keyof typeof WebhookCodes];

const STATUS: Record<WebhookCode, number> = {
  WEBHOOK_SIGNATURE: 401,
  WEBHOOK_STALE: 401,
  WEBHOOK_UNKNOWN_PROVIDER: 404,
  WEBHOOK_TOO_LARGE: 413,
  WEBHOOK_BAD_BODY: 400,
  WEBHOOK_NOT_CONFIGURED: 404,
  WEBHOOK_HANDLER_FAILED: 500,
  WEBHOOK_CONFIG_INVALID: 500,
};

/** A refused webhook: the stable `code` and the HTTP status it maps to. Messages never quote secrets or signatures. */
export class WebhookError extends MonologueError {
  readonly statusCode: number;
  constructor(code: WebhookCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'WebhookError';
    this.statusCode = STATUS[code];
  }
}
