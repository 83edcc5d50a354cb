/**
 * The recorder of one fork: a UDP socket that rtpengine's `subscribe` sends the enrolled user's Opus to,
 * the SDP answer that points rtpengine at it, and the chunk hand-off.
 *
 * The recorder never writes to disk or network itself: every chunk goes to `onChunk`, where the caller
 * encrypts it (DESIGN §5) and stores it. Chunks are delivered one at a time, in order; a slow `onChunk` queues
 * later chunks in memory. `stop()` waits for every `onChunk` to settle.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as sdpTransform from 'sdp-transform';
import type { MediaDescription } from 'sdp-transform';
import { MonologueError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { RecordingPipeline, type RecordingChunk, type RecordingSummary } from './pipeline.js';
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
}

export interface RecorderSummary extends RecordingSummary {
  /** `onChunk` calls that threw or rejected (the recording is then incomplete). */
  chunkFailures: number;
}

export interface Recorder {
  readonly host: string;
  /** UDP port the socket is bound to. */
  readonly port: number;
  /** Opus payload type taken from the offer (111 until `answerSdp`). */
  readonly payloadType: number;
  readonly closed: boolean;
  /**
   * Answer rtpengine's `subscribe request` offer (sendonly, Opus): a recvonly RTP/AVP answer with only Opus,
   * pointing at this socket. Throws MonologueError('BAD_SDP') when the offer has no Opus audio.
   */
  answerSdp(offerSdp: string): string;
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
  return new UdpRecorder(opts, socket);
}

class UdpRecorder implements Recorder {
  readonly host: string;
  readonly port: number;
  private readonly log: Logger;
  private readonly pipeline: RecordingPipeline;
  private queue: Promise<void> = Promise.resolve();
  private chunkFailures = 0;
  private stopping: Promise<RecorderSummary> | undefined;

  constructor(opts: RecorderOptions, private readonly socket: Socket) {
    this.host = opts.host;
    this.port = socket.address().port;
    this.log = opts.log.child({ mod: 'recorder', port: this.port });
    const vad = opts.vad ?? true;
    this.pipeline = new RecordingPipeline({
      chunkSeconds: opts.chunkSeconds,
      vad,
      onChunk: (chunk) => this.deliver(chunk, opts.onChunk),
    });
    socket.on('message', (msg) => this.pipeline.push(msg, performance.now()));
    socket.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'recorder socket error'));
  }

  get payloadType(): number {
    return this.pipeline.payloadType;
  }

  get closed(): boolean {
    return this.stopping !== undefined;
  }

  answerSdp(offerSdp: string): string {
    const pt = opusPayloadType(offerSdp);
    this.pipeline.payloadType = pt.payloadType;
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

  summary(): RecorderSummary {
    return { ...this.pipeline.summary(), chunkFailures: this.chunkFailures };
  }

  stop(): Promise<RecorderSummary> {
    this.stopping ??= (async () => {
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
        { durationMs: summary.durationMs, talkMs: summary.talkMs, packets: summary.packets, lost: summary.lost, chunks: summary.chunks, chunkFailures: summary.chunkFailures },
        'recording stopped',
      );
      return summary;
    })();
    return this.stopping;
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

/** The Opus payload type (and its fmtp) of the offer's audio m-line. */
export function opusPayloadType(offerSdp: string): { payloadType: number; fmtp: string | undefined; direction: string | undefined } {
  let media: MediaDescription[];
  try {
    media = sdpTransform.parse(offerSdp).media ?? [];
  } catch (err) {
    throw new MonologueError('BAD_SDP', `fork offer does not parse: ${errorMessage(err)}`);
  }
  const audio = media.find((m) => m.type === 'audio' && m.port > 0);
  if (!audio) throw new MonologueError('BAD_SDP', 'fork offer has no active audio m-line');
  const offered = new Set(String(audio.payloads ?? '').split(/\s+/).filter(Boolean).map(Number));
  const rtp = (audio.rtp ?? []).find((r) => r.codec.toLowerCase() === 'opus' && r.rate === 48000 && offered.has(r.payload));
  if (!rtp) throw new MonologueError('BAD_SDP', 'fork offer does not offer Opus');
  const fmtp = (audio.fmtp ?? []).find((f) => f.payload === rtp.payload)?.config;
  return { payloadType: rtp.payload, fmtp, direction: audio.direction };
}
