/**
 * Facts about single Opus packets (RFC 6716 §3.1-3.2): how many 48 kHz samples one holds, read from its
 * TOC byte (never from RTP timestamps), whether its framing is plausible, and ready-made silent packets
 * that fill loss and DTX gaps so that a recording's duration matches wall time.
 */

/** Largest duration one Opus packet may carry: 120 ms at 48 kHz (RFC 6716 §3.2.5). */
export const MAX_PACKET_SAMPLES = 5760;

/** Samples per frame at 48 kHz for each of the 32 TOC configurations (RFC 6716 §3.1, Table 2). */
const FRAME_SAMPLES: Int32Array = (() => {
  const t = new Int32Array(32);
  for (let c = 0; c < 32; c++) {
    if (c < 12) t[c] = [480, 960, 1920, 2880][c % 4] as number; // SILK-only: 10, 20, 40, 60 ms
    else if (c < 16) t[c] = [480, 960][c % 2] as number; // Hybrid: 10, 20 ms
    else t[c] = [120, 240, 480, 960][c % 4] as number; // CELT-only: 2.5, 5, 10, 20 ms
  }
  return t;
})();

/**
 * Duration in 48 kHz samples of the Opus packet in `buf[offset, offset+length)`, or 0 when the packet is
 * malformed (empty; code 1 with an odd body; code 2/3 too short; code 3 with no frames; over 120 ms).
 */
export function opusPacketSamples(buf: Uint8Array, offset = 0, length = buf.length - offset): number {
  if (length < 1) return 0;
  const toc = buf[offset] as number;
  const frame = FRAME_SAMPLES[toc >> 3] as number;
  let frames: number;
  switch (toc & 3) {
    case 0:
      frames = 1;
      break;
    case 1:
      if ((length - 1) % 2 !== 0) return 0; // two frames of equal size
      frames = 2;
      break;
    case 2:
      if (length < 2) return 0;
      frames = 2;
      break;
    default:
      if (length < 2) return 0;
      frames = (buf[offset + 1] as number) & 0x3f;
      if (frames === 0) return 0;
  }
  const samples = frame * frames;
  return samples > MAX_PACKET_SAMPLES ? 0 : samples;
}

/**
 * The smallest unit of silence we can insert: 2.5 ms (120 samples at 48 kHz), one CELT frame.
 * Gaps are filled to the nearest multiple below; the remainder carries to the next gap.
 */
export const SILENCE_QUANTUM = 120;

/**
 * A CELT frame whose range-coded first symbol is the "silence" flag: `0xFF 0xFE` after the TOC decodes to
 * digital silence at every CELT frame size (the well-known 3-byte 20 ms silence frame is `F8 FF FE`).
 * 120 ms: code 3, CBR, 6 frames of 20 ms (`FB 06` + 6 × `FF FE`), 14 bytes.
 */
const SILENT_120MS = Buffer.from([0xfb, 0x06, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe]);
const SILENT_BY_SAMPLES: ReadonlyArray<readonly [number, Buffer]> = [
  [5760, SILENT_120MS],
  [960, Buffer.from([0xf8, 0xff, 0xfe])], // config 31, CELT FB 20 ms
  [480, Buffer.from([0xf0, 0xff, 0xfe])], // config 30, 10 ms
  [240, Buffer.from([0xe8, 0xff, 0xfe])], // config 29, 5 ms
  [120, Buffer.from([0xe0, 0xff, 0xfe])], // config 28, 2.5 ms
];

/**
 * Silent Opus packets covering `samples` (rounded down to 2.5 ms), largest first, passed to `emit` one by one
 * (the buffers are shared constants: do not modify them). Returns the samples covered.
 */
export function forEachSilentPacket(samples: number, emit: (packet: Buffer, samples: number) => void): number {
  let left = Math.floor(samples / SILENCE_QUANTUM) * SILENCE_QUANTUM;
  const covered = left;
  for (const [size, packet] of SILENT_BY_SAMPLES) {
    while (left >= size) {
      emit(packet, size);
      left -= size;
    }
  }
  return covered;
}

/** True when `packet` is one of our inserted silent packets (the same shared buffer). */
export function isInsertedSilence(packet: Uint8Array): boolean {
  for (const [, p] of SILENT_BY_SAMPLES) if (p === packet) return true;
  return false;
}
