/**
 * ObjectStore on a local folder: `<dir>/objects/<key>` (keys map to nested folders), temp files in
 * `<dir>/tmp`. Writes are atomic (temp + fsync + rename + folder fsync); folders 0700, files 0600.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MonologueError, errorMessage } from '../errors.js';
import { DIR_MODE, atomicWrite, errno, removeEmptyParents, walkFiles } from './fs-util.js';
import { objectNotFound, validateKey, validatePrefix, type ObjectStore } from './object-store.js';

export function createFsStore(dir: string): ObjectStore {
  const root = path.resolve(dir);
  const objects = path.join(root, 'objects');
  const tmp = path.join(root, 'tmp');
  let ready: Promise<void> | undefined;

  const unavailable = (op: string, err: unknown): MonologueError =>
    new MonologueError('STORAGE_UNAVAILABLE', `filesystem store at ${root}: ${op} failed: ${errorMessage(err)}`);

  function ensureDirs(): Promise<void> {
    ready ??= (async () => {
      await fsp.mkdir(objects, { recursive: true, mode: DIR_MODE });
      await fsp.mkdir(tmp, { recursive: true, mode: DIR_MODE });
    })().catch((err: unknown) => {
      ready = undefined;
      throw unavailable('create folders', err);
    });
    return ready;
  }

  const fileOf = (key: string): string => path.join(objects, ...key.split('/'));

  async function listKeys(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    await ensureDirs();
    // Only walk the deepest folder the prefix pins down; the rest of the prefix filters names.
    const slash = prefix.lastIndexOf('/');
    const base = slash >= 0 ? prefix.slice(0, slash) : '';
    try {
      const files = await walkFiles(base ? fileOf(base) : objects);
      return files
        .map((f) => (base ? `${base}/${f}` : f))
        .filter((k) => k.startsWith(prefix))
        .sort();
    } catch (err) {
      throw unavailable('list', err);
    }
  }

  async function deleteKey(key: string): Promise<boolean> {
    const file = fileOf(key);
    try {
      await fsp.unlink(file);
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return false;
      throw unavailable('delete', err);
    }
    await removeEmptyParents(objects, path.dirname(file));
    return true;
  }

  return {
    kind: 'fs',

    async put(key, body) {
      validateKey(key);
      await ensureDirs();
      try {
        await atomicWrite(tmp, fileOf(key), body);
      } catch (err) {
        const code = errno(err);
        if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST') {
          throw new MonologueError('OBJECT_KEY_CONFLICT', `key ${key} collides with another key's folder on the filesystem store`);
        }
        throw unavailable('put', err);
      }
    },

    async get(key) {
      validateKey(key);
      await ensureDirs();
      try {
        return await fsp.readFile(fileOf(key));
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw objectNotFound(key);
        throw unavailable('get', err);
      }
    },

    async peek(key, length) {
      validateKey(key);
      await ensureDirs();
      let fh: fsp.FileHandle | undefined;
      try {
        fh = await fsp.open(fileOf(key), 'r');
        const size = (await fh.stat()).size;
        const bytes = Buffer.alloc(Math.max(0, Math.min(length, size)));
        let off = 0;
        while (off < bytes.length) {
          const { bytesRead } = await fh.read(bytes, off, bytes.length - off, off);
          if (bytesRead === 0) break;
          off += bytesRead;
        }
        return { bytes: bytes.subarray(0, off), size };
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw objectNotFound(key);
        throw unavailable('peek', err);
      } finally {
        await fh?.close().catch(() => undefined);
      }
    },

    list: listKeys,

    async delete(key) {
      validateKey(key);
      await ensureDirs();
      await deleteKey(key);
    },

    async deletePrefix(prefix) {
      const keys = await listKeys(prefix);
      let n = 0;
      for (const k of keys) if (await deleteKey(k)) n++;
      return n;
    },

    async ping() {
      try {
        await ensureDirs();
        await fsp.access(objects, fsp.constants.W_OK | fsp.constants.R_OK);
        await fsp.access(tmp, fsp.constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
  };
}
