/**
 * SIP status codes ⇄ the call domain's end reasons. The mapping lives here so that nothing outside
 * src/sip speaks SIP: the calls layer hears reasons and keeps the status only as a record field.
 */
import type { EndReason } from '../calls/ports.js';

/** A final failure status of our INVITE, as an end reason. */
export function reasonForStatus(status: number): EndReason {
  if (status === 486 || status === 600) return 'busy';
  if (status === 404 || status === 484 || status === 604) return 'not-found';
  if (status === 408 || status === 480) return 'no-answer';
  if (status === 487) return 'cancelled';
  if (status === 603) return 'declined';
  if (status === 401 || status === 407) return 'auth-failed';
  if (status >= 500) return 'unavailable';
  return 'failed';
}

/** The final response we send the trunk when an inbound call ends before answer. */
export function statusForReason(reason: EndReason): number {
  switch (reason) {
    case 'rejected':
    case 'declined':
      return 603;
    case 'busy':
      return 486;
    case 'not-found':
      return 404;
    case 'cancelled':
      return 487;
    case 'media-failed':
    case 'shutdown':
    case 'unavailable':
      return 503;
    case 'failed':
      return 500;
    default:
      return 480;
  }
}
