/**
 * A deliberately independent Ogg page reader for the recorder tests (RFC 3533): checks the capture pattern,
 * version, CRC (own bytewise implementation, not the muxer's), page sequence, serial, and reassembles packets
 * from lacing values. Plus Opus tone packets from libopus for the round-trip tests.
 */
import opus from '@discordjs/opus';
import { buildRtp } from '../../src/recorder/rtp.js';

export interface Page {
  flags: number;
  granule: number;
  serial: number;
  sequence: number;
  offset: number;
  length: number;
  packets: Buffer[];
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = (r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1) >>> 0;
    t[i] = r >>> 0;
  }
  return t;
})();

export function crcBytewise(buf: Uint8Array): number {
  let crc = 0;
  for (const b of buf) crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ b) & 0xff] as number)) >>> 0;
  return crc;
}

/** Parse a whole Ogg stream; throws with a reason on any violation. */
export function readOgg(buf: Buffer): Page[] {
  const pages: Page[] = [];
  let o = 0;
  while (o < buf.length) {
    if (buf.length - o < 27) throw new Error(`truncated page header at ${o}`);
    if (buf.toString('latin1', o, o + 4) !== 'OggS') throw new Error(`no capture pattern at ${o}`);
    if (buf[o + 4] !== 0) throw new Error('bad stream structure version');
    const nseg = buf[o + 26] as number;
    const lacing = buf.subarray(o + 27, o + 27 + nseg);
    const bodyLen = lacing.reduce((a, b) => a + b, 0);
    const len = 27 + nseg + bodyLen;
    if (o + len > buf.length) throw new Error(`truncated page at ${o}`);
    const page = Buffer.from(buf.subarray(o, o + len));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    if (crcBytewise(page) !== crc) throw new Error(`bad CRC on page at ${o}`);
    const packets: Buffer[] = [];
    let start = 27 + nseg;
    let size = 0;
    for (let i = 0; i < nseg; i++) {
      size += lacing[i] as number;
      if ((lacing[i] as number) < 255) {
        packets.push(page.subarray(start, start + size));
        start += size;
        size = 0;
      }
    }
    if (size !== 0) throw new Error('packet continues to next page (the muxer never does this)');
    const granule = Number(page.readBigInt64LE(6));
    pages.push({ flags: page[5] as number, granule, serial: page.readUInt32LE(14), sequence: page.readUInt32LE(18), offset: o, length: len, packets });
    o += len;
  }
  return pages;
}

/** Structural Ogg Opus checks; returns the audio packets. */
export function checkOggOpus(buf: Buffer, expect: { eos?: boolean } = {}): { pages: Page[]; audio: Buffer[]; preSkip: number; channels: number } {
  const pages = readOgg(buf);
  if (pages.length < 2) throw new Error('fewer than 2 pages');
  const [head, tags] = pages as [Page, Page];
  if (head.flags !== 0x02) throw new Error(`first page flags ${head.flags}, expected BOS only`);
  if (head.packets.length !== 1 || head.packets[0]?.toString('latin1', 0, 8) !== 'OpusHead') throw new Error('page 0 is not OpusHead alone');
  if (tags.packets.length !== 1 || tags.packets[0]?.toString('latin1', 0, 8) !== 'OpusTags') throw new Error('page 1 is not OpusTags alone');
  if (head.granule !== 0 || tags.granule !== 0) throw new Error('header granule not 0');
  const serial = head.serial;
  let prevGranule = 0;
  const audio: Buffer[] = [];
  pages.forEach((p, i) => {
    if (p.serial !== serial) throw new Error('serial changes');
    if (p.sequence !== i) throw new Error(`page sequence ${p.sequence} at index ${i}`);
    if (i > 0 && p.flags & 0x02) throw new Error('BOS after first page');
    if (p.flags & 0x01) throw new Error('continued page');
    if (i < pages.length - 1 && p.flags & 0x04) throw new Error('EOS before last page');
    if (i >= 2) {
      if (p.granule < prevGranule) throw new Error('granule decreases');
      prevGranule = p.granule;
      audio.push(...p.packets);
    }
  });
  if ((expect.eos ?? true) && !((pages[pages.length - 1] as Page).flags & 0x04)) throw new Error('no EOS on last page');
  const h = head.packets[0] as Buffer;
  return { pages, audio, preSkip: h.readUInt16LE(10), channels: h[9] as number };
}

/** `count` 20 ms Opus packets of a `freq` Hz tone (mono 48 kHz), or of digital silence when freq is 0. */
export function opusTone(freq: number, count: number, amplitude = 0.5): Buffer[] {
  const enc = new opus.OpusEncoder(48000, 1);
  const out: Buffer[] = [];
  for (let f = 0; f < count; f++) {
    const pcm = Buffer.alloc(1920);
    for (let i = 0; i < 960; i++) pcm.writeInt16LE(Math.round(32767 * amplitude * Math.sin((2 * Math.PI * freq * (f * 960 + i)) / 48000)), i * 2);
    out.push(enc.encode(pcm));
  }
  return out;
}

/** Decode packets with a fresh libopus decoder to one Int16Array. */
export function decodeAll(packets: Buffer[]): Int16Array {
  const dec = new opus.OpusEncoder(48000, 1);
  const parts = packets.map((p) => dec.decode(p));
  const all = Buffer.concat(parts);
  return new Int16Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.length));
}

export const SSRC = 0x11223344;

export function rtp(seq: number, ts: number, payload: Uint8Array, ssrc = SSRC, pt = 111): Buffer {
  return buildRtp({ payloadType: pt, sequenceNumber: seq & 0xffff, timestamp: ts >>> 0, ssrc }, payload);
}
