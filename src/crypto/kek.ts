import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, chmodSync } from 'node:fs';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MonologueError } from '../errors.js';
import { readKeyFile, writeFileDurably } from './key-file.js';

/**
 * Key-encryption keys (KEKs) kept as local files (DESIGN §5): each recording's data key is stored
 * only wrapped by a KEK. The folder holds `<kekId>.key` files (32 random bytes in base64, mode 0600,
 * folder 0700) and a `current` file naming the KEK that wraps new keys. Older KEKs stay until every
 * key they wrapped has been rewrapped (`keyring.wrap(keyring.unwrap(old, ctx), ctx)`), then are retired.
 *
 * Nothing is cached: `current` and the key files are read on every wrap and unwrap, so a rotation or
 * retirement done by another process (the `monologue keys` CLI) takes effect at once, and a retired
 * KEK is never used again from memory.
 *
 * Fail closed (DESIGN §4 item 7): a keyring that cannot be read throws `KEK_UNAVAILABLE`; the caller
 * then records nothing.
 */
export interface WrappedKey {
  kekId: string;
  /** base64url(iv 12 ‖ tag 16 ‖ ciphertext), AES-256-GCM under the KEK. */
  blob: string;
}

export interface Keyring {
  /** The id of the KEK that `wrap` uses now (read from the `current` file). */
  readonly currentId: string;
  /** Wraps `dataKey` under the current KEK; `context` (e.g. the recording id) is bound as associated data. */
  wrap(dataKey: Buffer, context: string): WrappedKey;
  /** `KEK_MISSING` if that KEK's file is gone, `KEY_UNWRAP_FAILED` if the blob does not authenticate (wrong context, edited). */
  unwrap(wrapped: WrappedKey, context: string): Buffer;
  has(kekId: string): boolean;
  /** Every KEK id present, sorted. */
  ids(): string[];
}

/**
 * Opens the keyring in `dir`. On first start (no folder, or an empty one) it creates the first KEK,
 * unless `create` is false. Refuses files or a folder that other users can access.
 */
export function openKeyring(dir: string, opts: { create?: boolean } = {}): Keyring {
  const state = folderState(dir);
  if (state === 'empty') {
    if (opts.create === false) {
      throw unavailable(dir, `there is no key-encryption key in ${dir}; restore the folder from backup, or start the service once to create one`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    setCurrent(dir, createKek(dir));
  }
  // Prove now that the current KEK is usable, so a broken keyring stops the service at start.
  readKek(dir, currentKekId(dir)).fill(0);

  return {
    get currentId() {
      return currentKekId(dir);
    },
    wrap(dataKey, context) {
      const kekId = currentKekId(dir);
      const kek = readKek(dir, kekId);
      try {
        const iv = randomBytes(12);
        const c = createCipheriv('aes-256-gcm', kek, iv);
        c.setAAD(wrapAad(kekId, context));
        const body = Buffer.concat([c.update(dataKey), c.final()]);
        return { kekId, blob: Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url') };
      } finally {
        kek.fill(0);
      }
    },
    unwrap(wrapped, context) {
      if (!KEK_ID.test(wrapped.kekId)) {
        throw new MonologueError('KEY_UNWRAP_FAILED', `wrapped key names ${JSON.stringify(wrapped.kekId)}, which is not a KEK id`);
      }
      const kek = readKek(dir, wrapped.kekId);
      try {
        const buf = Buffer.from(wrapped.blob, 'base64url');
        if (buf.length < 28) throw new Error('blob too short');
        const d = createDecipheriv('aes-256-gcm', kek, buf.subarray(0, 12));
        d.setAuthTag(buf.subarray(12, 28));
        d.setAAD(wrapAad(wrapped.kekId, context));
        return Buffer.concat([d.update(buf.subarray(28)), d.final()]);
      } catch (err) {
        throw new MonologueError(
          'KEY_UNWRAP_FAILED',
          `wrapped key for ${JSON.stringify(context)} does not authenticate under ${wrapped.kekId} (edited, or wrapped for another recording)`,
          { cause: err },
        );
      } finally {
        kek.fill(0);
      }
    },
    has: (kekId) => KEK_ID.test(kekId) && exists(kekPath(dir, kekId)),
    ids: () => listKekIds(dir),
  };
}

/** Creates a new KEK and makes it current; returns its id. Keys wrapped by older KEKs still unwrap. */
export function rotateKeyring(dir: string): string {
  if (folderState(dir) === 'empty') {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const kekId = createKek(dir);
  setCurrent(dir, kekId);
  return kekId;
}

/**
 * Deletes a KEK file: every key still wrapped by it becomes unreadable (KEK_MISSING), so rewrap first.
 * Refuses the current KEK. (Deleting a file does not overwrite its blocks; the guarantee is that
 * Monologue can no longer read it, not that the disk forgets it.)
 */
export function retireKek(dir: string, kekId: string): void {
  if (!KEK_ID.test(kekId)) throw new MonologueError('KEK_MISSING', `${JSON.stringify(kekId)} is not a KEK id (expected kek_ and 8 hex digits)`);
  if (folderState(dir) === 'empty') throw new MonologueError('KEK_MISSING', `there is no keyring in ${dir}`);
  if (currentKekId(dir) === kekId) {
    throw new MonologueError('KEK_CURRENT', `${kekId} is the current key-encryption key; rotate first (monologue keys rotate), rewrap, then retire it`);
  }
  try {
    unlinkSync(kekPath(dir, kekId));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MonologueError('KEK_MISSING', `${kekId} is not in ${dir} (already retired?)`);
    throw err;
  }
  syncFolder(dir);
}

// ---- helpers ----

const KEK_ID = /^kek_[0-9a-f]{8}$/;
const KEK_FILE = /^(kek_[0-9a-f]{8})\.key$/;
const CURRENT = 'current';

function kekPath(dir: string, kekId: string): string {
  return join(dir, `${kekId}.key`);
}

function wrapAad(kekId: string, context: string): Buffer {
  return Buffer.from(`monologue kek wrap v1\0${kekId}\0${context}`, 'utf8');
}

function unavailable(dir: string, message: string, cause?: unknown): MonologueError {
  return new MonologueError('KEK_UNAVAILABLE', `recording keys unavailable (${dir}): ${message}`, { cause });
}

/** 'empty' when there is no folder, or a folder with neither KEKs nor `current`; checks the folder's mode. */
function folderState(dir: string): 'empty' | 'present' {
  let mode: number;
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) throw unavailable(dir, `${dir} is not a folder`);
    mode = st.mode;
  } catch (err) {
    if (err instanceof MonologueError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'empty';
    throw unavailable(dir, `cannot read ${dir}: ${(err as Error).message}`, err);
  }
  if ((mode & 0o077) !== 0) throw unavailable(dir, `the folder is accessible by other users; run: chmod 700 ${dir}`);
  const names = readdirSync(dir);
  return names.includes(CURRENT) || names.some((n) => KEK_FILE.test(n)) ? 'present' : 'empty';
}

function currentKekId(dir: string): string {
  let id: string;
  try {
    id = readFileSync(join(dir, CURRENT), 'utf8').trim();
  } catch (err) {
    const n = listKekIds(dir).length;
    throw unavailable(dir, `no readable ${join(dir, CURRENT)} (${n} KEK file(s) present); write the id of the active KEK into it`, err);
  }
  if (!KEK_ID.test(id)) throw unavailable(dir, `${join(dir, CURRENT)} holds ${JSON.stringify(id)}, not a KEK id`);
  return id;
}

/** Reads one KEK: KEK_MISSING if the file is gone, KEK_UNAVAILABLE if it is exposed, unreadable or malformed. */
function readKek(dir: string, kekId: string): Buffer {
  const path = kekPath(dir, kekId);
  let key: Buffer | undefined;
  try {
    key = readKeyFile(path);
  } catch (err) {
    throw unavailable(dir, (err as Error).message, err);
  }
  if (!key) {
    throw new MonologueError('KEK_MISSING', `key-encryption key ${kekId} is not in ${dir} (retired or lost); keys it wrapped cannot be unwrapped unless ${path} is restored from backup`);
  }
  return key;
}

function listKekIds(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => KEK_FILE.exec(n)?.[1] ?? []).sort();
}

function exists(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false }) !== undefined;
}

/** Writes a new random KEK with mode 0600, flushed to disk before anyone can name it current. */
function createKek(dir: string): string {
  for (let attempt = 0; ; attempt++) {
    const kekId = `kek_${randomBytes(4).toString('hex')}`;
    const key = randomBytes(32);
    try {
      writeFileDurably(kekPath(dir, kekId), `${key.toString('base64')}\n`);
      return kekId;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
    } finally {
      key.fill(0);
    }
  }
}

/** Points `current` at `kekId` atomically (temporary file, fsync, rename). */
function setCurrent(dir: string, kekId: string): void {
  const tmp = join(dir, `.${CURRENT}.${randomBytes(4).toString('hex')}`);
  writeFileDurably(tmp, `${kekId}\n`);
  renameSync(tmp, join(dir, CURRENT));
  syncFolder(dir);
}

function syncFolder(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a folder; the rename is still atomic.
  }
}
