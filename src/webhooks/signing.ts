import { timingSafeEqual } from 'node:crypto';
import { WebhookCodes, WebhookError, type SignedRequest } from './event.js';

/** Constant-time equality of two byte strings; unequal lengths are unequal (still compared, so the time does not tell). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** The one value of a header; absent, empty or repeated headers are a signature failure. */
export function requiredHeader(request: SignedRequest, name: string): string {
  const value = request.headers[name.toLowerCase()];
  if (typeof value !== 'string' || value.length === 0) {
    throw new WebhookError(WebhookCodes.signature, `missing or repeated ${name} header`);
  }
  return value;
}

/**
 * A signed unix-seconds timestamp: digits only, and within `toleranceSeconds` of now either way.
 * Call it after the signature is verified, so only authentic requests learn about staleness.
 */
export function parseTimestamp(raw: string, name: string): number {
  if (!/^\d{1,12}$/.test(raw)) throw new WebhookError(WebhookCodes.signature, `${name} is not unix seconds`);
  return Number(raw);
}

export function checkFreshness(timestampSeconds: number, nowMs: number, toleranceSeconds: number): void {
  const skew = Math.abs(nowMs / 1000 - timestampSeconds);
  if (skew > toleranceSeconds) {
    throw new WebhookError(WebhookCodes.stale, `signed timestamp is ${Math.round(skew)} s away from our clock (tolerance ${toleranceSeconds} s)`);
  }
}

/** JSON body of an already verified request, as an object; anything else is a bad body. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new WebhookError(WebhookCodes.badBody, 'body is not valid JSON');
  }
  if (!isRecord(value)) throw new WebhookError(WebhookCodes.badBody, 'body is not a JSON object');
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const MAX_ID = 256;

/** A required identifier: a non-empty string of at most 256 characters. */
export function requiredId(value: unknown, field: string): string {
  const id = optionalString(value, field);
  if (id === undefined || id.length === 0) throw new WebhookError(WebhookCodes.badBody, `${field} is missing`);
  return id;
}

export function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > MAX_ID) {
    throw new WebhookError(WebhookCodes.badBody, `${field} must be a string of at most ${MAX_ID} characters`);
  }
  return value === '' ? undefined : value;
}

/** Whole seconds, ≥ 0; providers send numbers or digit strings. */
export function optionalSeconds(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1e9) {
    throw new WebhookError(WebhookCodes.badBody, `${field} must be whole seconds`);
  }
  return n;
}

/** A date string to ms since the epoch; unparseable dates are dropped rather than refused. */
export function optionalDate(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

export const CALL_REF_HEADER = 'X-Monologue-Call';
