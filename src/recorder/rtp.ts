/**
 * RTP (RFC 3550) header parsing for the recorder's intake. The parser validates every length and flag
 * before it trusts it, never throws on bad input, and never copies the payload: `payload` is a view
 * into the datagram. RTCP that arrives on the same port (RFC 5761 demultiplexing: RTP payload types
 * 64-95 clash with RTCP packet types 192-223 once the marker bit is folded in) is rejected as `rtcp`.
 */

export interface RtpPacket {
  readonly ok: true;
  readonly marker: boolean;
  readonly payloadType: number;
  /** 16-bit sequence number. */
  readonly sequenceNumber: number;
  /** 32-bit timestamp, unsigned. */
  readonly timestamp: number;
  /** 32-bit SSRC, unsigned. */
  readonly ssrc: number;
  readonly csrcCount: number;
  /** Header extension profile (e.g. 0xBEDE for RFC 8285 one-byte headers), or -1 when there is none. */
  readonly extensionProfile: number;
  /** Bytes of padding removed from the end (0 when the P bit is clear). */
  readonly paddingBytes: number;
  /** The payload, a view into the datagram (no copy). */
  readonly payload: Buffer;
}

export type RtpRejectReason =
  | 'too-short'
  | 'bad-version'
  | 'rtcp'
  | 'reserved-payload-type'
  | 'csrc-overrun'
  | 'extension-overrun'
  | 'bad-padding';

export interface RtpReject {
  readonly ok: false;
  readonly reason: RtpRejectReason;
}

export const RTP_HEADER_BYTES = 12;

/** Parse `buf` as one RTP packet; returns a reject (never throws) for anything that is not one. */
export function parseRtp(buf: Buffer): RtpPacket | RtpReject {
  const len = buf.length;
  if (len < RTP_HEADER_BYTES) return REJECT['too-short'];
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  if (b0 >> 6 !== 2) return REJECT['bad-version'];
  const pt = b1 & 0x7f;
  // RFC 5761 §4: RTCP SR/RR/SDES/BYE/APP/RTPFB/PSFB/XR (200-207) read as RTP PT 72-79 with the marker set.
  if (pt >= 72 && pt <= 79) return REJECT.rtcp;
  if (pt >= 64 && pt <= 95) return REJECT['reserved-payload-type'];
  const csrcCount = b0 & 0x0f;
  let offset = RTP_HEADER_BYTES + 4 * csrcCount;
  if (offset > len) return REJECT['csrc-overrun'];
  let extensionProfile = -1;
  if (b0 & 0x10) {
    if (offset + 4 > len) return REJECT['extension-overrun'];
    extensionProfile = buf.readUInt16BE(offset);
    const words = buf.readUInt16BE(offset + 2);
    offset += 4 + 4 * words;
    if (offset > len) return REJECT['extension-overrun'];
  }
  let end = len;
  let paddingBytes = 0;
  if (b0 & 0x20) {
    paddingBytes = buf[len - 1] as number;
    // The count includes itself, so it is at least 1, and it cannot reach into the header.
    if (paddingBytes === 0 || paddingBytes > len - offset) return REJECT['bad-padding'];
    end = len - paddingBytes;
  }
  return {
    ok: true,
    marker: (b1 & 0x80) !== 0,
    payloadType: pt,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrcCount,
    extensionProfile,
    paddingBytes,
    payload: buf.subarray(offset, end),
  };
}

/** Build an RTP packet (tests, the benchmark and loopback peers): version 2, no CSRC, no extension. */
export function buildRtp(h: { payloadType: number; sequenceNumber: number; timestamp: number; ssrc: number; marker?: boolean }, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RTP_HEADER_BYTES + payload.length);
  out[0] = 0x80;
  out[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  out.writeUInt16BE(h.sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(h.timestamp >>> 0, 4);
  out.writeUInt32BE(h.ssrc >>> 0, 8);
  out.set(payload, RTP_HEADER_BYTES);
  return out;
}

/** One shared, frozen object per reason: rejecting junk allocates nothing. */
const REJECT: Readonly<Record<RtpRejectReason, RtpReject>> = Object.freeze({
  'too-short': Object.freeze({ ok: false, reason: 'too-short' }),
  'bad-version': Object.freeze({ ok: false, reason: 'bad-version' }),
  rtcp: Object.freeze({ ok: false, reason: 'rtcp' }),
  'reserved-payload-type': Object.freeze({ ok: false, reason: 'reserved-payload-type' }),
  'csrc-overrun': Object.freeze({ ok: false, reason: 'csrc-overrun' }),
  'extension-overrun': Object.freeze({ ok: false, reason: 'extension-overrun' }),
  'bad-padding': Object.freeze({ ok: false, reason: 'bad-padding' }),
} as const);
