/**
 * RTP intake for one fork: turns datagrams from rtpengine into an in-order stream of Opus packets whose
 * durations add up to wall time.
 *
 * - Locks to the first SSRC that sends the negotiated Opus payload type; other SSRCs are dropped and counted.
 * - A small reorder buffer (at most `reorderPackets` waiting, or `reorderMs` of arrival time) sorts by
 *   extended sequence number (16-bit wrap); duplicates and packets older than what was already released
 *   are dropped. In-order packets pass straight through with no buffering.
 * - Timing comes from RTP timestamps (48 kHz for Opus, RFC 7587) and each packet's own duration from its TOC
 *   byte. When the timestamp jumps past the end of the previous packet (loss, DTX), silent Opus packets are
 *   inserted for the missing time, so the Ogg granule positions — and the file's duration — follow wall time.
 *   A jump larger than the arrival clock allows (a sender that restarted its timestamps) is capped by the
 *   arrival time that actually passed.
 */
import { parseRtp } from './rtp.js';
import { forEachSilentPacket, MAX_PACKET_SAMPLES, opusPacketSamples, SILENCE_QUANTUM } from './opus-packet.js';
import { MAX_OPUS_PACKET_BYTES } from './ogg-opus.js';

export interface RtpIntakeOptions {
  /** The Opus payload type negotiated in SDP (usually 111). */
  payloadType: number;
  /** In order, gaps filled: `inserted` is true for the silent packets the intake made up. */
  onPacket: (packet: Buffer, samples: number, inserted: boolean) => void;
  /** Most packets held while waiting for a missing one; 5 by default. */
  reorderPackets?: number;
  /** Longest a packet is held (arrival time) while waiting for a missing one; 100 ms by default. */
  reorderMs?: number;
  /** Extra silence allowed beyond the arrival-time gap when filling a timestamp gap; 200 ms by default. */
  gapSlackMs?: number;
}

export interface IntakeStats {
  /** Datagrams seen. */
  received: number;
  /** Opus packets passed on (not counting inserted silence). */
  packets: number;
  /** Opus payload bytes passed on. */
  bytes: number;
  /** Sequence numbers never received (given up on). */
  lost: number;
  /** Packets that arrived out of order and were put back in order. */
  reordered: number;
  duplicates: number;
  /** Packets that arrived after their place in the stream was already given up. */
  late: number;
  foreignSsrc: number;
  wrongPayloadType: number;
  /** RTCP that reached the RTP port. */
  rtcp: number;
  /** Not RTP, or not a well-formed Opus packet. */
  bad: number;
  /** 48 kHz samples of silence inserted for loss and DTX gaps. */
  insertedSamples: number;
  /** Timestamp gaps (loss, DTX) filled with silence. */
  gaps: number;
}

interface Held {
  ext: number;
  timestamp: number;
  payload: Buffer;
  samples: number;
  arrivalMs: number;
}

export class RtpIntake {
  readonly stats: IntakeStats = {
    received: 0, packets: 0, bytes: 0, lost: 0, reordered: 0, duplicates: 0, late: 0,
    foreignSsrc: 0, wrongPayloadType: 0, rtcp: 0, bad: 0, insertedSamples: 0,
    gaps: 0,
  };
  payloadType: number;
  private readonly onPacket: RtpIntakeOptions['onPacket'];
  private readonly reorderPackets: number;
  private readonly reorderMs: number;
  private readonly gapSlackSamples: number;
  private lockedSsrc = -1;
  private started = false;
  /** Highest extended sequence number seen. */
  private highest = 0;
  /** Extended sequence number expected next on the output. */
  private nextSeq = 0;
  /** Bit i set: sequence number nextSeq-1-i was released (duplicate detection behind the window). */
  private releasedMask = 0;
  /** Held packets, sorted by extended sequence number. */
  private readonly held: Held[] = [];
  /** RTP timestamp at which the next packet is expected to start. */
  private expectedTs = 0;
  private lastArrivalMs = 0;
  /** Timestamp gap (samples) too small to fill yet, or overlap to absorb. */
  private carry = 0;
  private readonly emitSilence = (packet: Buffer, samples: number): void => {
    this.stats.insertedSamples += samples;
    this.onPacket(packet, samples, true);
  };

  constructor(opts: RtpIntakeOptions) {
    this.payloadType = opts.payloadType;
    this.onPacket = opts.onPacket;
    this.reorderPackets = opts.reorderPackets ?? 5;
    this.reorderMs = opts.reorderMs ?? 100;
    this.gapSlackSamples = (opts.gapSlackMs ?? 200) * 48;
  }

  /** The SSRC the intake locked to, or undefined before the first Opus packet. */
  get ssrc(): number | undefined {
    return this.lockedSsrc < 0 ? undefined : this.lockedSsrc;
  }

  /** Feed one datagram; `arrivalMs` is a monotonic clock in milliseconds. Never throws on bad input. */
  push(datagram: Buffer, arrivalMs: number): void {
    const st = this.stats;
    st.received++;
    const p = parseRtp(datagram);
    if (!p.ok) {
      if (p.reason === 'rtcp') st.rtcp++;
      else st.bad++;
      return;
    }
    if (p.payloadType !== this.payloadType) {
      st.wrongPayloadType++;
      return;
    }
    if (p.ssrc !== this.lockedSsrc) {
      if (this.lockedSsrc >= 0) {
        st.foreignSsrc++;
        return;
      }
    }
    const payload = p.payload;
    const samples = payload.length <= MAX_OPUS_PACKET_BYTES ? opusPacketSamples(payload) : 0;
    if (samples === 0) {
      st.bad++;
      return;
    }
    if (!this.started) {
      this.lockedSsrc = p.ssrc;
      this.started = true;
      this.highest = p.sequenceNumber;
      this.nextSeq = p.sequenceNumber;
      this.expectedTs = p.timestamp;
      this.lastArrivalMs = arrivalMs;
    }
    // Extend the 16-bit sequence number around the highest one seen.
    const delta = ((((p.sequenceNumber - this.highest) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
    const ext = this.highest + delta;
    if (delta > 0) this.highest = ext;

    if (ext < this.nextSeq) {
      const age = this.nextSeq - 1 - ext;
      if (age < 32 && (this.releasedMask >>> age) & 1) st.duplicates++;
      else st.late++;
      return;
    }
    const held = this.held;
    if (ext === this.nextSeq && held.length === 0) {
      this.release(ext, p.timestamp, payload, samples, arrivalMs);
      return;
    }
    // Out of order, or waiting behind a gap: insert sorted.
    let i = held.length;
    while (i > 0 && (held[i - 1] as Held).ext > ext) i--;
    if (i > 0 && (held[i - 1] as Held).ext === ext) {
      st.duplicates++;
      return;
    }
    if (delta < 0) st.reordered++;
    held.splice(i, 0, { ext, timestamp: p.timestamp, payload, samples, arrivalMs });
    this.drain(arrivalMs, false);
  }

  /** Release everything held (end of stream), counting the holes as lost. */
  flush(): void {
    this.drain(0, true);
  }

  /** Release held packets that are next in line, or that waited long enough for a missing one. */
  private drain(nowMs: number, all: boolean): void {
    const held = this.held;
    while (held.length > 0) {
      const head = held[0] as Held;
      const ready =
        head.ext === this.nextSeq || all || held.length > this.reorderPackets || nowMs - head.arrivalMs >= this.reorderMs;
      if (!ready) return;
      held.shift();
      this.release(head.ext, head.timestamp, head.payload, head.samples, head.arrivalMs);
    }
  }

  private release(ext: number, timestamp: number, payload: Buffer, samples: number, arrivalMs: number): void {
    const st = this.stats;
    const skipped = ext - this.nextSeq; // sequence numbers given up on
    st.lost += skipped;
    const shift = skipped + 1;
    this.releasedMask = shift >= 32 ? 1 : ((this.releasedMask << shift) | 1);
    this.nextSeq = ext + 1;

    // Timing: fill the time between the end of the previous packet and the start of this one.
    const gap = ((timestamp - this.expectedTs) | 0) + this.carry;
    if (gap >= SILENCE_QUANTUM) {
      st.gaps++;
      const wallCap = Math.max(0, arrivalMs - this.lastArrivalMs) * 48 + this.gapSlackSamples;
      const fill = Math.min(gap, wallCap);
      const covered = forEachSilentPacket(fill, this.emitSilence);
      this.carry = fill === gap ? gap - covered : 0;
    } else {
      // Small remainder, or overlap (the sender's clock ran short): absorb it in later gaps, within bounds.
      this.carry = gap < -MAX_PACKET_SAMPLES ? -MAX_PACKET_SAMPLES : gap;
    }
    this.expectedTs = (timestamp + samples) >>> 0;
    if (arrivalMs > this.lastArrivalMs) this.lastArrivalMs = arrivalMs;
    st.packets++;
    st.bytes += payload.length;
    this.onPacket(payload, samples, false);
  }
}
