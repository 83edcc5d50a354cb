/**
 * The trunk's media side: one UDP socket that every call's SDP names (the sipp scenarios' `rtp_port`).
 * To each source that sends it RTP (one per call: rtpengine's trunk-side port) it sends back a PCMU tone
 * of TRUNK_TONE_HZ from that same socket, so rtpengine's strict-source check on the trunk leg passes and
 * it has the trunk-to-dialer direction to transcode, as with a real trunk. It also checks, once per
 * stream, that it hears the dialer's DIALER_TONE_HZ.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { g711Decode, g711Encode, sine, toneDbfs } from '../../test/helpers/tone.js';

export const TRUNK_TONE_HZ = 1000;
export const DIALER_TONE_HZ = 440;
/** A tone at 0.3 of full scale reads about -10 dBFS; anything heard above this counts. */
export const TONE_HEARD_DBFS = -30;

const PACKET_MS = 20;
const SAMPLES = 160;
/** Packets of the dialer's audio judged per stream: 0.5 s, after the first second (start-up transients). */
const CHECK_AFTER = 50;
const CHECK_PACKETS = 25;
/** A stream not heard from this long has ended (its call is over): stop sending to it. */
const IDLE_MS = 2000;

export interface TrunkMediaStats {
  /** Sources (calls) that sent media to the trunk. */
  streams: number;
  /** Streams long enough to judge, and those in which the dialer's tone was heard. */
  checked: number;
  passed: number;
  packetsIn: number;
  packetsOut: number;
}

export interface TrunkMedia {
  readonly host: string;
  readonly port: number;
  stats(): TrunkMediaStats;
  close(): Promise<void>;
}

interface Stream {
  address: string;
  port: number;
  ssrc: number;
  /** The SSRC the stream arrives with: rtpengine reuses its ports, so a new SSRC on a known port is a new call. */
  ssrcIn: number;
  seq: number;
  timestamp: number;
  lastHeardAt: number;
  received: number;
  payloads: Buffer[];
  verdict?: boolean;
}

export async function startTrunkMedia(host = '127.0.0.1', port = 0): Promise<TrunkMedia> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => resolve());
  });
  socket.on('error', () => undefined); // ICMP unreachable from a finished call's port: not an error here
  // 1000 Hz at 8 kHz repeats every 8 samples, so one 20 ms payload loops without a phase jump.
  const payload = g711Encode(sine(TRUNK_TONE_HZ, 8000, SAMPLES, 0.3), 'PCMU');
  const streams = new Map<string, Stream>();
  const totals = { streams: 0, checked: 0, passed: 0, packetsIn: 0, packetsOut: 0 };

  socket.on('message', (msg, rinfo) => {
    if (msg.length < 12 || (msg[0]! & 0xc0) !== 0x80 || (msg[1]! & 0x7f) !== 0) return; // PCMU RTP only
    totals.packetsIn++;
    const key = `${rinfo.address}:${rinfo.port}`;
    const ssrcIn = msg.readUInt32BE(8);
    let s = streams.get(key);
    if (!s || s.ssrcIn !== ssrcIn) {
      s = { address: rinfo.address, port: rinfo.port, ssrc: randomInt(2 ** 32), ssrcIn, seq: randomInt(65536), timestamp: randomInt(2 ** 32), lastHeardAt: 0, received: 0, payloads: [] };
      streams.set(key, s);
      totals.streams++;
    }
    s.lastHeardAt = performance.now();
    s.received++;
    if (s.verdict === undefined && s.received > CHECK_AFTER) {
      s.payloads.push(msg.subarray(rtpHeaderLength(msg)));
      if (s.payloads.length === CHECK_PACKETS) {
        s.verdict = toneDbfs(g711Decode(Buffer.concat(s.payloads), 'PCMU'), DIALER_TONE_HZ, 8000) > TONE_HEARD_DBFS;
        s.payloads = [];
        totals.checked++;
        if (s.verdict) totals.passed++;
      }
    }
  });

  // One timer sends to every live stream, catching up on the wall clock so timer jitter does not thin the tone.
  const startedAt = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.floor((now - startedAt) / PACKET_MS);
    if (due - sent > 5) sent = due - 5; // after a long stall, skip ahead rather than burst
    for (; sent < due; sent++) {
      for (const [key, s] of streams) {
        if (now - s.lastHeardAt > IDLE_MS) {
          streams.delete(key);
          continue;
        }
        const header = Buffer.allocUnsafe(12); // not reused: a send may still hold the last one
        header[0] = 0x80;
        header[1] = 0;
        header.writeUInt16BE(s.seq, 2);
        header.writeUInt32BE(s.timestamp >>> 0, 4);
        header.writeUInt32BE(s.ssrc, 8);
        s.seq = (s.seq + 1) & 0xffff;
        s.timestamp = (s.timestamp + SAMPLES) >>> 0;
        socket.send([header, payload], s.port, s.address);
        totals.packetsOut++;
      }
    }
  }, PACKET_MS);

  return {
    host,
    port: socket.address().port,
    stats: () => ({ ...totals }),
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        socket.close(() => resolve());
      }),
  };
}

function rtpHeaderLength(msg: Buffer): number {
  const csrc = msg[0]! & 0x0f;
  let len = 12 + 4 * csrc;
  if (msg[0]! & 0x10 && msg.length >= len + 4) len += 4 + 4 * msg.readUInt16BE(len + 2);
  return Math.min(len, msg.length);
}
