import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { MonologueError } from '../errors.js';

/**
 * A 32-byte secret kept in a file readable by the service user only.
 * Created on first use; an existing file that is the wrong size or readable by others is refused,
 * because a silently replaced key would make every stored phone number unreadable.
 */
export function loadOrCreateKey(path: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new MonologueError('KEY_UNREADABLE', `cannot read key file ${path}: ${(err as Error).message}`);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const key = randomBytes(32);
    writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return key;
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new MonologueError('KEY_PERMISSIONS', `key file ${path} is readable by other users; run: chmod 600 ${path}`);
  }
  const key = Buffer.from(raw.toString('utf8').trim(), 'base64');
  if (key.length !== 32) {
    throw new MonologueError('KEY_INVALID', `key file ${path} must hold 32 bytes in base64 (found ${key.length})`);
  }
  return key;
}
