import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MonologueError } from '../errors.js';

/**
 * 32-byte secrets kept in files readable by the service user only (the phone key, the KEKs):
 * base64 text, mode 0600, written durably.
 */

/** Why a key file could not be used; callers map it to their own error code. */
export class KeyFileError extends Error {
  constructor(
    readonly problem: 'exposed' | 'malformed' | 'unreadable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Reads a key file; undefined when it does not exist. Refuses a file readable by other users (checked on
 * the file actually opened, not on whatever the path names a moment later) or not holding 32 bytes.
 */
export function readKeyFile(path: string): Buffer | undefined {
  let raw: Buffer;
  let mode: number;
  try {
    const fd = openSync(path, 'r');
    try {
      mode = fstatSync(fd).mode;
      raw = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError('unreadable', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if ((mode & 0o077) !== 0) throw new KeyFileError('exposed', `key file ${path} is readable by other users; run: chmod 600 ${path}`);
  const key = Buffer.from(raw.toString('utf8').trim(), 'base64');
  raw.fill(0);
  if (key.length !== 32) throw new KeyFileError('malformed', `key file ${path} must hold 32 bytes in base64 (found ${key.length})`);
  return key;
}

/** Writes `text` to a new file (flag `wx`: never over an existing one), mode 0600, flushed to disk. */
export function writeFileDurably(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600);
}

/**
 * The phone key: created on first use. An existing file that is the wrong size or readable by others is
 * refused, because a silently replaced key would make every stored phone number unreadable.
 */
export function loadOrCreateKey(path: string): Buffer {
  let key: Buffer | undefined;
  try {
    key = readKeyFile(path);
  } catch (err) {
    const e = err as KeyFileError;
    const code = e.problem === 'exposed' ? 'KEY_PERMISSIONS' : e.problem === 'malformed' ? 'KEY_INVALID' : 'KEY_UNREADABLE';
    throw new MonologueError(code, e.message, { cause: err });
  }
  if (key) return key;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fresh = randomBytes(32);
  writeFileDurably(path, fresh.toString('base64') + '\n');
  return fresh;
}
