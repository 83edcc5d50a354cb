/**
 * Call setup + teardown cost, measured from outside: the service runs as a separate child process (this
 * script forked with `--serve`), so the load clients' CPU is not billed to it; rtpengine is the service's
 * child and is counted apart. K WebSocket signaling clients each run a closed loop (or, with --rate, share
 * an open-loop schedule): call.start → call.answered → call.hangup → call.ended, against a sipp trunk that
 * answers at once. The dialers send one real WebRTC offer (gathered once from a libwebrtc peer) for every
 * call and run no media: the service and rtpengine do all their per-call work, the client almost none.
 *
 *   npm run --silent profile:setup -- --clients 40 --seconds 20            closed loop, 40 sockets
 *   npm run --silent profile:setup -- --rate 200 --seconds 60              open loop at 200 calls/s
 *   npm run --silent profile:setup -- --recorded --profile /tmp/prof      recorded calls; CPU profile of the service
 *
 * CPU is utime+stime of each process's own threads (/proc/PID/stat fields 14-15, never cutime/cstime), over
 * the measured window only (after warm-up). Prints a summary and, last, one JSON line.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import type { ServerMessage } from '../src/signaling/messages.js';

const SELF = fileURLToPath(import.meta.url);
const CLK_TCK = 100; // Linux USER_HZ

interface Options {
  clients: number;
  seconds: number;
  warmupSeconds: number;
  rate: number | undefined;
  recorded: boolean;
  profile: string | undefined;
  logLevel: string;
  database: string;
}

/** What the service child reports once it is up. */
interface Ready {
  httpPort: number;
  pid: number;
  rtpenginePid: number | undefined;
  tokens: string[];
}

if (process.argv.includes('--serve')) {
  void serve();
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------- driver

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '40' },
      seconds: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      rate: { type: 'string' },
      recorded: { type: 'boolean', default: false },
      profile: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      database: { type: 'string', default: '' },
    },
  });
  const o: Options = {
    clients: Number(values.clients),
    seconds: Number(values.seconds),
    warmupSeconds: Number(values.warmup),
    rate: values.rate === undefined ? undefined : Number(values.rate),
    recorded: values.recorded === true,
    profile: values.profile,
    logLevel: values['log-level'] ?? 'info',
    database: values.database ?? '',
  };

  const { startSipp, freePort } = await import('../test/helpers/sipp.js');
  const { freeUdpPort, freeUdpPortRange } = await import('../test/helpers/ports.js');
  const { webrtcOffer } = await import('../test/helpers/signal-client.js');
  const offer = await webrtcOffer();

  const dataDir = mkdtempSync(join(tmpdir(), 'monologue-profile-'));
  const sippPort = await freePort();
  const range = await freeUdpPortRange(2000);
  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const overrides = {
    dataDir,
    database: { url: o.database },
    log: { level: o.logLevel },
    http: { host: '127.0.0.1', port: 0 },
    sip: { port: await freeUdpPort(), tcp: false, trunk: { host: '127.0.0.1', port: sippPort, transport: 'udp' } },
    media: { rtpengine: { ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max } },
    calls: { drainMs: 2000, maxCallsPerUser: 2, dailyMaxCallAttempts: 10_000_000, dailyMaxMinutes: 1_000_000 },
    signaling: { maxMessagesPerSecond: 1000 },
  };
  const sipp = startSipp({ scenario: 'uas-answer', port: sippPort, calls: 10_000_000, keys: { rtp_port: String(sink.address().port) }, timeoutMs: 3_600_000, extraArgs: ['-max_recv_loops', '10000', '-max_sched_loops', '10000'] });
  await sipp.ready;

  const execArgv = ['--import', 'tsx', ...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [])];
  const child = fork(SELF, ['--serve'], {
    execArgv,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, PROFILE_SETUP_CONFIG: JSON.stringify({ overrides, clients: o.clients, recorded: o.recorded }) },
  });
  // The service's log lines go to a file as a deployment's would (a write per line), not to this terminal.
  const { createWriteStream } = await import('node:fs');
  const logFile = join(dataDir, 'service.log');
  child.stdout?.pipe(createWriteStream(logFile));
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Ready));
    child.once('exit', (code) => reject(new Error(`service exited (${code}) before it was ready; log in ${logFile}`)));
  });

  // On any failure below, take the children down with us (rtpengine follows the service).
  process.once('exit', () => {
    child.kill('SIGKILL');
    sipp.kill();
  });
  // One at a time: the service lets only a few sockets per address wait for authentication.
  const clients: Dialer[] = [];
  for (const t of ready.tokens) clients.push(await Dialer.connect(ready.httpPort, t));
  const stats = new Stats();
  let measuring = false;
  let stop = false;
  const run = async (d: Dialer): Promise<void> => {
    while (!stop) await d.oneCall(offer, measuring ? stats : undefined);
  };

  const warmEnd = Date.now() + o.warmupSeconds * 1000;
  let loops: Promise<unknown>;
  if (o.rate === undefined) {
    loops = Promise.all(clients.map(run));
  } else {
    loops = openLoop(clients, o.rate, offer, () => stop, () => (measuring ? stats : undefined));
  }
  await sleep(warmEnd - Date.now());
  const cpu0 = { svc: cpuTicks(ready.pid), rtp: ready.rtpenginePid ? cpuTicks(ready.rtpenginePid) : 0, sipp: cpuTicks(sipp.process.pid!), me: process.cpuUsage() };
  const t0 = performance.now();
  measuring = true;
  await sleep(o.seconds * 1000);
  measuring = false;
  const cpu1 = { svc: cpuTicks(ready.pid), rtp: ready.rtpenginePid ? cpuTicks(ready.rtpenginePid) : 0, sipp: cpuTicks(sipp.process.pid!), me: process.cpuUsage(cpu0.me) };
  const wall = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.race([loops, sleep(15_000)]);

  for (const c of clients) c.close();
  child.send('stop');
  await new Promise<void>((r) => child.once('exit', () => r()));
  sipp.kill();
  sink.close();
  const errors = tail(logFile, o.logLevel);
  rmSync(dataDir, { recursive: true, force: true });

  const calls = stats.completed;
  const perCall = (ticks: number) => (calls > 0 ? round((ticks * (1000 / CLK_TCK)) / calls, 3) : null);
  const lat = stats.setup.sort((a, b) => a - b);
  const pct = (p: number) => (lat.length ? round(lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)]!, 1) : null);
  const out = {
    bench: 'profile-setup',
    mode: o.rate === undefined ? `closed-loop x${o.clients}` : `open-loop ${o.rate}/s`,
    recorded: o.recorded,
    seconds: round(wall, 1),
    calls,
    calls_per_s: round(calls / wall, 1),
    failed: stats.failedTotal,
    failures: Object.fromEntries(stats.failures),
    setup_ms: { p50: pct(50), p95: pct(95), p99: pct(99), max: lat.length ? round(lat.at(-1)!, 1) : null },
    cpu_ms_per_call: { service: perCall(cpu1.svc - cpu0.svc), rtpengine: perCall(cpu1.rtp - cpu0.rtp), sipp: perCall(cpu1.sipp - cpu0.sipp), driver: calls ? round((cpu1.me.user + cpu1.me.system) / 1000 / calls, 3) : null },
    service_core_share: round(((cpu1.svc - cpu0.svc) / CLK_TCK / wall) * 100, 1),
    ...(errors.length && { service_errors: errors }),
  };
  console.log(
    `${out.mode}${o.recorded ? ' recorded' : ''}: ${calls} calls in ${out.seconds} s (${out.calls_per_s}/s), ${out.failed} failed; setup p50 ${out.setup_ms.p50} p95 ${out.setup_ms.p95} p99 ${out.setup_ms.p99} ms; ` +
      `CPU per call: service ${out.cpu_ms_per_call.service} ms, rtpengine ${out.cpu_ms_per_call.rtpengine} ms`,
  );
  console.log(JSON.stringify(out));
}

/** Start calls at `rate` per second on whichever client has a free slot (each client: one call at a time). */
async function openLoop(clients: Dialer[], rate: number, offer: string, stopped: () => boolean, stats: () => Stats | undefined): Promise<void> {
  const free = [...clients];
  const running = new Set<Promise<void>>();
  const start = performance.now();
  let n = 0;
  while (!stopped()) {
    const due = start + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    n++;
    const s = stats();
    const d = free.pop();
    if (!d) {
      s?.fail('no-free-client');
      continue;
    }
    const p: Promise<void> = d.oneCall(offer, s).finally(() => {
      running.delete(p);
      free.push(d);
    });
    running.add(p);
  }
  await Promise.all(running);
}

class Stats {
  completed = 0;
  failedTotal = 0;
  readonly failures = new Map<string, number>();
  readonly setup: number[] = [];
  fail(reason: string): void {
    this.failedTotal++;
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }
}

/** One signaling socket; keeps no history, only the waiters of the call in progress. */
class Dialer {
  private waiter: ((m: ServerMessage) => boolean) | undefined;
  private seq = 0;
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as ServerMessage;
      if (this.waiter?.(m)) this.waiter = undefined;
    });
  }

  static async connect(port: number, token: string): Promise<Dialer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/signal`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const d = new Dialer(ws);
    ws.send(JSON.stringify({ type: 'auth', token }));
    const m = await d.next((x) => x.type === 'ready' || x.type === 'error', 10_000);
    if (m?.type !== 'ready') throw new Error(`auth refused: ${JSON.stringify(m)}`);
    return d;
  }

  /** Resolves with the first message `pred` takes, or undefined after `timeoutMs`. */
  next(pred: (m: ServerMessage) => boolean, timeoutMs: number): Promise<ServerMessage | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiter = (m) => {
        if (!pred(m)) return false;
        clearTimeout(timer);
        resolve(m);
        return true;
      };
    });
  }

  /** call.start → answered → hangup → ended; failures counted by reason into `stats` (when measuring). */
  async oneCall(offer: string, stats: Stats | undefined): Promise<void> {
    const ref = `r${++this.seq}`;
    const t0 = performance.now();
    let callId: string | undefined;
    const first = this.next((m) => {
      if (m.type === 'call.created' && m.ref === ref) callId = m.callId;
      return (m.type === 'call.answered' && m.callId === callId) || (m.type === 'call.ended' && m.callId === callId) || (m.type === 'error' && m.ref === ref);
    }, 30_000);
    this.ws.send(JSON.stringify({ type: 'call.start', ref, to: '+15550002222', sdp: offer }));
    const m = await first;
    if (m?.type !== 'call.answered') {
      stats?.fail(m === undefined ? (callId ? 'timeout-answer' : 'timeout-created') : m.type === 'error' ? `error:${m.code}` : `ended:${(m as { reason: string }).reason}`);
      if (callId && m === undefined) await this.hangup(callId);
      return;
    }
    const setupMs = performance.now() - t0;
    const ended = await this.hangup(m.callId);
    if (!ended) return stats?.fail('timeout-ended');
    if (ended !== 'local-hangup') return stats?.fail(`ended:${ended}`);
    if (stats) {
      stats.completed++;
      stats.setup.push(setupMs);
    }
  }

  private async hangup(callId: string): Promise<string | undefined> {
    const ended = this.next((x) => x.type === 'call.ended' && x.callId === callId, 30_000);
    this.ws.send(JSON.stringify({ type: 'call.hangup', callId }));
    const m = await ended;
    return m?.type === 'call.ended' ? m.reason : undefined;
  }

  close(): void {
    this.ws.close();
  }
}

/** utime + stime of the process's own threads, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Lines at warn level or above from the service log (first few), so a failing run says why. */
function tail(file: string, level: string): string[] {
  if (level === 'silent') return [];
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l))
      .slice(0, 5);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

// ---------------------------------------------------------------- service child

async function serve(): Promise<void> {
  const { loadConfig } = await import('../src/config/load.js');
  const { createLogger } = await import('../src/log.js');
  const { startService } = await import('../src/service.js');
  const spec = JSON.parse(process.env.PROFILE_SETUP_CONFIG ?? '{}') as { overrides: Record<string, unknown>; clients: number; recorded: boolean };
  const config = loadConfig({ env: {}, overrides: spec.overrides });
  const service = await startService(config, createLogger(config.log.level));
  const consentVersion = spec.recorded ? config.recording.consent.version : undefined;
  const tokens: string[] = [];
  for (let i = 0; i < spec.clients; i++) {
    const user = await service.users.create({ phone: `+1555100${String(i).padStart(4, '0')}`, enrolled: spec.recorded, ...(consentVersion && { consentVersion }) });
    tokens.push((await service.tokens.issue(user.id, 3_600_000)).token);
  }
  const ready: Ready = { httpPort: service.httpPort, pid: process.pid, rtpenginePid: service.rtpengine?.pid, tokens };
  process.send?.(ready);
  process.on('message', (m) => {
    if (m !== 'stop') return;
    // process.exit (not a kill) so --cpu-prof writes its profile.
    void service.close().finally(() => process.exit(0));
  });
}
