/** Phone numbers in SIP URIs: take the user part, normalise to E.164 (`+` and digits) when possible. */

import { isE164 } from '../phone-number.js';

/** The user part of a `sip:`/`sips:`/`tel:` URI (unescaped, without user parameters), or undefined. */
export function uriUser(uri: string): string | undefined {
  const m = /^\s*(?:sips?:([^@;?>\s]+)@|tel:([^;?>\s]+))/i.exec(uri);
  const raw = m?.[1] ?? m?.[2];
  if (!raw) return undefined;
  try {
    return decodeURIComponent(raw.split(';')[0] ?? '');
  } catch {
    return undefined;
  }
}

/**
 * E.164 form of a dialled or presented number, or undefined when it is not one.
 * Accepts `+15550001111`, `0015550001111`, `15550001111` (8–15 digits, taken as international) and
 * visual separators (`-`, `.`, `(`, `)`, spaces).
 */
export function toE164(user: string): string | undefined {
  const s = user.replace(/[-.() ]/g, '');
  let digits: string;
  if (/^\+\d+$/.test(s)) digits = s.slice(1);
  else if (/^00\d+$/.test(s)) digits = s.slice(2);
  else if (/^\d{8,15}$/.test(s)) digits = s;
  else return undefined;
  const e164 = `+${digits}`;
  return isE164(e164) ? e164 : undefined;
}
