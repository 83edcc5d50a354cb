/**
 * Paced reading of the recorder sockets: every socket reads only on a shared tick, all in one event-loop
 * pass, instead of waking the process for each datagram as it lands.
 *
 * Why: a fork sends 50 datagrams a second and the forks are not in step, so read as they come, every datagram
 * costs a wake-up of the event loop (epoll, timers, a callback scope), which measured as much as the recorder's
 * own work (scripts/bench-recorder-live.ts). Read every `intervalMs`, each socket hands over the datagrams
 * queued in the kernel since the last tick in one go, one stream after the other, with libopus still warm.
 * Recording does not care about latency; the kernel holds what waits (the sockets ask for a 1 MiB buffer).
 *
 * How: between ticks a socket's reading is stopped (libuv `uv_udp_recv_stop`); a tick starts every socket
 * and stops them all again once the poll phase has read them (a `setImmediate`). Node's dgram has no public
 * pause, so this reaches the socket's UDP handle through its internal state symbol (unchanged since Node 12);
 * where that is missing the socket is left reading continuously, as before, and `add` says so.
 *
 * What this changes for callers: a datagram is handed over up to `intervalMs` after it arrived (arrival times
 * are read times). Whoever needs "everything that arrived until now" (a stop, a resume after a pause) calls
 * `drain`, which reads every queued datagram first.
 */
import type { RemoteInfo, Socket } from 'node:dgram';

/** The part of Node's UDP handle (UDPWrap) used here. */
interface UdpHandle {
  recvStart(): number;
  recvStop(): number;
}

function udpHandle(socket: Socket): UdpHandle | undefined {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  if (!sym) return undefined;
  const state: unknown = (socket as unknown as Record<symbol, unknown>)[sym];
  const handle: unknown = typeof state === 'object' && state !== null ? (state as { handle?: unknown }).handle : undefined;
  if (typeof handle !== 'object' || handle === null) return undefined;
  const h = handle as Partial<UdpHandle>;
  return typeof h.recvStart === 'function' && typeof h.recvStop === 'function' ? (h as UdpHandle) : undefined;
}

/** libuv reads at most 32 datagrams per socket per poll; a pass goes on while sockets still had some. */
const MAX_TURNS_PER_PASS = 16;

interface Member {
  handle: UdpHandle;
  /** Datagrams read since the last look. */
  got: number;
  reading: boolean;
}

export class PacedReads {
  private readonly members = new Map<Socket, Member>();
  /** Callbacks waiting for the end of the next complete read pass. */
  private waiting: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private passRunning = false;

  constructor(readonly intervalMs: number) {
    if (!(intervalMs > 0)) throw new RangeError('intervalMs must be > 0');
  }

  /** Sockets read on the tick. */
  get size(): number {
    return this.members.size;
  }

  /**
   * Hand `socket`'s datagrams to `listener`, read on the tick from now on (the socket must be bound). False when
   * its handle cannot be reached: the listener then gets every datagram as it comes. A paced socket is forgotten
   * by `forget` or when it closes.
   */
  listen(socket: Socket, listener: (msg: Buffer, from: RemoteInfo) => void): boolean {
    if (this.members.has(socket)) throw new Error('PacedReads: this socket already has its listener');
    const handle = udpHandle(socket);
    if (!handle || handle.recvStop() !== 0) {
      socket.on('message', listener);
      return false;
    }
    const member: Member = { handle, got: 0, reading: false };
    this.members.set(socket, member);
    // One listener that also counts: a second one would cost an array copy per datagram in emit().
    socket.on('message', (msg, from) => {
      member.got++;
      listener(msg, from);
    });
    socket.once('close', () => this.forget(socket));
    this.timer ??= setInterval(() => this.startPass(), this.intervalMs);
    return true;
  }

  /**
   * Stop pacing `socket`, leaving its reading as it is (stopped between passes): for a socket about to close.
   * libuv must not be asked to read a closed handle, so this never starts it.
   */
  forget(socket: Socket): void {
    if (!this.members.delete(socket)) return;
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * Call `done` once the datagrams queued on the paced sockets when `drain` was called have been handed to their
   * listeners: right away when nothing is paced, else after the next complete read pass (a loop turn or two).
   */
  drain(done: () => void): void {
    if (this.members.size === 0) {
      done();
      return;
    }
    this.waiting.push(done);
    // A pass already running may have polled before this call: wait for one started after it.
    setImmediate(() => this.startPass());
  }

  /**
   * Start every paced socket; after each poll phase (an immediate), stop those that read nothing in it, and
   * once all are stopped (their kernel queues were empty) run the drains taken along.
   */
  private startPass(): void {
    if (this.passRunning) return; // the drains queued meanwhile get a pass of their own when this one ends
    this.passRunning = true;
    for (const m of this.members.values()) {
      m.got = 0;
      if (!m.reading) {
        m.handle.recvStart();
        m.reading = true;
      }
    }
    const waiting = this.waiting;
    this.waiting = [];
    let turns = 0;
    // Started from a timer, the sockets are read in this loop turn's poll phase and the immediate runs right
    // after it; an immediate set from within the check phase runs on the next turn, again after a poll phase.
    const look = (): void => {
      let still = 0;
      for (const m of this.members.values()) {
        if (!m.reading) continue;
        if (m.got > 0 && turns < MAX_TURNS_PER_PASS) {
          m.got = 0;
          still++;
        } else {
          m.handle.recvStop();
          m.reading = false;
        }
      }
      turns++;
      if (still > 0) {
        setImmediate(look);
        return;
      }
      this.passRunning = false;
      if (this.waiting.length > 0) setImmediate(() => this.startPass());
      for (const cb of waiting) cb();
    };
    setImmediate(look);
  }
}
