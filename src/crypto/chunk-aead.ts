import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { MonologueError } from '../errors.js';

/**
 * Streaming AEAD for recordings (DESIGN §5, after Tink's AES-GCM-HKDF streaming AEAD and age).
 *
 * Per recording: a random 256-bit data key, a 16-byte salt and a 7-byte nonce prefix (the
 * `RecordingSecrets`, stored only wrapped by a KEK). Chunk key = HKDF-SHA256(dataKey, salt,
 * 'monologue chunk v1'). Chunk i is AES-256-GCM with nonce = prefix(7) ‖ uint32 BE i ‖ last(1 byte, 0/1)
 * and associated data = header ‖ UTF-8 recording id.
 *
 * A sealed chunk is `header(22) ‖ ciphertext ‖ tag(16)`; the header travels in the clear and is
 * authenticated (it is part of the associated data, and its index and last flag are also in the nonce):
 *
 *   offset size field
 *    0      4   magic 'MLC1'
 *    4      1   format version (1)
 *    5      1   flags: bit 0 = last chunk; other bits 0
 *    6      4   chunk index, uint32 BE
 *   10      4   plaintext length, uint32 BE (framing, and telling a cut chunk from a flipped bit)
 *   14      8   first 8 bytes of SHA-256(recording id)
 *
 * Failures, each a MonologueError whose message names the chunk:
 *   CHUNK_FOREIGN      the header names another recording (it cannot authenticate under this one)
 *   CHUNK_TAMPERED     authentication failed: a flipped bit anywhere, a header edited to lie, bad magic/version
 *   CHUNK_TRUNCATED    a chunk shorter than its header says; a stream ending without its last-flagged
 *                      chunk; data after the last chunk
 *   CHUNK_DUPLICATE    an authentic chunk whose index was already opened
 *   CHUNK_OUT_OF_ORDER an authentic chunk ahead of the expected index (swapped / reordered)
 *   CHUNK_MISSING      (openStream) the expected index never arrives: a gap
 * Ordering is judged only after a chunk authenticates, so editing a header yields CHUNK_TAMPERED
 * (except the recording digest, which yields CHUNK_FOREIGN, and a raised length, which reads as CHUNK_TRUNCATED).
 */
export const CHUNK_FORMAT_VERSION = 1;
export const CHUNK_HEADER_BYTES = 22;
export const CHUNK_TAG_BYTES = 16;

export interface RecordingSecrets {
  dataKey: Buffer; // 32 bytes
  salt: Buffer; // 16 bytes
  noncePrefix: Buffer; // 7 bytes
}

export interface OpenedChunk {
  index: number;
  last: boolean;
  plaintext: Buffer;
}

export interface ChunkHeader {
  index: number;
  last: boolean;
  /** Plaintext length the header declares. */
  length: number;
  /** Hex of the first 8 bytes of SHA-256(recording id); compare with `recordingDigest(id)`. */
  recordingDigest: string;
  /** Total bytes the chunk occupies if intact (header + ciphertext + tag). */
  size: number;
}

export function newRecordingSecrets(): RecordingSecrets {
  return { dataKey: randomBytes(DATA_KEY_BYTES), salt: randomBytes(SALT_BYTES), noncePrefix: randomBytes(PREFIX_BYTES) };
}

/** dataKey(32) ‖ salt(16) ‖ noncePrefix(7): the 55 bytes a KEK wraps. */
export function encodeSecrets(s: RecordingSecrets): Buffer {
  checkSecrets(s);
  return Buffer.concat([s.dataKey, s.salt, s.noncePrefix]);
}

export function decodeSecrets(b: Buffer): RecordingSecrets {
  if (b.length !== SECRETS_BYTES) {
    throw new MonologueError('CHUNK_SECRETS_INVALID', `recording secrets must be ${SECRETS_BYTES} bytes (found ${b.length})`);
  }
  return {
    dataKey: Buffer.from(b.subarray(0, DATA_KEY_BYTES)),
    salt: Buffer.from(b.subarray(DATA_KEY_BYTES, DATA_KEY_BYTES + SALT_BYTES)),
    noncePrefix: Buffer.from(b.subarray(DATA_KEY_BYTES + SALT_BYTES)),
  };
}

/** Seals one recording's chunks in order; the chunk sealed with `last = true` ends it. */
export class ChunkSealer {
  readonly #ctx: ChunkContext;
  #next = 0;
  #finished = false;

  constructor(recordingId: string, s: RecordingSecrets) {
    this.#ctx = chunkContext(recordingId, s);
  }

  get finished(): boolean {
    return this.#finished;
  }

  seal(plaintext: Buffer, last: boolean): { index: number; bytes: Buffer } {
    if (this.#finished) throw new MonologueError('CHUNK_SEALER_FINISHED', `recording already ended at chunk ${this.#next - 1}; nothing can follow the last chunk`);
    if (this.#next > MAX_INDEX) throw new MonologueError('CHUNK_LIMIT', `a recording holds at most ${MAX_INDEX + 1} chunks`);
    if (plaintext.length > MAX_LENGTH) throw new MonologueError('CHUNK_LIMIT', `a chunk holds at most ${MAX_LENGTH} bytes`);
    const index = this.#next;
    const { key, prefix, recordingId, digest } = this.#ctx;
    const header = encodeHeader(index, last, plaintext.length, digest);
    const c = createCipheriv('aes-256-gcm', key, nonceFor(prefix, index, last));
    c.setAAD(Buffer.concat([header, recordingId]));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    this.#next = index + 1;
    if (last) this.#finished = true;
    return { index, bytes: Buffer.concat([header, body, c.getAuthTag()]) };
  }
}

/**
 * Opens one recording's chunks, strictly in order from index 0 (or from `from`). A rejected chunk leaves
 * the position unchanged, so a caller may drop it and go on (e.g. skip a duplicate).
 *
 * `from` is for a reader that starts mid-recording (an HTTP byte range): chunks before it are neither read
 * nor checked, and nothing is claimed about them. Every chunk it does open keeps the full guarantees:
 * authenticated under this recording's key with the recording id in the associated data, its index bound
 * in the nonce (so it must be exactly the chunk at that position), its last flag bound in the nonce, and
 * order enforced from `from` on. `finish()` still means "the last-flagged chunk was opened".
 */
export class ChunkOpener {
  readonly #ctx: ChunkContext;
  readonly #from: number;
  #next: number;
  #finished = false;

  constructor(recordingId: string, s: RecordingSecrets, opts: { from?: number } = {}) {
    const from = opts.from ?? 0;
    if (!Number.isInteger(from) || from < 0 || from > MAX_INDEX) throw new MonologueError('CHUNK_LIMIT', `a reader starts at a chunk index 0..${MAX_INDEX} (got ${from})`);
    this.#ctx = chunkContext(recordingId, s);
    this.#from = from;
    this.#next = from;
  }

  /** True once the last-flagged chunk has been opened. */
  get finished(): boolean {
    return this.#finished;
  }

  /** The index `open` expects next (= `from` + number of chunks opened). */
  get nextIndex(): number {
    return this.#next;
  }

  open(bytes: Buffer): OpenedChunk {
    const position = this.#next;
    if (this.#finished) {
      const dup = authenticIndex(this.#ctx, bytes);
      if (dup !== undefined) throw new MonologueError('CHUNK_DUPLICATE', `chunk ${dup} arrived again after the last chunk (${position - 1})`);
      throw new MonologueError('CHUNK_TRUNCATED', `data follows the last chunk (${position - 1})`);
    }
    const opened = authenticate(this.#ctx, bytes, position);
    if (opened.index < this.#from) {
      throw new MonologueError('CHUNK_OUT_OF_ORDER', `expected chunk ${position}, got chunk ${opened.index}, before this reader's first chunk ${this.#from}`);
    }
    if (opened.index < position) {
      throw new MonologueError('CHUNK_DUPLICATE', `chunk ${opened.index} arrived again at position ${position}; it was already opened`);
    }
    if (opened.index > position) {
      throw new MonologueError('CHUNK_OUT_OF_ORDER', `expected chunk ${position}, got chunk ${opened.index} (reordered, or chunk ${position} is missing)`);
    }
    this.#next = position + 1;
    if (opened.last) this.#finished = true;
    return opened;
  }

  /**
   * Call when the stream has ended. Without options a stream must have ended with its last-flagged
   * chunk, else CHUNK_TRUNCATED.
   *
   * `allowUnfinished` is for a recording interrupted by a crash: every chunk present must still be
   * authentic, in order from index 0 and without gaps (`open` enforced that), but a missing final
   * chunk — and so any missing tail, even all of it — is accepted. The caller must then mark the
   * recording incomplete (`finished` is false), and should pass it only for recordings its own records
   * say were interrupted, since it turns a cut-off tail from an error into a state.
   */
  finish(opts: { allowUnfinished?: boolean } = {}): void {
    if (this.#finished || opts.allowUnfinished === true) return;
    throw new MonologueError(
      'CHUNK_TRUNCATED',
      this.#next === this.#from ? (this.#from === 0 ? 'stream holds no chunks' : `no chunk opened from chunk ${this.#from}`) : `stream ends after chunk ${this.#next - 1} without its last chunk`,
    );
  }
}

/**
 * Opens a whole stream and returns the concatenated plaintext, or throws a MonologueError with one of
 * the CHUNK_* codes. When an authentic chunk arrives ahead of its turn, the rest of the stream is
 * searched for the expected index: present later → CHUNK_OUT_OF_ORDER, absent → CHUNK_MISSING.
 * `allowUnfinished`: see ChunkOpener.finish.
 */
export function openStream(recordingId: string, s: RecordingSecrets, chunks: Iterable<Buffer>, opts: { allowUnfinished?: boolean } = {}): Buffer {
  const all = [...chunks];
  const opener = new ChunkOpener(recordingId, s);
  const parts: Buffer[] = [];
  for (const [i, bytes] of all.entries()) {
    try {
      parts.push(opener.open(bytes).plaintext);
    } catch (err) {
      if (err instanceof MonologueError && err.code === 'CHUNK_OUT_OF_ORDER') {
        const ctx = chunkContext(recordingId, s);
        const want = opener.nextIndex;
        if (!all.slice(i + 1).some((b) => authenticIndex(ctx, b) === want)) {
          throw new MonologueError('CHUNK_MISSING', `chunk ${want} is missing (position ${i} holds chunk ${inspectChunk(bytes).index})`);
        }
      }
      throw err;
    }
  }
  opener.finish(opts);
  return Buffer.concat(parts);
}

/** Reads a chunk's header without authenticating it (tooling, framing). Never trust it for access decisions. */
export function inspectChunk(bytes: Buffer): ChunkHeader {
  const h = parseHeader(bytes, -1);
  return {
    index: h.index,
    last: h.last,
    length: h.length,
    recordingDigest: h.digest.toString('hex'),
    size: CHUNK_HEADER_BYTES + h.length + CHUNK_TAG_BYTES,
  };
}

/** Hex digest as it appears in chunk headers (`inspectChunk().recordingDigest`). */
export function recordingDigest(recordingId: string): string {
  return digestOf(recordingId).toString('hex');
}

// ---- helpers ----

const MAGIC = Buffer.from('MLC1', 'ascii');
const HKDF_INFO = 'monologue chunk v1';
const DATA_KEY_BYTES = 32;
const SALT_BYTES = 16;
const PREFIX_BYTES = 7;
const SECRETS_BYTES = DATA_KEY_BYTES + SALT_BYTES + PREFIX_BYTES;
const MAX_INDEX = 0xffffffff;
const MAX_LENGTH = 0xffffffff;

function checkSecrets(s: RecordingSecrets): void {
  if (s.dataKey.length !== DATA_KEY_BYTES || s.salt.length !== SALT_BYTES || s.noncePrefix.length !== PREFIX_BYTES) {
    throw new MonologueError(
      'CHUNK_SECRETS_INVALID',
      `recording secrets need a ${DATA_KEY_BYTES}-byte data key, ${SALT_BYTES}-byte salt and ${PREFIX_BYTES}-byte nonce prefix`,
    );
  }
}

interface ChunkContext {
  key: Buffer;
  prefix: Buffer;
  recordingId: Buffer;
  digest: Buffer;
}

function chunkContext(recordingId: string, s: RecordingSecrets): ChunkContext {
  checkSecrets(s);
  return {
    key: Buffer.from(hkdfSync('sha256', s.dataKey, s.salt, HKDF_INFO, 32)),
    prefix: Buffer.from(s.noncePrefix),
    recordingId: Buffer.from(recordingId, 'utf8'),
    digest: digestOf(recordingId),
  };
}

/** Authenticates one chunk and decrypts it; no ordering checks. */
function authenticate(ctx: ChunkContext, bytes: Buffer, position: number): OpenedChunk {
  const h = parseHeader(bytes, position);
  if (!h.digest.equals(ctx.digest)) {
    throw new MonologueError('CHUNK_FOREIGN', `chunk at position ${position} (header index ${h.index}) belongs to another recording (digest ${h.digest.toString('hex')})`);
  }
  const expected = CHUNK_HEADER_BYTES + h.length + CHUNK_TAG_BYTES;
  if (bytes.length < expected) {
    throw new MonologueError('CHUNK_TRUNCATED', `chunk ${h.index} is ${bytes.length} bytes, ${expected - bytes.length} short of the ${expected} its header declares`);
  }
  if (bytes.length > expected) {
    throw new MonologueError('CHUNK_TAMPERED', `chunk ${h.index} has ${bytes.length - expected} bytes more than its header declares`);
  }
  const d = createDecipheriv('aes-256-gcm', ctx.key, nonceFor(ctx.prefix, h.index, h.last));
  d.setAAD(Buffer.concat([bytes.subarray(0, CHUNK_HEADER_BYTES), ctx.recordingId]));
  d.setAuthTag(bytes.subarray(bytes.length - CHUNK_TAG_BYTES));
  try {
    const plaintext = Buffer.concat([d.update(bytes.subarray(CHUNK_HEADER_BYTES, bytes.length - CHUNK_TAG_BYTES)), d.final()]);
    return { index: h.index, last: h.last, plaintext };
  } catch (err) {
    throw new MonologueError('CHUNK_TAMPERED', `chunk at position ${position} (header index ${h.index}) does not authenticate`, { cause: err });
  }
}

/** For diagnosis only: the index of a chunk if it authenticates, else undefined. */
function authenticIndex(ctx: ChunkContext, bytes: Buffer): number | undefined {
  try {
    return authenticate(ctx, bytes, -1).index;
  } catch {
    return undefined;
  }
}

function digestOf(recordingId: string): Buffer {
  return createHash('sha256').update(recordingId, 'utf8').digest().subarray(0, 8);
}

function nonceFor(prefix: Buffer, index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, PREFIX_BYTES);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function encodeHeader(index: number, last: boolean, length: number, digest: Buffer): Buffer {
  const h = Buffer.alloc(CHUNK_HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[4] = CHUNK_FORMAT_VERSION;
  h[5] = last ? 1 : 0;
  h.writeUInt32BE(index, 6);
  h.writeUInt32BE(length, 10);
  digest.copy(h, 14);
  return h;
}

function parseHeader(bytes: Buffer, position: number): { index: number; last: boolean; length: number; digest: Buffer } {
  const where = position >= 0 ? `chunk at position ${position}` : 'chunk';
  if (bytes.length < CHUNK_HEADER_BYTES + CHUNK_TAG_BYTES) {
    throw new MonologueError('CHUNK_TRUNCATED', `${where} is ${bytes.length} bytes, shorter than a header and tag (${CHUNK_HEADER_BYTES + CHUNK_TAG_BYTES})`);
  }
  if (!bytes.subarray(0, 4).equals(MAGIC)) throw new MonologueError('CHUNK_TAMPERED', `${where} does not start with MLC1`);
  if (bytes[4] !== CHUNK_FORMAT_VERSION) throw new MonologueError('CHUNK_TAMPERED', `${where} has format version ${bytes[4]}, expected ${CHUNK_FORMAT_VERSION}`);
  const flags = bytes[5] as number;
  if ((flags & ~1) !== 0) throw new MonologueError('CHUNK_TAMPERED', `${where} has unknown flags ${flags}`);
  return { index: bytes.readUInt32BE(6), last: (flags & 1) === 1, length: bytes.readUInt32BE(10), digest: bytes.subarray(14, 22) };
}
