import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Logs never carry secrets, tokens, SDP or whole phone numbers, at any depth (DESIGN §4 item 5):
 * callers log `maskPhone(n)`, and every log object is walked before it is written so that what slips
 * through (a nested field, an error's message, a phone number inside a string) is blanked too.
 */
const SECRET_KEYS = new Set([
  'token', 'authorization', 'proxy-authorization', 'password', 'secret', 'cookie', 'sdp',
  'phone', 'to', 'from', 'counterpart', 'caller', 'callee', 'secretaccesskey', 'authtoken',
]);
const CENSOR = '[redacted]';
const MAX_DEPTH = 8;

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { svc: 'monologue' },
    serializers: { err: (e: unknown) => scrub(e instanceof Error ? stdSerializers.err(e) : e, 0, new WeakSet()) },
    formatters: { log: (obj: Record<string, unknown>) => scrub(obj, 0, new WeakSet()) as Record<string, unknown> },
    // The message string itself: `log.info(\`dialing ${n}\`)` must not print n.
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrubString(a) : a)));
      },
    },
  };
  const logger = destination ? pino(options, destination) : pino(options);
  // pino applies formatters.bindings to the root's bindings only; children inherit this `child`, so
  // every child's bindings (`log.child({ to })`) are scrubbed like log objects.
  const pinoChild = logger.child;
  Object.defineProperty(logger, 'child', {
    value(this: Logger, bindings: Record<string, unknown>, childOptions?: object) {
      return pinoChild.call(this, scrub(bindings, 0, new WeakSet()) as Record<string, unknown>, childOptions);
    },
  });
  return logger;
}

/** Show at most the last two digits of a phone number (DESIGN §4 item 5). */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return digits.length <= 2 ? '**' : `…${digits.slice(-2)}`;
}

function scrub(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1, seen));
  // An Error nested anywhere: its own fields are not enumerable, so take them explicitly.
  const source = value instanceof Error ? stdSerializers.err(value) : value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(source)) {
    out[k] = SECRET_KEYS.has(k.toLowerCase()) ? CENSOR : scrub(v, depth + 1, seen);
  }
  return out;
}

const E164_IN_TEXT = /\+\d{7,15}\b/g;
// Dialer tokens and generated admin keys.
const TOKEN_IN_TEXT = /\b(mlt|mla)_[A-Za-z0-9_-]{8,}/g;
const BEARER_IN_TEXT = /\b(Bearer|Digest)\s+[^\s,;]+/gi;

/** Numbers, tokens and credentials inside free text; a whole SDP body as one. */
function scrubString(s: string): string {
  if (/^v=0\r?\n/.test(s) || /\r?\nm=(audio|video) /.test(s)) return '[redacted sdp]';
  return s
    .replace(E164_IN_TEXT, (n) => maskPhone(n))
    .replace(TOKEN_IN_TEXT, (_m, prefix: string) => `${prefix}_[redacted]`)
    .replace(BEARER_IN_TEXT, (_m, scheme: string) => `${scheme} [redacted]`);
}
