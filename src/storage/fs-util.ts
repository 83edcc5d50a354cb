/** Small filesystem helpers shared by the fs store, the spool and the CLI's decrypted output. */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** fsync a folder so a rename or unlink in it survives a crash. Best effort where unsupported. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = errno(err);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Write `body` to `target` atomically and durably: a temp file in `tmpDir` (same filesystem), written and
 * fsynced, renamed over `target`, then the target's folder fsynced. Folders are created 0700, the file is 0600.
 */
export async function atomicWrite(tmpDir: string, target: string, body: Buffer): Promise<void> {
  const parent = path.dirname(target);
  await makeParent(parent);
  const tmp = path.join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, 'wx', FILE_MODE);
  try {
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // A concurrent delete may prune the (empty) parent between mkdir and rename: recreate and retry.
    for (let attempt = 0; ; attempt++) {
      try {
        await fsp.rename(tmp, target);
        break;
      } catch (err) {
        if (errno(err) !== 'ENOENT' || attempt >= 3) throw err;
        await makeParent(parent);
      }
    }
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(parent);
}

/**
 * mkdir -p that survives a concurrent prune: `mkdir` creates the folders one by one, so a pruner removing
 * an empty ancestor between two of them makes it fail ENOENT; it is retried a few times.
 */
async function makeParent(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fsp.mkdir(dir, { recursive: true, mode: DIR_MODE });
      return;
    } catch (err) {
      if (errno(err) !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
}

/** Every regular file under `root`, as `/`-separated paths relative to `root`. Missing root → []. */
export async function walkFiles(root: string, rel = ''): Promise<string[]> {
  let entries;
  try {
    entries = await fsp.readdir(rel ? path.join(root, rel) : root, { withFileTypes: true });
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) {
    const childRel = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walkFiles(root, childRel)));
    else if (e.isFile()) out.push(childRel);
  }
  return out;
}

/** Remove now-empty folders from `dir` up to (not including) `root`. Best effort. */
export async function removeEmptyParents(root: string, dir: string): Promise<void> {
  const stop = path.resolve(root);
  let cur = path.resolve(dir);
  while (cur !== stop && cur.startsWith(stop + path.sep)) {
    try {
      await fsp.rmdir(cur);
    } catch {
      return; // not empty (or gone, or raced by a writer): stop climbing
    }
    cur = path.dirname(cur);
  }
}
