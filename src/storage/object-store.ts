/**
 * The one storage interface for recording objects (DESIGN §5). Callers hand in bytes that are already
 * encrypted; stores never see plaintext. Keys are opaque (`rec/<recordingId>/chunk-000042`,
 * `rec/<recordingId>/manifest.json`): they must never carry phone numbers or other user data.
 */
import { MonologueError } from '../errors.js';

export interface ObjectStore {
  readonly kind: 'fs' | 's3';
  /** Store `body` under `key`, replacing any previous object. Atomic on the filesystem store. */
  put(key: string, body: Buffer): Promise<void>;
  /** The object's bytes; MonologueError('OBJECT_NOT_FOUND') when there is none. */
  get(key: string): Promise<Buffer>;
  /**
   * The first `length` bytes of the object (all of it if shorter) and its total size, without reading
   * the rest: chunk headers for the media route's framing. OBJECT_NOT_FOUND like `get`.
   */
  peek(key: string, length: number): Promise<{ bytes: Buffer; size: number }>;
  /** Every key starting with `prefix` (plain string prefix, as in S3), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Remove one object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Remove every object whose key starts with `prefix`; returns how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
  /** True when the store answers and is usable; never throws. */
  ping(): Promise<boolean>;
}

export const MAX_KEY_LENGTH = 512;
/** Longest single `/`-separated segment: a filesystem name limit (NAME_MAX 255) the fs store and spool obey. */
export const MAX_SEGMENT_LENGTH = 255;
const KEY_CHARS = /^[A-Za-z0-9._/-]*$/;

function invalid(what: string, value: string, why: string): MonologueError {
  // A bad key is a programming error; show it (keys are opaque and carry no user data), but bounded.
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return new MonologueError('OBJECT_KEY_INVALID', `invalid object ${what} ${JSON.stringify(shown)}: ${why}`);
}

function checkCommon(what: string, value: string): void {
  if (typeof value !== 'string') throw invalid(what, String(value), 'not a string');
  if (value.length > MAX_KEY_LENGTH) throw invalid(what, value, `longer than ${MAX_KEY_LENGTH} characters`);
  if (!KEY_CHARS.test(value)) throw invalid(what, value, 'only A-Z a-z 0-9 . _ / - are allowed');
  if (value.startsWith('/')) throw invalid(what, value, 'must not start with /');
  if (value.includes('..')) throw invalid(what, value, 'must not contain ..');
  if (value.includes('//')) throw invalid(what, value, 'must not contain an empty segment');
  for (const seg of value.split('/')) {
    if (seg === '.') throw invalid(what, value, 'must not contain a "." segment');
    if (seg.length > MAX_SEGMENT_LENGTH) throw invalid(what, value, `a segment is longer than ${MAX_SEGMENT_LENGTH} characters`);
  }
}

/** Throws MonologueError('OBJECT_KEY_INVALID') unless `key` is a well-formed object key. */
export function validateKey(key: string): void {
  checkCommon('key', key);
  if (key.length === 0) throw invalid('key', key, 'empty');
  if (key.endsWith('/')) throw invalid('key', key, 'must not end with /');
}

/** Like validateKey, but the empty prefix (everything) and a trailing `/` are allowed. */
export function validatePrefix(prefix: string): void {
  checkCommon('prefix', prefix);
}

export function objectNotFound(key: string): MonologueError {
  return new MonologueError('OBJECT_NOT_FOUND', `no object at key ${key}`);
}

export function isMonologueError(err: unknown, code: string): err is MonologueError {
  return err instanceof MonologueError && err.code === code;
}
