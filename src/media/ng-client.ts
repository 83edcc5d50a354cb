/**
 * rtpengine "ng" control protocol over UDP: each request is `cookie + ' ' + bencode(dict)`, each reply
 * `cookie + ' ' + bencode(dict)`. Replies are matched by cookie; a request is retransmitted (same cookie,
 * rtpengine answers a retransmission from its cookie cache) until a reply arrives or the tries run out.
 * Duplicate and late replies are ignored.
 *
 * The ng port has no authentication, so a reply counts only when it comes from the configured rtpengine
 * address and port; anything else is dropped, counted in `foreignReplies` and logged at most once a minute per
 * source. (Keep the ng port itself private: README, production notes.)
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import bencode from 'bencode';
import type { Logger } from '../log.js';
import { PerSourceLog } from '../per-source-log.js';
import { MonologueError } from '../errors.js';
import { safeEmit } from '../safe-emit.js';

/** A bencode value with byte strings decoded as UTF-8. */
export type NgValue = string | number | NgValue[] | NgDict;
export interface NgDict {
  [key: string]: NgValue;
}

export type NgCommand =
  | 'ping'
  | 'offer'
  | 'answer'
  | 'delete'
  | 'list'
  | 'query'
  | 'subscribe request'
  | 'subscribe answer'
  | 'unsubscribe'
  | 'play DTMF'
  | 'play media'
  | 'block media'
  | 'unblock media';

export interface NgClientOptions {
  /** rtpengine's `--listen-ng` address. Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Sends per request, first included. Default 3. */
  tries?: number;
  /** Milliseconds between sends; the request fails this long after the last send. Default 500. */
  retryIntervalMs?: number;
  log?: Logger;
}

/** Offer / answer / subscribe replies carry the rewritten SDP. */
export interface NgSdpReply extends NgDict {
  sdp: string;
}

/** One finished request, for watchers (metrics): `error` is the MonologueError code when it failed. */
export interface NgOutcome {
  command: NgCommand;
  seconds: number;
  error?: string;
}

export interface NgObserverEvents {
  done: [NgOutcome];
}

export interface NgClient {
  readonly host: string;
  /** Lets metrics watch every request's outcome without being called from here (DESIGN §7). */
  readonly observer: EventEmitter<NgObserverEvents>;
  readonly port: number;
  /** Datagrams dropped because they came from another address or port than rtpengine's. */
  readonly foreignReplies: number;
  /** Send any command; resolves with the reply dict when `result` is not `error`. */
  request(command: NgCommand, params?: NgDict): Promise<NgDict>;
  /** Resolves when rtpengine answers `pong`. */
  ping(): Promise<void>;
  offer(params: NgDict): Promise<NgSdpReply>;
  answer(params: NgDict): Promise<NgSdpReply>;
  delete(params: NgDict): Promise<NgDict>;
  /** Call-ids rtpengine currently holds. */
  list(limit?: number): Promise<string[]>;
  query(callId: string, params?: NgDict): Promise<NgDict>;
  subscribeRequest(params: NgDict): Promise<NgSdpReply>;
  subscribeAnswer(params: NgDict): Promise<NgDict>;
  /**
   * Queue one DTMF event in rtpengine, generated as if the participant `from-tag` had sent it, towards the
   * parties that receive that participant's media. Needs `inject DTMF` in the call's offer and answer.
   */
  playDtmf(params: NgDict & { 'call-id': string; 'from-tag': string; code: string; duration?: number; pause?: number; volume?: number }): Promise<NgDict>;
  /** Fail pending requests with `MEDIA_CLOSED` and release the socket. Idempotent. */
  close(): void;
}

export function createNgClient(opts: NgClientOptions): NgClient {
  return new UdpNgClient(opts);
}

// ---------------------------------------------------------------- implementation

interface Pending {
  command: NgCommand;
  resolve(reply: NgDict): void;
  reject(err: Error): void;
  timer?: NodeJS.Timeout;
}

class UdpNgClient implements NgClient {
  readonly host: string;
  readonly observer = new EventEmitter<NgObserverEvents>();
  readonly port: number;
  readonly #tries: number;
  readonly #interval: number;
  readonly #log: Logger | undefined;
  readonly #pending = new Map<string, Pending>();
  readonly #prefix = randomBytes(4).toString('hex');
  #seq = 0;
  #socket: Socket | undefined;
  #closed = false;
  /** rtpengine's address as replies carry it: `host` itself, or what it resolves to. */
  #address: Promise<string> | undefined;
  #resolved: string | undefined;
  #foreign = 0;
  /** A flood of foreign datagrams costs one line a minute per source. */
  readonly #foreignLines = new PerSourceLog(1000);

  constructor(opts: NgClientOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
    this.#tries = Math.max(1, opts.tries ?? 3);
    this.#interval = Math.max(1, opts.retryIntervalMs ?? 500);
    this.#log = opts.log;
  }

  get foreignReplies(): number {
    return this.#foreign;
  }

  request(command: NgCommand, params: NgDict = {}): Promise<NgDict> {
    if (this.#closed) return Promise.reject(new MonologueError('MEDIA_CLOSED', 'ng client is closed'));
    const cookie = `${this.#prefix}_${++this.#seq}`;
    let packet: Buffer;
    try {
      packet = Buffer.concat([Buffer.from(cookie + ' '), bencode.encode({ ...params, command })]);
    } catch (err) {
      return Promise.reject(new MonologueError('MEDIA_REJECTED', `cannot encode ${command}`, { cause: err }));
    }
    const socket = this.#ensureSocket();
    const started = performance.now();
    const reply = this.#send(command, cookie, packet, socket);
    if (this.observer.listenerCount('done') === 0) return reply;
    const seconds = () => (performance.now() - started) / 1000;
    return reply.then(
      (r) => {
        this.#observe({ command, seconds: seconds() });
        return r;
      },
      (err: unknown) => {
        this.#observe({ command, seconds: seconds(), error: err instanceof MonologueError ? err.code : 'MEDIA_FAILED' });
        throw err;
      },
    );
  }

  /** A watcher that throws must not fail the request it watched. */
  #observe(outcome: NgOutcome): void {
    safeEmit(this.observer, this.#log, 'done', outcome);
  }

  #send(command: NgCommand, cookie: string, packet: Buffer, socket: Socket): Promise<NgDict> {
    return new Promise<NgDict>((resolve, reject) => {
      let sent = 0;
      const send = (): void => {
        if (sent >= this.#tries) {
          this.#pending.delete(cookie);
          reject(
            new MonologueError(
              'MEDIA_TIMEOUT',
              `rtpengine at ${this.host}:${this.port} did not answer ${command} after ${sent} tries`,
            ),
          );
          return;
        }
        sent++;
        this.#rtpengineAddress().then(
          (address) => {
            if (this.#closed) return;
            socket.send(packet, this.port, address, (err) => {
              if (err) this.#log?.debug({ err, command }, 'ng send failed');
            });
          },
          (err: unknown) => this.#log?.warn({ err, host: this.host }, 'rtpengine host does not resolve'),
        );
        entry.timer = setTimeout(send, this.#interval);
      };
      const entry: Pending = { command, resolve, reject };
      this.#pending.set(cookie, entry);
      send();
    });
  }

  async ping(): Promise<void> {
    const reply = await this.request('ping');
    if (reply.result !== 'pong') {
      throw new MonologueError('MEDIA_REJECTED', `rtpengine answered ping with ${String(reply.result)}`);
    }
  }

  offer(params: NgDict): Promise<NgSdpReply> {
    return this.#withSdp('offer', params);
  }

  answer(params: NgDict): Promise<NgSdpReply> {
    return this.#withSdp('answer', params);
  }

  delete(params: NgDict): Promise<NgDict> {
    return this.request('delete', params);
  }

  async list(limit = 1000): Promise<string[]> {
    const reply = await this.request('list', { limit });
    const calls = reply.calls;
    if (calls === undefined) return [];
    if (!Array.isArray(calls)) throw new MonologueError('MEDIA_REJECTED', 'rtpengine list reply has no calls list');
    return calls.filter((c): c is string => typeof c === 'string');
  }

  query(callId: string, params: NgDict = {}): Promise<NgDict> {
    return this.request('query', { ...params, 'call-id': callId });
  }

  subscribeRequest(params: NgDict): Promise<NgSdpReply> {
    return this.#withSdp('subscribe request', params);
  }

  subscribeAnswer(params: NgDict): Promise<NgDict> {
    return this.request('subscribe answer', params);
  }

  playDtmf(params: NgDict): Promise<NgDict> {
    return this.request('play DTMF', params);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [cookie, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(cookie);
      p.reject(new MonologueError('MEDIA_CLOSED', `ng client closed before rtpengine answered ${p.command}`));
    }
    this.#socket?.close();
    this.#socket = undefined;
  }

  async #withSdp(command: NgCommand, params: NgDict): Promise<NgSdpReply> {
    const reply = await this.request(command, params);
    if (typeof reply.sdp !== 'string') {
      throw new MonologueError('MEDIA_REJECTED', `rtpengine answered ${command} without an SDP`);
    }
    return reply as NgSdpReply;
  }

  #ensureSocket(): Socket {
    if (this.#socket) return this.#socket;
    const socket = createSocket(this.#family() === 6 ? 'udp6' : 'udp4');
    socket.on('message', (msg, from) => {
      if (from.port === this.port && from.address === this.#resolved) this.#onMessage(msg);
      else this.#dropForeign(from);
    });
    socket.on('error', (err) => this.#log?.warn({ err }, 'ng socket error'));
    socket.unref(); // pending requests keep the process alive through their timers
    this.#socket = socket;
    return socket;
  }

  /** Requests and replies go to and come from this one address (resolved once, if `host` is a name). */
  #rtpengineAddress(): Promise<string> {
    if (this.#resolved) return Promise.resolve(this.#resolved);
    if (isIP(this.host)) {
      this.#resolved = this.host;
      return Promise.resolve(this.host);
    }
    this.#address ??= lookup(this.host, { family: this.#family() }).then(
      ({ address }) => (this.#resolved = address),
      (err: unknown) => {
        this.#address = undefined; // the next send tries again
        throw err;
      },
    );
    return this.#address;
  }

  #family(): 4 | 6 {
    return this.host.includes(':') ? 6 : 4;
  }

  #dropForeign(from: RemoteInfo): void {
    this.#foreign++;
    const line = this.#foreignLines.admit(`${from.address}:${from.port}`);
    if (!line) return;
    this.#log?.warn(
      { src: line.source, expected: `${this.#resolved ?? this.host}:${this.port}`, foreignReplies: this.#foreign },
      'ng datagram from a source other than rtpengine dropped',
    );
  }

  #onMessage(msg: Buffer): void {
    const space = msg.indexOf(0x20);
    if (space <= 0) return;
    const cookie = msg.subarray(0, space).toString('latin1');
    const pending = this.#pending.get(cookie);
    if (!pending) return; // duplicate, late, or not ours
    let reply: NgValue;
    try {
      reply = toNgValue(bencode.decode(msg.subarray(space + 1)));
    } catch (err) {
      this.#log?.warn({ err, command: pending.command }, 'undecodable ng reply');
      return; // a retransmission may still bring a good one
    }
    this.#pending.delete(cookie);
    clearTimeout(pending.timer);
    if (!isDict(reply)) {
      pending.reject(new MonologueError('MEDIA_REJECTED', `rtpengine sent a malformed reply to ${pending.command}`));
      return;
    }
    if (reply.result === 'error') {
      const reason = typeof reply['error-reason'] === 'string' ? reply['error-reason'] : 'no reason given';
      pending.reject(new MonologueError('MEDIA_REJECTED', `rtpengine refused ${pending.command}: ${reason}`));
      return;
    }
    if (typeof reply.warning === 'string') this.#log?.warn({ command: pending.command, warning: reply.warning }, 'rtpengine warning');
    pending.resolve(reply);
  }
}

/** Turn bencode's Buffers into strings, recursively. */
export function toNgValue(v: unknown): NgValue {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  if (Array.isArray(v)) return v.map(toNgValue);
  if (v !== null && typeof v === 'object') {
    const out: NgDict = {};
    for (const [k, val] of Object.entries(v)) out[k] = toNgValue(val);
    return out;
  }
  throw new TypeError(`not a bencode value: ${typeof v}`);
}

export function isDict(v: NgValue | undefined): v is NgDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
