/**
 * A supervised local rtpengine (the embedded default, DESIGN §1): userspace only (`--table=-1`, no kernel
 * module here), foreground, logging to stderr which we forward to pino at debug. If it exits while we
 * want it up, it is restarted with exponential backoff. `stop()` sends SIGTERM, then SIGKILL, and waits for
 * the exit. Where util-linux `setpriv` exists, the child also gets a parent-death signal so that it dies
 * with us even if Node itself is SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { MonologueError, errorMessage } from '../errors.js';
import { createNgClient, type NgClient } from './ng-client.js';
import { PUBLIC_INTERFACE, RECORDER_INTERFACE } from './interfaces.js';

export interface RtpengineProcessOptions {
  log: Logger;
  /** Default `/usr/bin/rtpengine`. */
  binary?: string;
  /** Address of the call legs' media (`--interface=public/…`). Default `127.0.0.1`. */
  interface?: string;
  /** Address rtpengine sends the recorder fork from (`--interface=recorder/…`): keep it internal. Default `127.0.0.1`. */
  recorderInterface?: string;
  /** ng control listen address. Default 127.0.0.1. */
  ngHost?: string;
  ngPort: number;
  portMin: number;
  portMax: number;
  /** rtpengine log level (syslog scale, 0..7). Default 5. */
  logLevel?: number;
  /** `--timeout`: seconds without RTP before rtpengine drops a call. Default rtpengine's (60). */
  rtpTimeoutSec?: number;
  /** `--offer-timeout`: seconds a call that was offered but never answered is kept. Default 60. */
  offerTimeoutSec?: number;
  /** Extra command-line arguments, appended verbatim. */
  extraArgs?: string[];
  /** How long `start()` waits for the first pong. Default 10 s. */
  startTimeoutMs?: number;
  /** Restart backoff: first delay and ceiling. Default 200 ms, 10 s. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export interface RtpengineProcessEvents {
  /** The child exited; `restarting` tells whether the supervisor will start it again. */
  exit: [info: { code: number | null; signal: NodeJS.Signals | null; restarting: boolean }];
  /** A (re)started child answered its first ping. */
  ready: [info: { pid: number; restarts: number }];
}

export interface RtpengineProcess extends EventEmitter<RtpengineProcessEvents> {
  /** A client for this instance's ng port (owned by the supervisor; closed by `stop()`). */
  readonly ng: NgClient;
  /** PID of the running child, if any. */
  readonly pid: number | undefined;
  /**
   * The current child answered its first ping and has not exited since. False from an exit until the
   * restarted child is ready: calls must not be set up in between (relay `available`).
   */
  readonly up: boolean;
  /** How many times the child was restarted after an unexpected exit. */
  readonly restarts: number;
  /** The argv used (binary first). */
  readonly argv: readonly string[];
  /**
   * Spawn and resolve once it answers ping; rejects with MEDIA_TIMEOUT (and stops) if it never does, or with
   * MEDIA_PORT_IN_USE if something (another rtpengine?) already holds the ng port: its pongs would fool us.
   */
  start(): Promise<void>;
  /** Resolve when the current child answers ping (e.g. after a restart). */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Stop supervising and kill the child (SIGTERM, then SIGKILL after `graceMs`). Idempotent and final: also
   *  closes `ng`; create a new supervisor to start again. */
  stop(graceMs?: number): Promise<void>;
}

export function createRtpengineProcess(opts: RtpengineProcessOptions): RtpengineProcess {
  return new Supervisor(opts);
}

/** The argv for an rtpengine 10.5 in userspace with our options. Exported for ops/tests. */
export function rtpengineArgs(opts: RtpengineProcessOptions): string[] {
  const args = [
    '--foreground',
    '--config-file=none',
    '--table=-1',
    `--interface=${PUBLIC_INTERFACE}/${opts.interface ?? '127.0.0.1'}`,
    `--interface=${RECORDER_INTERFACE}/${opts.recorderInterface ?? '127.0.0.1'}`,
    // Never move a stream to wherever packets come from: the peer is the one signalled (SDP, or ICE's
    // verified pair), and with `strict source` on every leg anything else is dropped (DESIGN §8, RTP bleed).
    '--endpoint-learning=off',
    `--listen-ng=${opts.ngHost ?? '127.0.0.1'}:${opts.ngPort}`,
    `--port-min=${opts.portMin}`,
    `--port-max=${opts.portMax}`,
    '--log-stderr',
    '--no-log-timestamps',
    `--log-level=${opts.logLevel ?? 5}`,
    '--delete-delay=0',
    `--offer-timeout=${opts.offerTimeoutSec ?? 60}`,
  ];
  if (opts.rtpTimeoutSec !== undefined) args.push(`--timeout=${opts.rtpTimeoutSec}`);
  args.push(...(opts.extraArgs ?? []));
  return [opts.binary ?? '/usr/bin/rtpengine', ...args];
}

// ---------------------------------------------------------------- implementation

const SETPRIV = '/usr/bin/setpriv';
/** A child that stayed up this long resets the backoff. */
const STABLE_MS = 10_000;

class Supervisor extends EventEmitter<RtpengineProcessEvents> implements RtpengineProcess {
  readonly ng: NgClient;
  readonly argv: readonly string[];
  readonly #opts: RtpengineProcessOptions;
  readonly #log: Logger;
  #child: ChildProcess | undefined;
  #childExited: Promise<void> = Promise.resolve();
  #wanted = false;
  #restarts = 0;
  #backoff: number;
  #restartTimer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #up = false;
  readonly #onProcessExit = (): void => {
    // Last resort: never leave an orphan when Node exits without calling stop().
    try {
      this.#child?.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };

  constructor(opts: RtpengineProcessOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log.child({ mod: 'rtpengine' });
    this.argv = rtpengineArgs(opts);
    this.#backoff = opts.backoffMinMs ?? 200;
    // Quick probes: a healthy local rtpengine answers in well under 200 ms.
    this.ng = createNgClient({ host: opts.ngHost ?? '127.0.0.1', port: opts.ngPort, tries: 2, retryIntervalMs: 200, log: this.#log });
  }

  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }

  get up(): boolean {
    return this.#up && this.pid !== undefined;
  }

  get restarts(): number {
    return this.#restarts;
  }

  async start(): Promise<void> {
    if (this.#wanted) return this.waitReady();
    const host = this.#opts.ngHost ?? '127.0.0.1';
    if (!(await udpPortFree(host, this.#opts.ngPort))) {
      this.ng.close();
      throw new MonologueError('MEDIA_PORT_IN_USE', `ng port ${host}:${this.#opts.ngPort} is already in use`);
    }
    this.#wanted = true;
    process.on('exit', this.#onProcessExit);
    this.#spawn();
    try {
      await this.waitReady(this.#opts.startTimeoutMs ?? 10_000);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  waitReady(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const probe = async (): Promise<void> => {
      for (;;) {
        if (!this.#wanted) throw new MonologueError('MEDIA_CLOSED', 'rtpengine supervisor stopped');
        if (this.pid !== undefined) {
          try {
            await this.ng.ping();
            // Whoever sees the first pong (start(), or the respawn's own probe) marks the child up.
            if (this.pid !== undefined) this.#up = true;
            return;
          } catch (err) {
            if (err instanceof MonologueError && err.code === 'MEDIA_CLOSED') throw err;
          }
        }
        if (Date.now() >= deadline) {
          throw new MonologueError('MEDIA_TIMEOUT', `rtpengine did not answer ping within ${timeoutMs} ms`);
        }
        await sleep(100);
      }
    };
    return probe();
  }

  async stop(graceMs = 3000): Promise<void> {
    this.#wanted = false;
    this.#up = false;
    process.off('exit', this.#onProcessExit);
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.#childExited;
      clearTimeout(killer);
    }
    this.ng.close();
  }

  #spawn(): void {
    const [bin, ...args] = this.argv as [string, ...string[]];
    const useSetpriv = existsSync(SETPRIV);
    const cmd = useSetpriv ? SETPRIV : bin;
    const argv = useSetpriv ? ['--pdeathsig', 'SIGKILL', '--', bin, ...args] : args;
    this.#log.info({ argv: this.argv }, 'starting rtpengine');
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#startedAt = Date.now();
    let ended = false;
    let endedResolve: () => void = () => undefined;
    this.#childExited = new Promise<void>((resolve) => (endedResolve = resolve));
    // A failed spawn emits 'error' and no 'exit': treat both as the end of this child, once.
    const end = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (ended) return;
      ended = true;
      endedResolve();
      this.#onExit(child, code, signal);
    };
    forwardLines(child.stdout, (line) => this.#log.debug({ out: line }, 'rtpengine'));
    forwardLines(child.stderr, (line) => this.#log.debug({ out: line }, 'rtpengine'));
    child.once('error', (err) => {
      this.#log.error({ err }, 'rtpengine spawn failed');
      if (child.pid === undefined) end(null, null);
    });
    child.once('exit', (code, signal) => end(code, signal));
    void this.waitReady(this.#opts.startTimeoutMs ?? 10_000).then(
      () => {
        if (this.#child === child && child.pid !== undefined && this.pid !== undefined) {
          this.#up = true;
          this.#log.info({ pid: child.pid, restarts: this.#restarts }, 'rtpengine ready');
          this.emit('ready', { pid: child.pid, restarts: this.#restarts });
        }
      },
      (err: unknown) => this.#log.debug({ err: errorMessage(err) }, 'rtpengine readiness probe ended'),
    );
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#up = false;
    const restarting = this.#wanted;
    (restarting ? this.#log.warn.bind(this.#log) : this.#log.info.bind(this.#log))(
      { code, signal, restarting },
      'rtpengine exited',
    );
    this.emit('exit', { code, signal, restarting });
    if (!restarting) return;
    if (Date.now() - this.#startedAt >= STABLE_MS) this.#backoff = this.#opts.backoffMinMs ?? 200;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMaxMs ?? 10_000);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#wanted) return;
      this.#restarts++;
      this.#spawn();
    }, delay);
  }
}

function forwardLines(stream: NodeJS.ReadableStream | null, sink: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trimEnd();
      buf = buf.slice(nl + 1);
      if (line) sink(line);
    }
  });
  stream.on('end', () => {
    if (buf.trim()) sink(buf.trim());
    buf = '';
  });
}

function udpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
