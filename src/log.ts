import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Paths pino blanks out wherever they appear. Phone numbers must never reach a log line whole:
 * callers log `maskPhone(n)` instead, and these paths catch what slips through.
 */
const REDACT = [
  'token', '*.token', 'authorization', '*.authorization', 'password', '*.password',
  'secret', '*.secret', 'sdp', '*.sdp', 'phone', '*.phone', 'to', '*.to', 'from', '*.from',
  'req.headers.authorization', 'req.headers.cookie',
];

/** `destination`: where lines go instead of stdout (tests that read the service's own log). */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { svc: 'monologue' } };
  return destination ? pino(options, destination) : pino(options);
}

/** Show at most the last two digits of a phone number (DESIGN §4 item 5). */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return digits.length <= 2 ? '**' : `…${digits.slice(-2)}`;
}
