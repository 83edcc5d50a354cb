/**
 * A real UDP RTP endpoint that plays a SIP trunk's media side in tests.
 *
 *   const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
 *   const trunkSdp = peer.sdp();              // plain-RTP SDP with its ip/port
 *   peer.start({ address, port });            // or peer.start(): reply to whoever sends first
 *   ...
 *   peer.measure(440)                         // dB of 440 Hz over `against` (default 1000 Hz) in what arrived
 *   await peer.close();
 *
 * It sends one 20 ms G.711 packet (160 samples at 8 kHz) of its tone every 20 ms, and records the payloads of
 * packets it receives with the payload type of its codec. Packets with its telephone-event payload type
 * (`telephoneEventPt`, default 101, the one its SDP declares) are decoded as RFC 4733 events: `dtmf()`
 * (CN and anything else is counted but not decoded).
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { dbRatio, g711Decode, g711Encode, sine, type G711 } from './tone.js';

export interface RtpPeerOptions {
  /** Frequency it sends, Hz. Default 1000. */
  tone?: number;
  /** Default PCMU. */
  codec?: G711;
  /** Bind address. Default 127.0.0.1. */
  host?: string;
  /** Bind port. Default: any free port. */
  port?: number;
  /** Amplitude of the tone, 0..1 of full scale. Default 0.3. */
  amplitude?: number;
  /** Payload type decoded as RFC 4733 telephone-event. Default 101 (what `sdp()` declares). */
  telephoneEventPt?: number;
}

/** One RFC 4733 event as it arrived: the packets of one RTP timestamp folded together. */
export interface DtmfEvent {
  /** `0`-`9`, `*`, `#`, `A`-`D` (events 0-15), or the event number for others. */
  digit: string;
  /** Largest duration field seen, in timestamp units (8 kHz: 8 per ms). */
  duration: number;
  /** An end-bit packet arrived. */
  ended: boolean;
  /** RTP timestamp of the event (its start). */
  timestamp: number;
  volume: number;
  packets: number;
  /** performance.now() of its first packet. */
  firstAt: number;
}

export interface RtpDestination {
  address: string;
  port: number;
}

export interface RtpPeer {
  readonly address: string;
  readonly port: number;
  readonly codec: G711;
  /** Static payload type of its codec: 0 (PCMU) or 8 (PCMA). */
  readonly payloadType: number;
  /** Payloads received with `payloadType`, in arrival order. */
  readonly received: readonly Buffer[];
  /** Packets received of any payload type. */
  readonly packetsReceived: number;
  /** Packets received per payload type. */
  readonly payloadTypesSeen: ReadonlyMap<number, number>;
  readonly packetsSent: number;
  /** Where it sends now (undefined until known). */
  readonly destination: RtpDestination | undefined;
  /** The plain-RTP SDP a trunk would send (offer or answer): its codec, then telephone-event (`telephoneEventPt`). */
  sdp(sessionId?: number): string;
  /** Start sending every 20 ms; without `dest`, send to the source of the first packet received. */
  start(dest?: RtpDestination): void;
  /** Stop sending (keeps receiving). */
  stop(): void;
  /** All received audio decoded to 8 kHz PCM; `skipPackets` drops the first ones (start-up transients). */
  pcm(skipPackets?: number): Int16Array;
  /** dB of `freq` over `against` Hz in the received audio (skipping the first 10 packets). */
  measure(freq: number, against?: number): number;
  /** Resolve when at least `n` payloads arrived; reject after `timeoutMs`. */
  waitForPackets(n: number, timeoutMs?: number): Promise<void>;
  /** Payload type decoded as telephone-event; settable once the negotiated one is known (e.g. from the offer). */
  telephoneEventPt: number;
  /** RFC 4733 events received so far, in order of their first packet. */
  dtmf(): DtmfEvent[];
  /** Resolve with the events once `n` of them have their end packet; reject after `timeoutMs`. */
  waitForDtmf(n: number, timeoutMs?: number): Promise<DtmfEvent[]>;
  close(): Promise<void>;
}

export async function createRtpPeer(opts: RtpPeerOptions = {}): Promise<RtpPeer> {
  const host = opts.host ?? '127.0.0.1';
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(opts.port ?? 0, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return new UdpRtpPeer(socket, host, opts);
}

const RATE = 8000;
const FRAME = 160; // 20 ms at 8 kHz

class UdpRtpPeer implements RtpPeer {
  readonly address: string;
  readonly port: number;
  readonly codec: G711;
  readonly payloadType: number;
  readonly received: Buffer[] = [];
  packetsReceived = 0;
  readonly payloadTypesSeen = new Map<number, number>();
  packetsSent = 0;
  destination: RtpDestination | undefined;
  readonly #socket: Socket;
  readonly #tone: number;
  readonly #amplitude: number;
  readonly #ssrc = randomBytes(4).readUInt32BE(0);
  #seq = randomBytes(2).readUInt16BE(0);
  #ts = randomBytes(4).readUInt32BE(0);
  #sample = 0;
  #timer: NodeJS.Timeout | undefined;
  #sending = false;
  #waiters: { n: number; resolve: () => void }[] = [];
  #telephoneEventPt: number;
  readonly #events = new Map<number, DtmfEvent>();
  #dtmfWaiters: { n: number; resolve: () => void }[] = [];

  constructor(socket: Socket, host: string, opts: RtpPeerOptions) {
    this.#socket = socket;
    this.address = host;
    this.port = socket.address().port;
    this.codec = opts.codec ?? 'PCMU';
    this.payloadType = this.codec === 'PCMU' ? 0 : 8;
    this.#tone = opts.tone ?? 1000;
    this.#amplitude = opts.amplitude ?? 0.3;
    this.#telephoneEventPt = opts.telephoneEventPt ?? 101;
    socket.on('message', (msg, rinfo) => this.#onPacket(msg, rinfo));
    socket.on('error', () => undefined);
  }

  sdp(sessionId = Math.floor(Math.random() * 1e9)): string {
    return [
      'v=0',
      `o=trunk ${sessionId} 1 IN IP4 ${this.address}`,
      's=-',
      `c=IN IP4 ${this.address}`,
      't=0 0',
      `m=audio ${this.port} RTP/AVP ${this.payloadType} ${this.#telephoneEventPt}`,
      `a=rtpmap:${this.payloadType} ${this.codec}/8000`,
      `a=rtpmap:${this.#telephoneEventPt} telephone-event/8000`,
      `a=fmtp:${this.#telephoneEventPt} 0-16`,
      'a=ptime:20',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }

  start(dest?: RtpDestination): void {
    if (dest) this.destination = { ...dest };
    this.#sending = true;
    if (this.#timer) return;
    const started = performance.now();
    let sentFrames = 0;
    // Pace by wall clock so timer jitter does not accumulate into drift.
    this.#timer = setInterval(() => {
      if (!this.#sending || !this.destination) return;
      const due = Math.floor((performance.now() - started) / 20) + 1;
      while (sentFrames < due) {
        this.#sendFrame();
        sentFrames++;
      }
    }, 5);
  }

  stop(): void {
    this.#sending = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  pcm(skipPackets = 0): Int16Array {
    return g711Decode(Buffer.concat(this.received.slice(skipPackets)), this.codec);
  }

  measure(freq: number, against = 1000): number {
    return dbRatio(this.pcm(10), freq, against, RATE);
  }

  waitForPackets(n: number, timeoutMs = 5000): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`rtp peer got ${this.received.length}/${n} packets in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  get telephoneEventPt(): number {
    return this.#telephoneEventPt;
  }

  set telephoneEventPt(pt: number) {
    this.#telephoneEventPt = pt;
  }

  dtmf(): DtmfEvent[] {
    return [...this.#events.values()].map((e) => ({ ...e }));
  }

  waitForDtmf(n: number, timeoutMs = 5000): Promise<DtmfEvent[]> {
    const ended = (): number => [...this.#events.values()].filter((e) => e.ended).length;
    if (ended() >= n) return Promise.resolve(this.dtmf());
    return new Promise((resolve, reject) => {
      const waiter = {
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.dtmf());
        },
      };
      const timer = setTimeout(() => {
        this.#dtmfWaiters = this.#dtmfWaiters.filter((w) => w !== waiter);
        reject(new Error(`rtp peer got ${ended()}/${n} ended DTMF events in ${timeoutMs} ms: ${JSON.stringify(this.dtmf())}`));
      }, timeoutMs);
      this.#dtmfWaiters.push(waiter);
    });
  }

  close(): Promise<void> {
    this.stop();
    return new Promise((resolve) => {
      try {
        this.#socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }

  #sendFrame(): void {
    const dest = this.destination;
    if (!dest) return;
    const payload = g711Encode(sine(this.#tone, RATE, FRAME, this.#amplitude, this.#sample), this.codec);
    const header = Buffer.alloc(12);
    header[0] = 0x80;
    header[1] = this.payloadType | (this.packetsSent === 0 ? 0x80 : 0); // marker on the first packet
    header.writeUInt16BE(this.#seq, 2);
    header.writeUInt32BE(this.#ts >>> 0, 4);
    header.writeUInt32BE(this.#ssrc, 8);
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + FRAME) >>> 0;
    this.#sample += FRAME;
    this.packetsSent++;
    this.#socket.send(Buffer.concat([header, payload]), dest.port, dest.address);
  }

  #onPacket(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
    const pt = msg[1]! & 0x7f;
    if (pt >= 72 && pt <= 79) return; // RTCP on the RTP port (rtcp-mux); not ours
    this.packetsReceived++;
    this.payloadTypesSeen.set(pt, (this.payloadTypesSeen.get(pt) ?? 0) + 1);
    if (!this.destination) this.destination = { address: rinfo.address, port: rinfo.port };
    if (pt === this.#telephoneEventPt) return this.#onEvent(msg);
    if (pt !== this.payloadType) return;
    const cc = msg[0]! & 0x0f;
    let offset = 12 + 4 * cc;
    if (msg[0]! & 0x10) {
      if (msg.length < offset + 4) return;
      offset += 4 + 4 * msg.readUInt16BE(offset + 2);
    }
    let end = msg.length;
    if (msg[0]! & 0x20) end -= msg[end - 1]!;
    if (end <= offset) return;
    this.received.push(Buffer.from(msg.subarray(offset, end)));
    const ready = this.#waiters.filter((w) => this.received.length >= w.n);
    this.#waiters = this.#waiters.filter((w) => this.received.length < w.n);
    for (const w of ready) w.resolve();
  }

  /** RFC 4733 §2.3: event (8 bits), E|R|volume (8), duration (16); retransmitted end packets fold in. */
  #onEvent(msg: Buffer): void {
    let offset = 12 + 4 * (msg[0]! & 0x0f);
    if (msg[0]! & 0x10) {
      if (msg.length < offset + 4) return;
      offset += 4 + 4 * msg.readUInt16BE(offset + 2);
    }
    if (msg.length < offset + 4) return;
    const code = msg[offset]!;
    const ended = (msg[offset + 1]! & 0x80) !== 0;
    const volume = msg[offset + 1]! & 0x3f;
    const duration = msg.readUInt16BE(offset + 2);
    const timestamp = msg.readUInt32BE(4);
    const known = this.#events.get(timestamp);
    if (known) {
      known.duration = Math.max(known.duration, duration);
      known.ended ||= ended;
      known.packets++;
    } else {
      const digit = code < 16 ? '0123456789*#ABCD'[code]! : String(code);
      this.#events.set(timestamp, { digit, duration, ended, timestamp, volume, packets: 1, firstAt: performance.now() });
    }
    const count = [...this.#events.values()].filter((e) => e.ended).length;
    const ready = this.#dtmfWaiters.filter((w) => count >= w.n);
    this.#dtmfWaiters = this.#dtmfWaiters.filter((w) => count < w.n);
    for (const w of ready) w.resolve();
  }
}
