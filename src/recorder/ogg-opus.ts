/**
 * Ogg Opus muxer: raw Opus packets in, Ogg pages out (RFC 3533 framing, RFC 7845 Opus mapping).
 *
 * Why our own: the npm registry has no maintained Ogg *muxer* for raw Opus packets. `ogg-opus-decoder` and
 * `@wasm-audio-decoders/*` only decode; `ogg-packet` builds libogg structs for the unmaintained native
 * `ogg` addon; `is-ogg` only sniffs. Muxing is small (page header, lacing, CRC), and owning it lets the
 * recorder cut chunks exactly at page boundaries.
 *
 * Rules kept here:
 * - page 0 holds only OpusHead (BOS flag), page 1 only OpusTags; both have granule position 0;
 * - an audio page's granule position is the total 48 kHz samples of every packet completed up to and
 *   including that page (pre-skip samples included, RFC 7845 §4); packets never span pages (an Opus
 *   packet is at most 61,440 bytes with 120 ms of frames, one page body holds 65,025), so every audio
 *   page completes at least one packet;
 * - the open page is closed lazily: only when the next packet would overflow it (255 lacing values, the
 *   byte budget or the duration budget), on an explicit `flush()`, or at `end()`, which sets EOS. The
 *   last page therefore always carries audio and the EOS flag;
 * - the serial number is random (RFC 3533 asks for unique serials so streams can be chained or grouped).
 */
import { randomBytes } from 'node:crypto';

export interface OggOpusMuxerOptions {
  /** Receives every finished page, in order; the muxer keeps no reference to it. */
  onPage: (page: Buffer, info: OggPageInfo) => void;
  /** Stream serial number; random by default. */
  serial?: number;
  /** Samples (48 kHz) the player drops from the start; 312 (libopus's encoder delay at 48 kHz) by default. */
  preSkip?: number;
  /** Output channel count in OpusHead: 1 (default) or 2. */
  channels?: 1 | 2;
  /** Informational original sample rate in OpusHead; 48,000 by default. */
  inputSampleRate?: number;
  /** Vendor string in OpusTags. */
  vendor?: string;
  /** Close the open page before it would hold more than this many body bytes; 4,096 by default. */
  maxPageBytes?: number;
  /** Close the open page once it holds this many samples (48 kHz); 48,000 (1 s) by default. */
  maxPageSamples?: number;
}

export interface OggPageInfo {
  /** Page sequence number, from 0. */
  sequence: number;
  /** Granule position written into the page (0 for header pages). */
  granule: number;
  /** True for the OpusHead and OpusTags pages. */
  header: boolean;
  eos: boolean;
  /** Packets completed on this page. */
  packets: number;
}

/** Ogg page header flags (RFC 3533 §6). */
export const OGG_CONTINUED = 0x01;
export const OGG_BOS = 0x02;
export const OGG_EOS = 0x04;
export const OGG_HEADER_BYTES = 27;
/** Largest body one page can describe: 255 lacing values of 255. */
export const OGG_MAX_BODY = 255 * 255;
/** Largest Opus packet we mux: 48 frames (120 ms of 2.5 ms frames) of at most 1,275 bytes, plus framing. */
export const MAX_OPUS_PACKET_BYTES = 61_440;

export class OggOpusMuxer {
  readonly serial: number;
  readonly preSkip: number;
  readonly channels: 1 | 2;
  private readonly onPage: OggOpusMuxerOptions['onPage'];
  private readonly inputSampleRate: number;
  private readonly vendor: string;
  private readonly maxPageBytes: number;
  private readonly maxPageSamples: number;
  private sequence = 0;
  private totalSamples = 0;
  private headersWritten = false;
  private isEnded = false;
  // The open page: its packets' bytes, copied in as they come. Holding the packets themselves would keep every
  // datagram they are views of alive for up to a page (a second), long enough for the GC to promote them.
  private body = new Uint8Array(0);
  private packets = 0;
  private readonly lacing = new Uint8Array(255);
  private segments = 0;
  private bodyBytes = 0;
  private pageSamples = 0;

  constructor(opts: OggOpusMuxerOptions) {
    this.onPage = opts.onPage;
    this.serial = (opts.serial ?? randomBytes(4).readUInt32LE(0)) >>> 0;
    this.preSkip = opts.preSkip ?? 312;
    this.channels = opts.channels ?? 1;
    this.inputSampleRate = opts.inputSampleRate ?? 48000;
    this.vendor = opts.vendor ?? 'monologue';
    this.maxPageBytes = Math.min(opts.maxPageBytes ?? 4096, OGG_MAX_BODY);
    this.maxPageSamples = opts.maxPageSamples ?? 48000;
    if (!Number.isInteger(this.preSkip) || this.preSkip < 0 || this.preSkip > 0xffff) throw new RangeError('preSkip must be 0..65535');
  }

  /** Samples (48 kHz) of every packet written so far: the granule position the next closed page would carry. */
  get granule(): number {
    return this.totalSamples;
  }

  /** Packets waiting on the open page. */
  get openPackets(): number {
    return this.packets;
  }

  get ended(): boolean {
    return this.isEnded;
  }

  /**
   * Add one Opus packet of `samples` 48 kHz samples (from its TOC: see `opusPacketSamples`). Its bytes are
   * copied: `packet` may be reused at once.
   */
  write(packet: Uint8Array, samples: number): void {
    if (this.isEnded) throw new Error('OggOpusMuxer: write after end');
    const n = packet.length;
    if (n > MAX_OPUS_PACKET_BYTES) throw new RangeError(`Opus packet of ${n} bytes is larger than ${MAX_OPUS_PACKET_BYTES}`);
    if (!this.headersWritten) this.writeHeaders(false);
    const segs = ((n / 255) | 0) + 1;
    if (
      this.packets > 0 &&
      (this.segments + segs > 255 || this.bodyBytes + n > this.maxPageBytes || this.pageSamples >= this.maxPageSamples)
    ) {
      this.closePage(0);
    }
    const lacing = this.lacing;
    let s = this.segments;
    for (let k = 1; k < segs; k++) lacing[s++] = 255;
    lacing[s++] = n % 255;
    this.segments = s;
    if (this.bodyBytes + n > this.body.length) {
      const grown = new Uint8Array(Math.min(OGG_MAX_BODY, Math.max(this.maxPageBytes, this.bodyBytes + n, 2 * this.body.length)));
      grown.set(this.body.subarray(0, this.bodyBytes));
      this.body = grown;
    }
    this.body.set(packet, this.bodyBytes);
    this.packets++;
    this.bodyBytes += n;
    this.pageSamples += samples;
    this.totalSamples += samples;
  }

  /** Close the open page now (no EOS), e.g. at a chunk boundary. Does nothing when it is empty. */
  flush(): void {
    if (this.packets > 0) this.closePage(0);
  }

  /**
   * Close the stream: the open page goes out with EOS. A stream that never got audio ends with its OpusTags
   * page carrying EOS. Idempotent.
   */
  end(): void {
    if (this.isEnded) return;
    if (!this.headersWritten) this.writeHeaders(true);
    else if (this.packets > 0) this.closePage(OGG_EOS);
    else {
      // Only reachable when a caller flushes and then ends: an EOS page that holds no packet and repeats the
      // last granule. The recorder never does this: it cuts chunks lazily, so its last page carries audio.
      this.emit(OGG_EOS, this.totalSamples, [], 0, 0, false, 0);
    }
    this.isEnded = true;
  }

  private writeHeaders(eosOnTags: boolean): void {
    this.headersWritten = true;
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1; // version
    head[9] = this.channels;
    head.writeUInt16LE(this.preSkip, 10);
    head.writeUInt32LE(this.inputSampleRate, 12);
    head.writeInt16LE(0, 16); // output gain
    head[18] = 0; // channel mapping family 0: mono or stereo
    const vendor = Buffer.from(this.vendor, 'utf8');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    tags.writeUInt32LE(0, 12 + vendor.length); // no user comments
    this.emit(OGG_BOS, 0, [head], head.length, 1, true, laceOne(head.length));
    this.emit(eosOnTags ? OGG_EOS : 0, 0, [tags], tags.length, 1, true, laceOne(tags.length));
  }

  private closePage(flags: number): void {
    this.emit(flags, this.totalSamples, [this.body.subarray(0, this.bodyBytes)], this.bodyBytes, this.packets, false, this.segments);
    this.packets = 0;
    this.segments = 0;
    this.bodyBytes = 0;
    this.pageSamples = 0;
  }

  /** Build one page. `segments` lacing values come from `this.lacing` unless `segments` is a header lacing. */
  private emit(flags: number, granule: number, parts: readonly Uint8Array[], bodyBytes: number, packets: number, header: boolean, segments: number | Uint8Array): void {
    const lacing = typeof segments === 'number' ? this.lacing.subarray(0, segments) : segments;
    const headerLen = OGG_HEADER_BYTES + lacing.length;
    const page = Buffer.allocUnsafe(headerLen + bodyBytes);
    page.writeUInt32BE(0x4f676753, 0); // "OggS"
    page[4] = 0; // stream structure version
    page[5] = flags;
    page.writeUInt32LE(granule % 0x1_0000_0000, 6);
    page.writeUInt32LE(Math.floor(granule / 0x1_0000_0000), 10);
    page.writeUInt32LE(this.serial, 14);
    page.writeUInt32LE(this.sequence, 18);
    page.writeUInt32LE(0, 22); // CRC field is zero while the CRC is computed
    page[26] = lacing.length;
    page.set(lacing, OGG_HEADER_BYTES);
    let o = headerLen;
    for (const p of parts) {
      page.set(p, o);
      o += p.length;
    }
    page.writeUInt32LE(oggCrc32(page), 22);
    const info: OggPageInfo = { sequence: this.sequence, granule, header, eos: (flags & OGG_EOS) !== 0, packets };
    this.sequence++;
    this.onPage(page, info);
  }
}

function laceOne(n: number): Uint8Array {
  const segs = ((n / 255) | 0) + 1;
  const l = new Uint8Array(segs).fill(255);
  l[segs - 1] = n % 255;
  return l;
}

// ---------------------------------------------------------------- Ogg CRC-32

/**
 * The Ogg CRC (RFC 3533 §6): polynomial 0x04C11DB7, initial value 0, MSB first (not reflected), no final
 * XOR. It is not zlib's CRC-32. Slicing-by-4 tables: four bytes per step.
 */
const CRC_TABLES: Int32Array[] = (() => {
  const t0 = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t0[i] = r;
  }
  const tables = [t0];
  for (let s = 1; s < 4; s++) {
    const prev = tables[s - 1] as Int32Array;
    const t = new Int32Array(256);
    for (let i = 0; i < 256; i++) t[i] = (prev[i] as number) << 8 ^ (t0[((prev[i] as number) >>> 24) & 0xff] as number);
    tables.push(t);
  }
  return tables;
})();

export function oggCrc32(buf: Uint8Array, start = 0, end = buf.length): number {
  const [t0, t1, t2, t3] = CRC_TABLES as [Int32Array, Int32Array, Int32Array, Int32Array];
  let crc = 0;
  let i = start;
  const end4 = start + ((end - start) & ~3);
  for (; i < end4; i += 4) {
    crc ^= ((buf[i] as number) << 24) | ((buf[i + 1] as number) << 16) | ((buf[i + 2] as number) << 8) | (buf[i + 3] as number);
    crc =
      (t3[(crc >>> 24) & 0xff] as number) ^
      (t2[(crc >>> 16) & 0xff] as number) ^
      (t1[(crc >>> 8) & 0xff] as number) ^
      (t0[crc & 0xff] as number);
  }
  for (; i < end; i++) crc = (crc << 8) ^ (t0[((crc >>> 24) ^ (buf[i] as number)) & 0xff] as number);
  return crc >>> 0;
}
