/**
 * A durable local queue in front of an ObjectStore. `enqueue` resolves once the (already encrypted) bytes
 * are fsynced under `<dir>/q/<key>`; uploads then run in the background and retry with exponential backoff
 * and jitter until they succeed or the spool is closed. A spool file is deleted only after its upload
 * succeeded, and opening a spool over a folder left by a previous process uploads what it finds there
 * ("a restart drains the spool"). Spool files hold exactly the bytes handed in: this module never adds
 * plaintext (DESIGN §4 invariant 2).
 *
 * Same key enqueued again: the newer bytes replace the spool file and win; uploads of one key never overlap.
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MonologueError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { DIR_MODE, atomicWrite, errno, fsyncDir, removeEmptyParents, walkFiles } from './fs-util.js';
import { validateKey, validatePrefix, type ObjectStore } from './object-store.js';

export interface SpoolOptions {
  /** Spool folder (e.g. `<dataDir>/spool`); created 0700. */
  dir: string;
  store: ObjectStore;
  log: Logger;
  /** First retry delay, ms (default 200). */
  minBackoffMs?: number;
  /** Retry delay cap, ms (default 10000). */
  maxBackoffMs?: number;
  /** Uploads running at once (default 4). */
  concurrency?: number;
}

export interface SpoolStats {
  /** Successful uploads. */
  uploaded: number;
  /** Failed upload attempts (each one is retried). */
  failed: number;
  /** Files found on open, left by a previous process. */
  recovered: number;
}

export type SpoolListener = ((key: string) => void) | ((key: string, err: Error, attempt: number) => void) | (() => void);

export interface Spool {
  /** Durably spool `body` for `key`; resolves once it is on local disk. Upload happens in the background. */
  enqueue(key: string, body: Buffer): Promise<void>;
  /** Resolves when nothing is pending; rejects with SPOOL_DRAIN_TIMEOUT after `timeoutMs`, SPOOL_CLOSED on close. */
  drain(timeoutMs?: number): Promise<void>;
  /** Keys spooled (or being written) and not yet uploaded. */
  readonly pending: number;
  readonly stats: Readonly<SpoolStats>;
  /** When the longest-waiting pending key was first spooled (ms since the epoch; on open, for files found there); undefined when none waits. */
  readonly oldestPendingSince: number | undefined;
  /**
   * Drop every pending key starting with `prefix` (a shredded recording's `rec/<id>/`): its spool files
   * are removed and its retries cancelled. Writes and uploads of those keys already under way are waited
   * for, so once this resolves nothing of the prefix is running or will run; an upload that was in flight
   * may have reached the store, so the caller removes the prefix from the store AFTER this. Keys enqueued
   * after the call are kept. Resolves with the number of keys dropped. The empty prefix is refused.
   */
  discard(prefix: string): Promise<number>;
  /** Stop retrying and wait for uploads in flight to settle. Spool files stay on disk for the next open. */
  close(): Promise<void>;
  on(event: 'uploaded', listener: (key: string) => void): this;
  on(event: 'failed', listener: (key: string, err: Error, attempt: number) => void): this;
  on(event: 'drained', listener: () => void): this;
  off(event: 'uploaded' | 'failed' | 'drained', listener: SpoolListener): this;
}

interface Entry {
  /** Bumped by every enqueue of this key; an upload only removes the file if no newer write arrived. */
  gen: number;
  uploading: boolean;
  /** Failed attempts since the last success. */
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  queued: boolean;
  /** The upload running for this entry, if any (discard waits for it). */
  flight: Promise<void> | undefined;
  /** Set by discard: the entry is no longer the key's; its upload must not touch files or the map. */
  discarded: boolean;
  /** When this key started waiting (ms since the epoch). */
  since: number;
}

class SpoolImpl implements Spool {
  private readonly events = new EventEmitter();
  private readonly queueDir: string;
  private readonly tmpDir: string;
  private readonly store: ObjectStore;
  private readonly log: Logger;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly concurrency: number;
  private readonly entries = new Map<string, Entry>();
  private readonly ready: string[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private writing = 0;
  /** Enqueues between their call and their touch(), by key: discard waits for these. */
  private readonly writes = new Map<Promise<void>, string>();
  private closed = false;
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  readonly stats: SpoolStats = { uploaded: 0, failed: 0, recovered: 0 };

  constructor(opts: SpoolOptions) {
    const root = path.resolve(opts.dir);
    this.queueDir = path.join(root, 'q');
    this.tmpDir = path.join(root, 'tmp');
    this.store = opts.store;
    this.log = opts.log;
    this.minBackoff = Math.max(1, opts.minBackoffMs ?? 200);
    this.maxBackoff = Math.max(this.minBackoff, opts.maxBackoffMs ?? 10_000);
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
  }

  on(event: 'uploaded', listener: (key: string) => void): this;
  on(event: 'failed', listener: (key: string, err: Error, attempt: number) => void): this;
  on(event: 'drained', listener: () => void): this;
  on(event: string, listener: SpoolListener): this {
    this.events.on(event, listener);
    return this;
  }

  off(event: 'uploaded' | 'failed' | 'drained', listener: SpoolListener): this {
    this.events.off(event, listener);
    return this;
  }

  get pending(): number {
    return this.entries.size + this.writing;
  }

  get oldestPendingSince(): number | undefined {
    // A Map iterates in insertion order and a key leaves it once uploaded: the first entry waited longest.
    for (const e of this.entries.values()) return e.since;
    return undefined;
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.queueDir, { recursive: true, mode: DIR_MODE });
    // Temp files are writes that never completed: their enqueue never resolved, so nobody relies on them.
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
    await fsp.mkdir(this.tmpDir, { recursive: true, mode: DIR_MODE });
    const files = await walkFiles(this.queueDir);
    for (const key of files) {
      try {
        validateKey(key);
      } catch {
        this.log.error({ file: key }, 'spool: file with an invalid key name left in place, not uploaded');
        continue;
      }
      this.stats.recovered++;
      this.touch(key);
    }
    if (files.length > 0) this.log.info({ files: this.stats.recovered }, 'spool: uploading files left by a previous run');
    this.pump();
  }

  enqueue(key: string, body: Buffer): Promise<void> {
    try {
      validateKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closed) return Promise.reject(new MonologueError('SPOOL_CLOSED', 'spool is closed'));
    const p = this.write(key, body);
    this.writes.set(p, key);
    // The map only tracks it; the caller sees the rejection.
    void p.catch(() => undefined).finally(() => this.writes.delete(p));
    return p;
  }

  private async write(key: string, body: Buffer): Promise<void> {
    this.writing++;
    try {
      await atomicWrite(this.tmpDir, this.fileOf(key), body);
    } catch (err) {
      throw new MonologueError('SPOOL_WRITE_FAILED', `spool: could not write ${key} to ${this.queueDir}: ${errorMessage(err)}`);
    } finally {
      this.writing--;
    }
    // Even if closed meanwhile, the file is on disk: the next open uploads it.
    this.touch(key);
    this.pump();
    this.settleWaiters();
  }

  async discard(prefix: string): Promise<number> {
    validatePrefix(prefix);
    if (prefix === '') throw new MonologueError('SPOOL_DISCARD_ALL', 'spool: discard needs a non-empty prefix (e.g. rec/<recordingId>/)');
    const matches = (key: string) => key.startsWith(prefix);
    // A write still in progress would create its file after we looked: let it land, then drop it.
    await Promise.allSettled([...this.writes].filter(([, key]) => matches(key)).map(([p]) => p));
    const flights: Promise<void>[] = [];
    const keys: string[] = [];
    for (const [key, e] of this.entries) {
      if (!matches(key)) continue;
      e.discarded = true;
      clearTimeout(e.timer);
      e.timer = undefined;
      this.entries.delete(key);
      if (e.flight) flights.push(e.flight);
      keys.push(key);
    }
    for (let i = this.ready.length - 1; i >= 0; i--) if (matches(this.ready[i]!)) this.ready.splice(i, 1);
    // Files are removed before waiting on uploads: an upload in flight has its bytes in memory already,
    // and nothing retries it (its entry is discarded).
    for (const key of keys) await this.removeFile(key, true);
    // Files of the prefix that no entry names (left under an invalid name); only the prefix's folder is walked.
    const writing = new Set(this.writes.values());
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    for (const rel of await walkFiles(this.queueDir, base.replace(/\/$/, '')).catch(() => [] as string[])) {
      if (matches(rel) && !this.entries.has(rel) && !writing.has(rel)) await this.removeFile(rel, true);
    }
    await Promise.allSettled(flights);
    this.settleWaiters();
    if (keys.length > 0) this.log.info({ prefix, keys: keys.length }, 'spool: discarded pending uploads');
    return keys.length;
  }

  /** `durable`: the removal survives a crash (a discarded file must not come back and upload at the next open). */
  private async removeFile(key: string, durable = false): Promise<void> {
    const file = this.fileOf(key);
    await fsp.unlink(file).catch((err: unknown) => {
      if (errno(err) !== 'ENOENT') throw err;
    });
    if (durable) await fsyncDir(path.dirname(file)).catch(() => undefined);
    await removeEmptyParents(this.queueDir, path.dirname(file));
  }

  drain(timeoutMs?: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new MonologueError('SPOOL_CLOSED', 'spool is closed'));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new MonologueError('SPOOL_DRAIN_TIMEOUT', `spool: ${this.pending} upload(s) still pending after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const e of this.entries.values()) clearTimeout(e.timer);
      this.ready.length = 0;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(new MonologueError('SPOOL_CLOSED', 'spool closed before it drained'));
    }
    await Promise.allSettled([...this.inflight]);
  }

  private fileOf(key: string): string {
    return path.join(this.queueDir, ...key.split('/'));
  }

  /** A (new or rewritten) file exists for `key`: make sure an upload will pick it up. */
  private touch(key: string): void {
    let e = this.entries.get(key);
    if (!e) {
      e = { gen: 0, uploading: false, attempts: 0, timer: undefined, queued: false, flight: undefined, discarded: false, since: Date.now() };
      this.entries.set(key, e);
    }
    e.gen++;
    if (!e.uploading && e.timer === undefined) this.markReady(key, e);
    // If uploading, finish() sees the newer gen and uploads again. If waiting on a backoff timer, keep waiting.
  }

  private markReady(key: string, e: Entry): void {
    if (e.queued || this.closed) return;
    e.queued = true;
    this.ready.push(key);
  }

  private pump(): void {
    while (!this.closed && this.inflight.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift();
      if (key === undefined) break;
      const e = this.entries.get(key);
      if (!e) continue;
      e.queued = false;
      if (e.uploading || e.discarded) continue;
      const p: Promise<void> = this.upload(key, e).finally(() => {
        this.inflight.delete(p);
        if (e.flight === p) e.flight = undefined;
        this.pump();
      });
      e.flight = p;
      this.inflight.add(p);
    }
  }

  private async upload(key: string, e: Entry): Promise<void> {
    e.uploading = true;
    const gen = e.gen;
    const file = this.fileOf(key);
    try {
      let body: Buffer;
      try {
        body = await fsp.readFile(file);
      } catch (err) {
        if (errno(err) === 'ENOENT') {
          if (e.discarded) return;
          // Nothing to upload (removed behind our back). Never invent data; forget the key.
          this.log.error({ key }, 'spool: file vanished before upload');
          if (e.gen === gen) this.forget(key, e);
          return;
        }
        throw err;
      }
      await this.store.put(key, body);
      e.attempts = 0;
      this.stats.uploaded++;
      // A discarded entry's file is gone already, and a newer file for the key is not this upload's.
      if (e.discarded) return;
      if (e.gen === gen) {
        await this.removeFile(key);
        this.forget(key, e);
      }
      this.events.emit('uploaded', key);
    } catch (err) {
      e.uploading = false;
      // Discarded meanwhile: nobody wants these bytes any more, so no retry and no warning.
      if (e.discarded) return;
      e.attempts++;
      this.stats.failed++;
      const error = err instanceof Error ? err : new Error(String(err));
      const delay = this.backoff(e.attempts);
      const fields = { key, attempt: e.attempts, retryInMs: delay, err: errorMessage(err) };
      if (e.attempts === 1 || e.attempts % 10 === 0) this.log.warn(fields, 'spool: upload failed, will retry');
      else this.log.debug(fields, 'spool: upload failed, will retry');
      this.events.emit('failed', key, error, e.attempts);
      if (!this.closed && this.entries.get(key) === e) {
        e.timer = setTimeout(() => {
          e.timer = undefined;
          this.markReady(key, e);
          this.pump();
        }, delay);
      }
      return;
    }
    e.uploading = false;
    // A newer write arrived while uploading: upload again.
    if (this.entries.get(key) === e) this.markReady(key, e);
  }

  private forget(key: string, e: Entry): void {
    if (this.entries.get(key) === e) this.entries.delete(key);
    this.settleWaiters();
  }

  private settleWaiters(): void {
    if (this.pending !== 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
    this.events.emit('drained');
  }

  /** Exponential with "equal jitter": half the step fixed, half random, capped at maxBackoff. */
  private backoff(attempt: number): number {
    const step = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(attempt - 1, 30));
    return Math.round(step / 2 + Math.random() * (step / 2));
  }
}

/** Open (or reopen) a spool folder; files left by a previous process start uploading right away. */
export async function openSpool(opts: SpoolOptions): Promise<Spool> {
  const spool = new SpoolImpl(opts);
  try {
    await spool.init();
  } catch (err) {
    await spool.close();
    throw new MonologueError('SPOOL_WRITE_FAILED', `spool: could not open ${path.resolve(opts.dir)}: ${errorMessage(err)}`);
  }
  return spool;
}
