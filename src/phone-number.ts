/** E.164 as Monologue accepts it everywhere: `+`, a non-zero digit, 7 to 15 digits in all. */
export const E164 = /^\+[1-9]\d{6,14}$/;

export function isE164(s: string): boolean {
  return E164.test(s);
}

/** Accepts `+15550001111`; strips the spaces, dashes, dots and brackets people type. */
export function normaliseE164(input: string): string | undefined {
  const compact = input.replace(/[\s\-().]/g, '');
  return isE164(compact) ? compact : undefined;
}

/** How a caller without a valid number is shown and stored. */
export const ANONYMOUS = 'anonymous';

/** A presented caller as the dialer, the call record and the payout rules may see it: E.164 or `anonymous`. */
export function callerId(presented: string): string {
  return isE164(presented) ? presented : ANONYMOUS;
}
