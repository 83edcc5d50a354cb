// A lightweight real WebRTC dialer for load and loss tests: libwebrtc in Node (@roamhq/wrtc) speaking
// the /v1/signal protocol over `ws`. Each call sends a sine tone and meters what it receives.
//
// Exit quirk: @roamhq/wrtc 0.10 segfaults during Node's natural exit (napi env cleanup) once an
// RTCAudioSource track has existed, even when every pc and track was closed. An explicit
// process.exit() does not, so importing this module makes the process end with an explicit exit, with
// its exit code, once everything else is done. Unstopped tracks keep the process alive: call close().
import type { ServerMessage } from '../../src/signaling/protocol.js';
import wrtcModule from '@roamhq/wrtc';
import WebSocket from 'ws';
import { rmsDbfs, sine, toneDbfs } from './tone.js';

// ---------------------------------------------------------------------------------------------
// Public API

export interface ToneOptions {
  /** Frequency of the sine this side sends, Hz (default 440). */
  toneHz?: number;
  /** Peak amplitude 0..1 (default 0.3). */
  amplitude?: number;
}

export interface WrtcCall {
  readonly callId: string;
  readonly pc: PeerConnection;
  /** What this side hears from the other. */
  readonly meter: AudioMeter;
  /** Resolves with the reason once the call ended (server `call.ended`, or locally on socket loss). */
  readonly ended: Promise<string>;
  /** Outbound only: ms from sending `call.start` to receiving `call.answered` (the setup time). */
  setupMs?: number;
}

export interface IncomingCall {
  callId: string;
  from: string;
  sdp: string;
}

export class WrtcDialer {
  userId: string | null = null;
  /** Server `error` messages without a ref, newest last. */
  readonly errors: Array<{ code: string; message: string }> = [];
  private ws: WebSocket | null = null;
  /** Calls the server has named, until they end; then in `ended`. */
  /** Every server message received, in order (for assertions on events such as `recording.*`). */
  readonly messages: ServerMessage[] = [];
  private readonly calls = new Map<string, LiveCall>();
  private readonly ended = new Map<string, LiveCall>();
  /** Outbound calls waiting for call.created (by ref), then for call.answered (by callId). */
  private readonly starts = new Map<string, PendingStart>();
  private readonly answers = new Map<string, PendingStart>();
  /** Every offered call until accepted, rejected or ended; `unseen` are not yet given to waitIncoming. */
  private readonly offers = new Map<string, IncomingCall>();
  private unseen: IncomingCall[] = [];
  private readonly incomingWaiters: Array<(call: IncomingCall) => void> = [];
  private incomingHandler: ((call: IncomingCall) => void) | null = null;
  private closed = false;

  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly defaults: ToneOptions = {},
  ) {}

  /** Open the socket, authenticate, resolve with the userId on `ready`. */
  async connect(timeoutMs = 10_000): Promise<string> {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    return withTimeout(
      new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: this.token })));
        ws.on('error', reject);
        ws.on('close', (code, reason) => {
          reject(new Error(`socket closed before ready: ${code} ${reason.toString()}`));
          this.onSocketClosed();
        });
        ws.on('message', (data, isBinary) => {
          if (isBinary) return;
          let msg: ServerMessage;
          try {
            msg = JSON.parse(data.toString()) as ServerMessage;
          } catch {
            return;
          }
          if (msg.type === 'ready') {
            this.userId = msg.userId;
            resolve(msg.userId);
          } else if (msg.type === 'error' && this.userId === null && !msg.ref) {
            reject(new Error(`auth failed: ${msg.code} ${msg.message}`));
          }
          this.onMessage(msg);
        });
      }),
      timeoutMs,
      'ready',
    );
  }

  /** Place a call; resolves once the server's answer is applied (`call.answered`). */
  async call(to: string, tone: ToneOptions = {}, timeoutMs = 15_000): Promise<WrtcCall> {
    const peer = createTonePeer({ ...this.defaults, ...tone });
    const ref = `w${++refCounter}-${Date.now().toString(36)}`;
    let pending: PendingStart | undefined;
    try {
      await peer.pc.setLocalDescription(await peer.pc.createOffer());
      const sdp = await gatheredSdp(peer.pc);
      const answered = new Promise<LiveCall>((resolve, reject) => {
        pending = { peer, resolve, reject };
        this.starts.set(ref, pending);
      });
      pending!.sentAt = performance.now();
      this.send({ type: 'call.start', ref, to, sdp });
      const live = await withTimeout(answered, timeoutMs, `call.answered for ${to}`);
      live.call.setupMs = pending!.answeredAt! - pending!.sentAt;
      return live.call;
    } catch (err) {
      this.starts.delete(ref);
      const callId = pending?.callId;
      if (callId) {
        this.answers.delete(callId);
        if (this.calls.has(callId) && this.ws?.readyState === WebSocket.OPEN) this.hangup(callId);
      }
      peer.close();
      throw err;
    }
  }

  /** Called for every `call.incoming` (they are also queued for waitIncoming). */
  onIncoming(handler: (call: IncomingCall) => void): void {
    this.incomingHandler = handler;
  }

  /** The next incoming call (already queued or yet to come). */
  async waitIncoming(timeoutMs = 10_000): Promise<IncomingCall> {
    const queued = this.unseen.shift();
    if (queued) return queued;
    return withTimeout(new Promise<IncomingCall>((resolve) => this.incomingWaiters.push(resolve)), timeoutMs, 'call.incoming');
  }

  /** Answer an incoming call (its offer arrived with `call.incoming`). */
  async accept(callId: string, tone: ToneOptions = {}): Promise<WrtcCall> {
    const offer = this.takeIncoming(callId);
    const peer = createTonePeer({ ...this.defaults, ...tone });
    try {
      await peer.pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      const sdp = await gatheredSdp(peer.pc);
      const live = this.track(callId, peer);
      this.send({ type: 'call.accept', callId, sdp });
      return live.call;
    } catch (err) {
      peer.close();
      throw err;
    }
  }

  reject(callId: string): void {
    this.takeIncoming(callId);
    this.send({ type: 'call.reject', callId });
  }

  /** Ask the server to end the call and stop local media at once; `waitEnded` gives the server's reason. */
  hangup(callId: string): void {
    this.send({ type: 'call.hangup', callId });
    this.calls.get(callId)?.peer.close();
  }

  /** Ask the server to pause (or resume) the call's recording; it answers `recording.paused` / `.resumed`. */
  pauseRecording(callId: string, pause = true): void {
    this.send({ type: pause ? 'recording.pause' : 'recording.resume', callId });
  }

  async waitEnded(callId: string, timeoutMs = 10_000): Promise<string> {
    const live = this.calls.get(callId) ?? this.ended.get(callId);
    if (!live) throw new Error(`unknown call ${callId}`);
    return withTimeout(live.call.ended, timeoutMs, `call.ended for ${callId}`);
  }

  /** A call that has not ended yet (its meter: what this side hears). */
  live(callId: string): WrtcCall | undefined {
    return this.calls.get(callId)?.call;
  }

  /** Wait for ICE + DTLS: `pc.connectionState === 'connected'`. */
  async waitConnected(callId: string, timeoutMs = 10_000): Promise<void> {
    const live = this.calls.get(callId);
    if (!live) throw new Error(`unknown or ended call ${callId}`);
    await waitConnection(live.peer.pc, timeoutMs);
  }

  /** Stop every call's media and timers and close the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ws?.close(1000);
    this.ws = null;
    this.onSocketClosed();
  }

  // -------------------------------------------------------------------------------------------

  private send(msg: Record<string, unknown>): void {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Error('signaling socket is not open');
    this.ws.send(JSON.stringify(msg));
  }

  private onMessage(msg: ServerMessage): void {
    this.messages.push(msg);
    switch (msg.type) {
      case 'call.created': {
        const pending = this.starts.get(msg.ref);
        if (!pending) return;
        this.starts.delete(msg.ref);
        pending.callId = msg.callId;
        this.answers.set(msg.callId, pending);
        this.track(msg.callId, pending.peer);
        return;
      }
      case 'call.answered': {
        const live = this.calls.get(msg.callId);
        const pending = this.answers.get(msg.callId);
        if (!live || !pending) return;
        pending.answeredAt = performance.now();
        this.answers.delete(msg.callId);
        live.peer.pc
          .setRemoteDescription({ type: 'answer', sdp: msg.sdp })
          .then(() => pending.resolve(live), pending.reject);
        return;
      }
      case 'call.incoming': {
        const call = { callId: msg.callId, from: msg.from, sdp: msg.sdp };
        this.offers.set(call.callId, call);
        const waiter = this.incomingWaiters.shift();
        if (waiter) waiter(call);
        else this.unseen.push(call);
        this.incomingHandler?.(call);
        return;
      }
      case 'call.ended':
        this.takeOffer(msg.callId);
        this.finish(msg.callId, msg.reason);
        return;
      case 'error': {
        const pending = msg.ref ? this.starts.get(msg.ref) : undefined;
        if (pending && msg.ref) {
          this.starts.delete(msg.ref);
          pending.reject(new Error(`call.start failed: ${msg.code} ${msg.message}`));
        } else {
          this.errors.push({ code: msg.code, message: msg.message });
        }
        return;
      }
      default:
        return; // ready, ringing, pong, recording.*, earnings.updated, …
    }
  }

  private takeIncoming(callId: string): IncomingCall {
    const offer = this.takeOffer(callId);
    if (!offer) throw new Error(`no incoming call ${callId}`);
    return offer;
  }

  private takeOffer(callId: string): IncomingCall | undefined {
    const offer = this.offers.get(callId);
    if (offer) {
      this.offers.delete(callId);
      this.unseen = this.unseen.filter((c) => c !== offer);
    }
    return offer;
  }

  private track(callId: string, peer: Peer): LiveCall {
    let settle!: (reason: string) => void;
    const ended = new Promise<string>((resolve) => (settle = resolve));
    const live: LiveCall = { peer, settle, call: { callId, pc: peer.pc, meter: peer.meter, ended } };
    this.calls.set(callId, live);
    return live;
  }

  private finish(callId: string, reason: string): void {
    const live = this.calls.get(callId);
    const pending = this.answers.get(callId);
    if (pending) {
      this.answers.delete(callId);
      pending.reject(new Error(`call ended before answer: ${reason}`));
    }
    if (!live) return;
    this.calls.delete(callId);
    this.ended.set(callId, live);
    live.peer.close();
    live.settle(reason);
  }

  private onSocketClosed(): void {
    for (const pending of this.starts.values()) {
      pending.reject(new Error('signaling socket closed'));
      pending.peer.close();
    }
    this.starts.clear();
    for (const callId of [...this.calls.keys()]) this.finish(callId, 'dialer-disconnected');
  }
}

/**
 * Two peers connected directly (no server), for self-tests: A sends freqA, B sends freqB.
 * `close()` tears both down.
 */
export async function connectDirect({ freqA = 440, freqB = 1000, timeoutMs = 10_000 } = {}): Promise<{
  a: { pc: PeerConnection; meter: AudioMeter };
  b: { pc: PeerConnection; meter: AudioMeter };
  close: () => void;
}> {
  const a = createTonePeer({ toneHz: freqA });
  const b = createTonePeer({ toneHz: freqB });
  const close = (): void => {
    a.close();
    b.close();
  };
  try {
    await a.pc.setLocalDescription(await a.pc.createOffer());
    await b.pc.setRemoteDescription({ type: 'offer', sdp: await gatheredSdp(a.pc) });
    await b.pc.setLocalDescription(await b.pc.createAnswer());
    await a.pc.setRemoteDescription({ type: 'answer', sdp: await gatheredSdp(b.pc) });
    await Promise.all([waitConnection(a.pc, timeoutMs), waitConnection(b.pc, timeoutMs)]);
    return { a, b, close };
  } catch (err) {
    close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Received audio

/** Keeps the last `capacitySeconds` of received audio (first channel) and measures tones in it. */
export class AudioMeter {
  sampleRate = 48_000;
  /** Total samples received so far. */
  received = 0;
  private ring = new Int16Array(0);
  private write = 0;

  constructor(private readonly capacitySeconds = 2) {}

  push(samples: Int16Array, sampleRate: number, channels: number): void {
    if (this.ring.length === 0 || sampleRate !== this.sampleRate) {
      this.sampleRate = sampleRate;
      this.ring = new Int16Array(Math.round(sampleRate * this.capacitySeconds));
      this.write = 0;
    }
    const ring = this.ring;
    for (let i = 0; i < samples.length; i += channels) {
      ring[this.write] = samples[i]!;
      this.write = this.write + 1 === ring.length ? 0 : this.write + 1;
    }
    this.received += Math.floor(samples.length / channels);
  }

  /** The most recent `ms` of audio (fewer samples if less has arrived). */
  recent(ms = 500): Int16Array {
    const n = Math.min(Math.round((ms / 1000) * this.sampleRate), this.ring.length, this.received);
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.ring[(this.write - n + i + this.ring.length) % this.ring.length]!;
    }
    return out;
  }

  /**
   * Level of `freq` in the last `ms` as dBFS of a sine's peak (Goertzel; a full-scale tone reads 0);
   * -200 for silence or no audio. Use whole-Hz tones and windows of 500 ms or so (2 Hz bins).
   */
  measure(freq: number, ms = 500): number {
    return toneDbfs(this.recent(ms), freq, this.sampleRate);
  }

  /** RMS level of the last `ms`, dBFS; -200 for silence. */
  rmsDb(ms = 500): number {
    return Math.max(-200, rmsDbfs(this.recent(ms)));
  }
}

// ---------------------------------------------------------------------------------------------
// Peers and tones

/** The subset of wrtc's RTCPeerConnection these helpers use (wrtc's own .d.ts needs the DOM lib). */
export interface PeerConnection {
  readonly localDescription: SessionDescription | null;
  readonly iceGatheringState: string;
  readonly connectionState: string;
  createOffer(): Promise<SessionDescription>;
  createAnswer(): Promise<SessionDescription>;
  setLocalDescription(d: SessionDescription): Promise<void>;
  setRemoteDescription(d: SessionDescription): Promise<void>;
  addTrack(track: MediaTrack, ...streams: unknown[]): unknown;
  getStats(): Promise<Map<string, Record<string, unknown>>>;
  close(): void;
  ontrack: ((event: { track: MediaTrack }) => void) | null;
  onicegatheringstatechange: (() => void) | null;
  onconnectionstatechange: (() => void) | null;
}
interface SessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}
interface MediaTrack {
  readonly kind: string;
  stop(): void;
}
interface AudioFrame {
  samples: Int16Array;
  sampleRate: number;
  bitsPerSample?: number;
  channelCount?: number;
  numberOfFrames?: number;
}
interface Wrtc {
  RTCPeerConnection: new (config: PeerConfig) => PeerConnection;
  nonstandard: {
    RTCAudioSource: new () => { createTrack(): MediaTrack; onData(frame: AudioFrame): void };
    RTCAudioSink: new (track: MediaTrack) => { stop(): void; ondata: ((frame: Required<AudioFrame>) => void) | null };
  };
}

const wrtc = wrtcModule as unknown as Wrtc;
// Not on `beforeExit` itself: node:test prints its closing plan and counts there (a file run on its own,
// as tap runs it, lost them and failed), and the service's rtpengine supervisor stops its child on `exit`.
// An `exit` hook added at `beforeExit` comes after both.
process.once('beforeExit', () => process.once('exit', (code) => process.exit(code)));

const ICE_GATHERING_TIMEOUT_MS = 2000;
let refCounter = 0;

export interface Peer {
  pc: PeerConnection;
  meter: AudioMeter;
  close(): void;
}
interface LiveCall {
  peer: Peer;
  call: WrtcCall;
  settle(reason: string): void;
}
interface PendingStart {
  peer: Peer;
  callId?: string;
  sentAt?: number;
  answeredAt?: number;
  resolve(call: LiveCall): void;
  reject(err: Error): void;
}
export interface PeerConfig {
  iceServers: unknown[];
  bundlePolicy?: 'balanced' | 'max-bundle' | 'max-compat';
  rtcpMuxPolicy?: 'require' | 'negotiate';
}

/**
 * A libwebrtc peer sending a sine tone and metering what it receives (the last `meterSeconds`);
 * close() is idempotent. The dialer below uses one per call; media tests drive one directly.
 */
export function createTonePeer({
  toneHz = 440,
  amplitude = 0.3,
  meterSeconds = 2,
  pc: config = { iceServers: [] },
}: ToneOptions & { meterSeconds?: number; pc?: PeerConfig } = {}): Peer {
  const pc = new wrtc.RTCPeerConnection(config);
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  pc.addTrack(track);
  const stopTone = toneClock.add(source, toneFrames(toneHz, amplitude));
  const meter = new AudioMeter(meterSeconds);
  const sinks: Array<{ stop(): void }> = [];
  pc.ontrack = ({ track: remote }) => {
    if (remote.kind !== 'audio') return;
    const sink = new wrtc.nonstandard.RTCAudioSink(remote);
    sink.ondata = (frame) => meter.push(frame.samples, frame.sampleRate, frame.channelCount || 1);
    sinks.push(sink);
  };
  let closed = false;
  return {
    pc,
    meter,
    close() {
      if (closed) return;
      closed = true;
      stopTone();
      for (const sink of sinks) sink.stop();
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.onicegatheringstatechange = null;
      pc.close();
      track.stop();
    },
  };
}

const SAMPLE_RATE = 48_000;
const FRAME_SAMPLES = 480; // 10 ms
const FRAMES_PER_SECOND = SAMPLE_RATE / FRAME_SAMPLES;

/** One second of tone as 100 ten-millisecond frames, shared by every call at that tone. */
const frameCache = new Map<string, Int16Array[]>();
function toneFrames(freq: number, amplitude: number): Int16Array[] {
  const key = `${freq}/${amplitude}`;
  let frames = frameCache.get(key);
  if (!frames) {
    // Whole-Hz tones repeat every second, so the 100 frames loop without a phase jump.
    const a = Math.min(1, amplitude);
    frames = Array.from({ length: FRAMES_PER_SECOND }, (_, f) => sine(freq, SAMPLE_RATE, FRAME_SAMPLES, a, f * FRAME_SAMPLES));
    frameCache.set(key, frames);
  }
  return frames;
}

/**
 * One 10 ms timer feeds every live tone source (not one timer per call), catching up on the wall
 * clock so timer jitter does not starve the encoder. Stops when no source is left; unref'd.
 */
const toneClock = (() => {
  const sources = new Set<{ source: { onData(frame: AudioFrame): void }; frames: Int16Array[]; next: number }>();
  let timer: NodeJS.Timeout | null = null;
  let startedAt = 0;
  let sent = 0;
  const tick = (): void => {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * FRAMES_PER_SECOND);
    // After a long stall, skip ahead rather than burst more than 100 ms of audio.
    if (due - sent > 10) sent = due - 10;
    for (; sent < due; sent++) {
      for (const s of sources) {
        s.source.onData({ samples: s.frames[s.next]!, sampleRate: SAMPLE_RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: FRAME_SAMPLES });
        s.next = (s.next + 1) % s.frames.length;
      }
    }
  };
  return {
    add(source: { onData(frame: AudioFrame): void }, frames: Int16Array[]): () => void {
      const entry = { source, frames, next: 0 };
      sources.add(entry);
      if (!timer) {
        startedAt = performance.now();
        sent = 0;
        timer = setInterval(tick, 10);
        timer.unref();
      }
      return () => {
        sources.delete(entry);
        if (sources.size === 0 && timer) {
          clearInterval(timer);
          timer = null;
        }
      };
    },
  };
})();

/** The local SDP once ICE gathering completed (or after 2 s): there is no trickle ICE. */
export async function gatheredSdp(pc: PeerConnection): Promise<string> {
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const timeout = setTimeout(resolve, ICE_GATHERING_TIMEOUT_MS);
      pc.onicegatheringstatechange = () => {
        if (pc.iceGatheringState !== 'complete') return;
        clearTimeout(timeout);
        resolve();
      };
    });
    pc.onicegatheringstatechange = null;
  }
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error('no local description');
  return sdp;
}

export async function waitConnection(pc: PeerConnection, timeoutMs: number): Promise<void> {
  if (pc.connectionState === 'connected') return;
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected') resolve();
        else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
          reject(new Error(`connection ${pc.connectionState}`));
        }
      };
    }),
    timeoutMs,
    'connectionState connected',
  ).finally(() => {
    pc.onconnectionstatechange = null;
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
