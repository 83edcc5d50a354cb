/**
 * The recorder of one fork: a UDP socket that rtpengine's `subscribe` sends the enrolled user's Opus to,
 * the SDP answer that points rtpengine at it, and the chunk hand-off.
 *
 * The socket takes datagrams only from the address and port rtpengine sends this fork from (the port of
 * its own offer: rtpengine sends symmetric RTP from it). It is `connect()`ed there, so the kernel drops
 * everything else; what reached the socket before that (a sender racing the subscription) is dropped here
 * and counted as `foreignSource` (DESIGN §4.8). The intake then still locks to one SSRC.
 *
 * The socket is read on a shared tick (`PacedReads`, every `readIntervalMs`), not per datagram: that halves what a
 * recorded call costs the process. So a stop, and a resume after a pause, first read what is queued in the kernel:
 * what arrived before a stop is kept, what arrived during a pause is not. A pause takes effect at once, so up to
 * `readIntervalMs` of audio that was still queued when it came is treated as paused too.
 *
 * The recorder never writes to disk or network itself: every chunk goes to `onChunk`, where the caller
 * encrypts it (DESIGN §5) and stores it. Chunks are delivered one at a time, in order; a slow `onChunk` queues
 * later chunks in memory. `stop()` waits for every `onChunk` to settle.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as sdpTransform from 'sdp-transform';
import type { MediaDescription } from 'sdp-transform';
import { MonologueError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { PacedReads } from './paced-reads.js';
import { RecordingPipeline, type PauseBehavior, type RecordingChunk, type RecordingSummary } from './pipeline.js';
import type { VoiceActivityOptions } from './voice-activity.js';

export interface RecorderOptions {
  /** Address to bind (the rtpengine-facing interface), e.g. 127.0.0.1. The port is chosen by the OS. */
  host: string;
  /** Seconds of audio per chunk, e.g. 5. */
  chunkSeconds: number;
  log: Logger;
  /** Encrypt and store one chunk. Called in order, one at a time; `last` marks the final chunk. */
  onChunk: (chunk: RecordingChunk) => void | Promise<void>;
  /** Decode for talk time and levels (default true). */
  vad?: boolean | VoiceActivityOptions;
  /** What a pause writes: silence (default) or nothing. */
  pauseBehavior?: PauseBehavior;
  /** Read the socket every this many ms (default 100), together with the other recorders; 0: per datagram. */
  readIntervalMs?: number;
}

/**
 * Default read tick: ~10 datagrams per fork per read. Each paced socket still costs one wake-up per tick (libuv
 * takes a stopped socket out of epoll only when it next fires: measured ~10 wake-ups of the process per fork per
 * second at a 100 ms tick), so a longer tick pays less. Measured (bench-recorder-live, µs per packet at 20 / 50
 * forks): 100 ms 44.1 / 34.5, 200 ms 40.8 / 31.4, 400 ms 38.5 / 31.5; 50 ms was ~10% dearer than 100. Past 200 ms
 * the gain fades while what a pause treats as paused (see above) and the reorder window (widened by the tick) keep
 * growing with it.
 */
export const READ_INTERVAL_MS = 200;

/** How long the intake waits for a packet that arrives out of order (arrival time). */
const REORDER_MS = 100;

/** One pacer per interval, shared by every recorder of the process: one tick reads them all. */
const pacers = new Map<number, PacedReads>();
function pacerFor(intervalMs: number): PacedReads {
  let p = pacers.get(intervalMs);
  if (!p) pacers.set(intervalMs, (p = new PacedReads(intervalMs)));
  return p;
}
let unpacedWarned = false;

export interface RecorderSummary extends RecordingSummary {
  /** `onChunk` calls that threw or rejected (the recording is then incomplete). */
  chunkFailures: number;
  /** Datagrams dropped because they did not come from rtpengine's address and port for this fork. */
  foreignSource: number;
}

/** Where a fork's RTP comes from: rtpengine's address and port in its `subscribe request` offer. */
export interface ForkSource {
  address: string;
  port: number;
}

export interface Recorder {
  readonly host: string;
  /** UDP port the socket is bound to. */
  readonly port: number;
  /** Opus payload type taken from the offer (111 until `answerSdp`). */
  readonly payloadType: number;
  /** The only sender accepted, from the offer; undefined until `answerSdp` (everything is dropped until then). */
  readonly source: ForkSource | undefined;
  readonly closed: boolean;
  /**
   * Answer rtpengine's `subscribe request` offer (sendonly, Opus): a recvonly RTP/AVP answer with only Opus,
   * pointing at this socket, and bind the socket to the offer's address and port. Throws
   * MonologueError('BAD_SDP') when the offer has no Opus audio or no usable address.
   */
  answerSdp(offerSdp: string): string;
  /** Stop keeping what arrives (see `PauseBehavior`); false when already paused or stopped. */
  pause(): boolean;
  /** Keep what arrives again; false when not paused or stopped. */
  resume(): boolean;
  readonly paused: boolean;
  /** Live counters. */
  summary(): RecorderSummary;
  /** Close the socket, flush the last chunk (`last: true`), wait for every `onChunk`. Idempotent. */
  stop(): Promise<RecorderSummary>;
}

export async function createRecorder(opts: RecorderOptions): Promise<Recorder> {
  const socket = createSocket({ type: isIPv6(opts.host) ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: opts.host, port: 0, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  try {
    socket.setRecvBufferSize(1 << 20);
  } catch {
    // The OS cap (net.core.rmem_max) applies; the default is enough for one stream.
  }
  const interval = opts.readIntervalMs ?? READ_INTERVAL_MS;
  return new UdpRecorder(opts, socket, interval > 0 ? pacerFor(interval) : undefined);
}

class UdpRecorder implements Recorder {
  readonly host: string;
  readonly port: number;
  private readonly log: Logger;
  private readonly pipeline: RecordingPipeline;
  private queue: Promise<void> = Promise.resolve();
  private chunkFailures = 0;
  private foreignSource = 0;
  private forkSource: ForkSource | undefined;
  private stopping: Promise<RecorderSummary> | undefined;
  /** A resume waiting for the datagrams that arrived during the pause to be read (as paused). */
  private resumeWanted = false;
  /** Counts resumes, so a drain finishing for an earlier (since cancelled) resume does not end a later pause early. */
  private resumes = 0;
  private readonly reads: PacedReads | undefined;

  constructor(opts: RecorderOptions, private readonly socket: Socket, pacer: PacedReads | undefined) {
    this.host = opts.host;
    this.port = socket.address().port;
    this.log = opts.log.child({ mod: 'recorder', port: this.port });
    const vad = opts.vad ?? true;
    const onMessage = (msg: Buffer, from: RemoteInfo): void => {
      const src = this.forkSource;
      if (src && from.port === src.port && from.address === src.address) this.pipeline.push(msg, performance.now());
      else this.dropForeign(from);
    };
    if (pacer?.listen(socket, onMessage)) this.reads = pacer;
    else if (!pacer) socket.on('message', onMessage);
    else if (!unpacedWarned) {
      unpacedWarned = true;
      this.log.warn('recorder sockets cannot be read on a tick on this Node version: each datagram wakes the process (more CPU per call)');
    }
    this.pipeline = new RecordingPipeline({
      chunkSeconds: opts.chunkSeconds,
      vad,
      // Arrival times are read times, late by up to a tick: a reordered packet still gets its 100 ms.
      reorderMs: REORDER_MS + (this.reads ? this.reads.intervalMs : 0),
      ...(opts.pauseBehavior !== undefined && { pauseBehavior: opts.pauseBehavior }),
      onChunk: (chunk) => this.deliver(chunk, opts.onChunk),
    });
    socket.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'recorder socket error'));
  }

  /** Run `then` once everything queued on the socket has been read (at once when it is read per datagram). */
  private drain(then: () => void): void {
    if (this.reads) this.reads.drain(then);
    else then();
  }

  get payloadType(): number {
    return this.pipeline.payloadType;
  }

  get source(): ForkSource | undefined {
    return this.forkSource;
  }

  get closed(): boolean {
    return this.stopping !== undefined;
  }

  answerSdp(offerSdp: string): string {
    const pt = readForkOffer(offerSdp);
    this.pipeline.payloadType = pt.payloadType;
    this.bindTo(pt.source);
    const ipVer = isIPv6(this.host) ? 6 : 4;
    const sessionId = Date.now();
    const lines = [
      'v=0',
      `o=- ${sessionId} 1 IN IP${ipVer} ${this.host}`,
      's=monologue recorder',
      `c=IN IP${ipVer} ${this.host}`,
      't=0 0',
      `m=audio ${this.port} RTP/AVP ${pt.payloadType}`,
      `a=rtpmap:${pt.payloadType} opus/48000/2`,
      ...(pt.fmtp ? [`a=fmtp:${pt.payloadType} ${pt.fmtp}`] : []),
      'a=recvonly',
    ];
    this.log.debug({ payloadType: pt.payloadType, direction: pt.direction }, 'recorder answered fork offer');
    return lines.join('\r\n') + '\r\n';
  }

  get paused(): boolean {
    return this.pipeline.paused && !this.resumeWanted;
  }

  pause(): boolean {
    if (this.stopping !== undefined) return false;
    if (this.resumeWanted) {
      this.resumeWanted = false; // the pipeline never left the pause
      return true;
    }
    return this.pipeline.pause();
  }

  resume(): boolean {
    if (this.stopping !== undefined || !this.pipeline.paused || this.resumeWanted) return false;
    this.resumeWanted = true;
    const resume = ++this.resumes;
    // Datagrams still queued arrived during the pause: they go in as paused, then the pipeline resumes.
    this.drain(() => {
      if (!this.resumeWanted || resume !== this.resumes || this.stopping !== undefined) return;
      this.resumeWanted = false;
      this.pipeline.resume();
    });
    return true;
  }

  summary(): RecorderSummary {
    return { ...this.pipeline.summary(), chunkFailures: this.chunkFailures, foreignSource: this.foreignSource };
  }

  stop(): Promise<RecorderSummary> {
    this.stopping ??= (async () => {
      // What arrived before the stop belongs to the recording: read it, then close.
      await new Promise<void>((resolve) => this.drain(resolve));
      this.reads?.forget(this.socket);
      await new Promise<void>((resolve) => {
        try {
          this.socket.close(() => resolve());
        } catch {
          resolve(); // already closed
        }
      });
      this.pipeline.end();
      await this.queue;
      const summary = this.summary();
      this.log.info(
        {
          durationMs: summary.durationMs, talkMs: summary.talkMs, packets: summary.packets, lost: summary.lost, chunks: summary.chunks,
          chunkFailures: summary.chunkFailures, foreignSource: summary.foreignSource, foreignSsrc: summary.foreignSsrc,
        },
        'recording stopped',
      );
      return summary;
    })();
    return this.stopping;
  }

  /** Accept only `src` from now on; the kernel enforces it once the socket is connected. */
  private bindTo(src: ForkSource): void {
    const cur = this.forkSource;
    if (cur && cur.address === src.address && cur.port === src.port) return;
    this.forkSource = src;
    try {
      if (cur) this.socket.disconnect(); // a renewed subscription from another port
      this.socket.connect(src.port, src.address, (err?: Error) => {
        // Still safe unconnected: the message handler checks every sender.
        if (err) this.log.warn({ err: errorMessage(err), source: src }, 'recorder socket could not be connected to the fork source');
      });
    } catch (err) {
      this.log.warn({ err: errorMessage(err), source: src }, 'recorder socket could not be connected to the fork source');
    }
  }

  private dropForeign(from: { address: string; port: number }): void {
    // One line per recording is enough to see an attack; the count goes in the closing line and the manifest.
    if (this.foreignSource++ === 0) this.log.warn({ from: `${from.address}:${from.port}`, expected: this.forkSource }, 'recorder dropped a datagram from a foreign source');
  }

  /** Hand chunks over one at a time, in order; a failure is logged and counted, later chunks still go. */
  private deliver(chunk: RecordingChunk, onChunk: RecorderOptions['onChunk']): void {
    this.queue = this.queue
      .then(() => onChunk(chunk))
      .then(undefined, (err: unknown) => {
        this.chunkFailures++;
        this.log.error({ err: errorMessage(err), chunk: chunk.index, last: chunk.last }, 'recording chunk could not be stored');
      });
  }
}

export interface ForkOffer {
  payloadType: number;
  fmtp: string | undefined;
  direction: string | undefined;
  source: ForkSource;
}

/** The Opus payload type (and its fmtp) of the offer's audio m-line, and the address and port it comes from. */
export function readForkOffer(offerSdp: string): ForkOffer {
  let parsed: sdpTransform.SessionDescription;
  try {
    parsed = sdpTransform.parse(offerSdp);
  } catch (err) {
    throw new MonologueError('BAD_SDP', `fork offer does not parse: ${errorMessage(err)}`);
  }
  const audio = (parsed.media ?? []).find((m: MediaDescription) => m.type === 'audio' && m.port > 0);
  if (!audio) throw new MonologueError('BAD_SDP', 'fork offer has no active audio m-line');
  const address = audio.connection?.ip ?? parsed.connection?.ip;
  if (!address || isIP(address) === 0 || /^(0\.0\.0\.0|::)$/.test(address)) {
    throw new MonologueError('BAD_SDP', `fork offer has no usable source address (c=${address ?? 'missing'})`);
  }
  const offered = new Set(String(audio.payloads ?? '').split(/\s+/).filter(Boolean).map(Number));
  const rtp = (audio.rtp ?? []).find((r) => r.codec.toLowerCase() === 'opus' && r.rate === 48000 && offered.has(r.payload));
  if (!rtp) throw new MonologueError('BAD_SDP', 'fork offer does not offer Opus');
  const fmtp = (audio.fmtp ?? []).find((f) => f.payload === rtp.payload)?.config;
  return { payloadType: rtp.payload, fmtp, direction: audio.direction, source: { address, port: audio.port } };
}
