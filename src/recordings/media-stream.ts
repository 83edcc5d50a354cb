import { Readable } from 'node:stream';
import { CHUNK_HEADER_BYTES, CHUNK_TAG_BYTES, ChunkOpener, decodeSecrets, inspectChunk, recordingDigest, type RecordingSecrets } from '../crypto/chunk-aead.js';
import type { Keyring } from '../crypto/kek.js';
import { MonologueError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Spool } from '../storage/spool.js';
import { objectKeys, type RecordingRow } from './catalog.js';

/**
 * A recording's plaintext (the Ogg Opus file) as a stream, decrypted chunk by chunk (DESIGN §4.4): never
 * written to disk, never held whole. What is in memory at once is one chunk's plaintext, the next
 * chunk's ciphertext (fetched ahead) and the stream's buffer.
 *
 * Opening (`openMediaSource`) does everything that can fail cleanly before a response starts: the data
 * key is unwrapped, the chunk keys listed, and every chunk's header read (`ObjectStore.peek` of its first
 * 38 bytes, not the chunk) for its plaintext length, so the total size and the chunks a byte range touches are
 * known. Streaming then gets and opens only those chunks.
 *
 * A range that starts in chunk i opens from chunk i (ChunkOpener `from`) rather than decrypting from
 * chunk 0 and discarding: every byte served is still authenticated by its own chunk's tag, with its index
 * and last flag in the nonce and the recording id in the associated data, and order is enforced from i on;
 * reading from 0 would cost a seek to the end of a long recording the whole file's storage reads (an
 * `<audio>` element seeks often) to check chunks whose bytes are not sent. The lengths that place a
 * range come from unauthenticated headers, checked against each object's size; a header rewritten
 * consistently by someone who can write to storage could only misplace authentic bytes of this same
 * recording, and a read that reaches the end still proves the last chunk (docs/api-notes/rec.md).
 *
 * Errors (MonologueError codes):
 *   NO_KEY              no keyring, or the recording's key does not unwrap (the cause is logged)
 *   RECORDING_UPLOADING a complete recording whose chunks are still in the spool after UPLOAD_WAIT_MS
 *   CHUNK_MISSING       a complete recording lacks a chunk and nothing is left to upload
 *   STORAGE_UNAVAILABLE the object store failed
 *   CHUNK_*             a stored chunk is damaged (before the response: at open; after: the stream is
 *                       destroyed, so the client sees a cut, never bad bytes); always logged with its code
 */
export interface MediaSource {
  readonly recordingId: string;
  /** Plaintext bytes the recording serves. */
  readonly size: number;
  readonly chunkCount: number;
  /**
   * Plaintext bytes `start`..`end` (inclusive; default the whole file). Once per source: the stream
   * takes the key material, and wipes it when it ends or is destroyed.
   */
  stream(range?: { start: number; end: number }): PlaintextStream;
  /** Wipe the key material when no stream will be made (HEAD, an error). Idempotent. */
  close(): void;
}

export interface MediaStreamDeps {
  objects: ObjectStore;
  /** Chunks of a just-finished call may still be on their way to storage. */
  spool: Spool;
  keyring: Keyring | undefined;
  log: Logger;
  /** Framing of complete recordings already read (a player asks for several ranges of one file). */
  frames?: FrameCache;
}

/**
 * The chunk table (keys and plaintext lengths) of complete recordings, whose chunks no longer change:
 * a second request for the same recording skips the header reads (120 for ten minutes; on S3 they
 * are most of the time to first byte). Holds no key material and no audio; bounded, least recently
 * used first out. A stream that finds a chunk differing from its entry drops the entry.
 */
export interface FrameCache {
  get(recordingId: string): readonly Span[] | undefined;
  set(recordingId: string, spans: readonly Span[]): void;
  delete(recordingId: string): void;
}

export function createFrameCache(maxRecordings = 256): FrameCache {
  const map = new Map<string, readonly Span[]>();
  return {
    get(id) {
      const v = map.get(id);
      if (v) {
        map.delete(id);
        map.set(id, v);
      }
      return v;
    },
    set(id, spans) {
      map.delete(id);
      map.set(id, spans);
      while (map.size > maxRecordings) map.delete(map.keys().next().value as string);
    },
    delete: (id) => void map.delete(id),
  };
}

/** How long a read waits for a recording's chunks that are still in the spool. */
export const UPLOAD_WAIT_MS = 5000;
/** Header reads in flight at once while opening (each is one small storage request). */
const PEEK_CONCURRENCY = 8;

export interface Span {
  index: number;
  key: string;
  /** Plaintext offset of the chunk's first byte in the file. */
  offset: number;
  length: number;
  last: boolean;
}

/** Opens a readable recording (complete, or incomplete with chunks); the caller has checked ownership. */
export async function openMediaSource(deps: MediaStreamDeps, row: RecordingRow, opts: { uploadWaitMs?: number } = {}): Promise<MediaSource> {
  const id = row.id;
  let secrets: RecordingSecrets | undefined = unwrap(deps, row);
  const wipe = () => {
    if (!secrets) return;
    secrets.dataKey.fill(0);
    secrets.salt.fill(0);
    secrets.noncePrefix.fill(0);
    secrets = undefined;
  };
  let spans: readonly Span[];
  try {
    const cached = row.state === 'complete' ? deps.frames?.get(id) : undefined;
    spans = cached ?? (await frame(deps, row, opts.uploadWaitMs ?? UPLOAD_WAIT_MS));
    if (!cached && row.state === 'complete') deps.frames?.set(id, spans);
  } catch (err) {
    wipe();
    if (err instanceof MonologueError && err.code.startsWith('CHUNK_')) deps.log.error({ code: err.code, recordingId: id, err }, 'recording cannot be served: a stored chunk is damaged');
    throw err;
  }
  const size = spans.reduce((n, s) => n + s.length, 0);
  return {
    recordingId: id,
    size,
    chunkCount: spans.length,
    stream(range = { start: 0, end: size - 1 }) {
      if (!secrets) throw new MonologueError('MEDIA_SOURCE_USED', `the media source of ${id} was already streamed or closed; open it again`);
      if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start || range.end >= size) {
        wipe();
        throw new MonologueError('RANGE_INVALID', `bytes ${range.start}-${range.end} are not within 0-${size - 1}`);
      }
      const first = spans.findIndex((s) => s.offset + s.length > range.start);
      // A read to the end takes in trailing empty chunks too, so that it always opens the last one.
      const last = range.end === size - 1 ? spans.length - 1 : spans.findIndex((s) => s.offset + s.length > range.end);
      const opener = new ChunkOpener(id, secrets, { from: first });
      wipe(); // the opener holds the derived chunk key; the data key itself is no longer needed
      return new PlaintextStream({ ...deps, id, spans, first, last, range, opener, mustEnd: row.state === 'complete' });
    },
    close: wipe,
  };
}

function unwrap(deps: MediaStreamDeps, row: RecordingRow): RecordingSecrets {
  if (!deps.keyring) {
    deps.log.error({ code: 'NO_KEY', recordingId: row.id }, 'recording cannot be served: no key-encryption key is available (recording.kekDir)');
    throw new MonologueError('NO_KEY', 'no key-encryption key is available on this server');
  }
  if (!row.wrappedKey || !row.kekId) throw new MonologueError('NO_KEY', `recording ${row.id} has no key (shredded)`);
  try {
    return decodeSecrets(deps.keyring.unwrap({ kekId: row.kekId, blob: row.wrappedKey }, row.id));
  } catch (err) {
    const code = err instanceof MonologueError ? err.code : 'FAILED';
    deps.log.error({ code: 'NO_KEY', cause: code, recordingId: row.id, kekId: row.kekId }, 'recording cannot be served: its data key does not unwrap');
    throw new MonologueError('NO_KEY', 'the recording’s key cannot be opened on this server');
  }
}

const CHUNK_KEY = /\/chunk-(\d{6,})$/;

/** The chunks to serve, in order, with their plaintext lengths from their headers. */
async function frame(deps: MediaStreamDeps, row: RecordingRow, waitMs: number): Promise<Span[]> {
  const id = row.id;
  const indices = await storedChunks(deps, row, waitMs);
  // Indices present from 0 without a gap; a complete recording must have exactly its chunkCount.
  let n = 0;
  while (indices.has(n)) n++;
  if (row.state === 'complete') {
    if (n < row.chunkCount) {
      // Still in the spool (uploads pending) is a wait; with nothing pending the chunk is lost.
      if (deps.spool.pending > 0) throw new MonologueError('RECORDING_UPLOADING', `recording ${id}: ${row.chunkCount - n} of ${row.chunkCount} chunks are not in storage yet`);
      throw new MonologueError('CHUNK_MISSING', `recording ${id} is complete with ${row.chunkCount} chunks, but chunk ${n} is not in storage`);
    }
    n = row.chunkCount;
  } else if (indices.size > n) {
    deps.log.warn({ recordingId: id, served: n, stored: indices.size }, 'incomplete recording has a gap: serving the chunks before it');
  }
  const digest = recordingDigest(id);
  const heads = await mapLimit(n, PEEK_CONCURRENCY, async (i) => {
    const key = objectKeys.chunk(id, i);
    // Header and tag: the least any chunk holds (inspectChunk refuses less), and all it needs.
    const { bytes, size } = await deps.objects.peek(key, CHUNK_HEADER_BYTES + CHUNK_TAG_BYTES);
    const h = inspectChunk(bytes);
    if (h.recordingDigest !== digest) throw new MonologueError('CHUNK_FOREIGN', `chunk ${i} of ${id} belongs to another recording`);
    if (h.index !== i) throw new MonologueError('CHUNK_OUT_OF_ORDER', `the object for chunk ${i} of ${id} holds chunk ${h.index}`);
    if (h.size !== size) throw new MonologueError(h.size > size ? 'CHUNK_TRUNCATED' : 'CHUNK_TAMPERED', `chunk ${i} of ${id} is ${size} bytes; its header declares ${h.size}`);
    return { index: i, key, length: h.length, last: h.last };
  });
  const early = heads.findIndex((h) => h.last);
  if (early >= 0 && early < n - 1) throw new MonologueError('CHUNK_TRUNCATED', `chunk ${early} of ${id} is flagged last, but ${n} chunks are stored`);
  if (row.state === 'complete' && n > 0 && !heads[n - 1]?.last) {
    throw new MonologueError('CHUNK_TRUNCATED', `recording ${id} is complete but its chunk ${n - 1} does not carry the last flag`);
  }
  let offset = 0;
  return heads.map((h) => {
    const span = { ...h, offset };
    offset += h.length;
    return span;
  });
}

/**
 * The chunk indices in storage. While some the catalog counts are missing and the spool still holds
 * uploads, wait (up to `waitMs`) for them: a call that just ended may not have reached storage yet.
 */
async function storedChunks(deps: MediaStreamDeps, row: RecordingRow, waitMs: number): Promise<Set<number>> {
  const prefix = objectKeys.prefix(row.id);
  const deadline = Date.now() + waitMs;
  for (;;) {
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((r) => (wake = r));
    const onUploaded = (key: string) => {
      if (key.startsWith(prefix)) wake();
    };
    // Listen before listing, so an upload between the two is not missed.
    deps.spool.on('uploaded', onUploaded).on('drained', wake);
    try {
      const indices = new Set<number>();
      for (const key of await deps.objects.list(prefix)) {
        const m = CHUNK_KEY.exec(key);
        if (m) indices.add(Number(m[1]));
      }
      let missing = 0;
      for (let i = 0; i < row.chunkCount; i++) if (!indices.has(i)) missing++;
      const left = deadline - Date.now();
      if (missing === 0 || deps.spool.pending === 0 || left <= 0) return indices;
      const timer = setTimeout(wake, left);
      await woken;
      clearTimeout(timer);
    } finally {
      deps.spool.off('uploaded', onUploaded).off('drained', wake);
    }
  }
}

async function mapLimit<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

interface StreamPlan extends MediaStreamDeps {
  id: string;
  spans: readonly Span[];
  /** Index into spans of the first and last chunk to open. */
  first: number;
  last: number;
  range: { start: number; end: number };
  opener: ChunkOpener;
  /** A complete recording: the last chunk must carry the last flag. */
  mustEnd: boolean;
}

/** Pushes each chunk's slice of the range as soon as that chunk is fetched and authenticated. */
export class PlaintextStream extends Readable {
  readonly #p: StreamPlan;
  #next: number;
  #busy = false;
  #ahead: Promise<Buffer> | undefined;
  #primed: (() => void) | undefined;

  constructor(plan: StreamPlan) {
    super();
    this.#p = plan;
    this.#next = plan.first;
  }

  /**
   * Resolves once the first bytes are decrypted and waiting (or the range is done); rejects with the
   * error that destroyed the stream first. A response can then start only once its first chunk is
   * known good, so a chunk that fails at once is a clean error response rather than a cut.
   */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.once('error', reject);
      this.#primed = resolve;
      this.read(0);
    });
  }

  override _read(): void {
    if (this.#busy) return;
    this.#busy = true;
    void this.#fill();
  }

  async #fill(): Promise<void> {
    const p = this.#p;
    try {
      while (this.#next <= p.last) {
        const span = p.spans[this.#next] as Span;
        const bytes = await (this.#ahead ?? this.#fetch(span));
        this.#ahead = this.#next < p.last ? this.#fetch(p.spans[this.#next + 1] as Span) : undefined;
        if (this.destroyed) return;
        const c = p.opener.open(bytes);
        if (c.plaintext.length !== span.length) throw new MonologueError('CHUNK_TAMPERED', `chunk ${span.index} of ${p.id} changed while it was being served`);
        if (c.last && span.index !== p.spans.length - 1) throw new MonologueError('CHUNK_TRUNCATED', `chunk ${span.index} of ${p.id} is flagged last, but ${p.spans.length} chunks are stored`);
        if (p.mustEnd && span.index === p.spans.length - 1 && !c.last) {
          throw new MonologueError('CHUNK_TRUNCATED', `recording ${p.id} is complete but its chunk ${span.index} does not carry the last flag`);
        }
        const from = Math.max(0, p.range.start - span.offset);
        const to = Math.min(span.length, p.range.end + 1 - span.offset);
        this.#next++;
        if (to <= from) continue; // an empty chunk, or one opened only to prove the end
        const more = this.push(c.plaintext.subarray(from, to));
        this.#primed?.();
        if (!more) {
          this.#busy = false; // resumes on the next _read
          return;
        }
      }
      this.push(null);
      this.#primed?.();
    } catch (err) {
      const code = err instanceof MonologueError ? err.code : 'STORAGE_UNAVAILABLE';
      p.log.error({ code, recordingId: p.id, chunk: p.spans[this.#next]?.index, err }, 'media stream cut: a chunk could not be served');
      p.frames?.delete(p.id);
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #fetch(span: Span): Promise<Buffer> {
    const got = this.#p.objects.get(span.key);
    got.catch(() => undefined); // a fetch ahead may be dropped by destroy(); its failure is seen when awaited
    return got;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#ahead = undefined;
    cb(err);
  }
}
