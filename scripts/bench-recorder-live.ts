/**
 * Recorder benchmark on the live path: real recorder sockets (`createRecorder`, as the service makes one per
 * fork, answering an rtpengine-like `subscribe` offer and `connect()`ed to its sender), fed real UDP datagrams of
 * real Opus packets at 50 packets/s per stream by a separate sender process, with every chunk sealed (AES-GCM),
 * hashed and spooled to a folder store as `Recordings` does. Half the streams carry speech-like audio, half a
 * tone, both encoded with libopus as a browser does (VoIP mode, 32 kbit/s, 20 ms).
 *
 * Each stream's packets go out on its own 20 ms clock, phases spread over the period, so the recorder wakes up
 * for packets as it does behind rtpengine. The figure is this process's own CPU (process.cpuUsage, cross-checked
 * with utime+stime of /proc/self/stat; the sender is another process and not counted) over the measuring window,
 * per stream (% of one core) and per packet received (µs).
 *
 *   node --import tsx scripts/bench-recorder-live.ts [--streams 20,50,100] [--seconds 20] [--warmup 3] [--vad on|off] [--read-ms 100]
 *     --read-ms: the recorders' read tick (0: read each datagram as it lands, as before paced reads)
 *   node --import tsx scripts/bench-recorder-live.ts --floor    (bare sockets that only count: Node's and the kernel's share)
 *   node --cpu-prof --cpu-prof-dir=prof --import tsx scripts/bench-recorder-live.ts --streams 50    (where time goes)
 *
 * The last line is one JSON object with the figures.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createRecorder, READ_INTERVAL_MS, type Recorder } from '../src/recorder/recorder.js';
import { PacedReads } from '../src/recorder/paced-reads.js';
import { buildRtp } from '../src/recorder/rtp.js';
import { ChunkSealer, newRecordingSecrets } from '../src/crypto/chunk-aead.js';
import { createFsStore } from '../src/storage/fs-store.js';
import { openSpool, type Spool } from '../src/storage/spool.js';
import { objectKeys } from '../src/recordings/catalog.js';
import { createLogger } from '../src/log.js';
import { processCpuSeconds } from '../src/metrics/index.js';
import { opusPackets, speechLike, toneAt } from '../test/helpers/speech.js';

const PT = 111;
const PERIOD_MS = 20;
const HOST = '127.0.0.1';

type ToSender = { type: 'open'; streams: number } | { type: 'start'; targets: number[] } | { type: 'stop' };
type ToRecorder = { type: 'ports'; ports: number[] } | { type: 'stopped'; sent: number };

// ---------------------------------------------------------------- sender (child process)

async function sender(): Promise<void> {
  // Four speech-like voices and a tone, 20 s each, encoded once; streams loop over them.
  const voices = [1, 2, 3, 4].map((seed) => opusPackets(speechLike(20, { seed })));
  const tone = opusPackets(toneAt(440, 20, -12));
  let sockets: Socket[] = [];
  let timer: NodeJS.Timeout | undefined;
  let sent = 0;
  const send = (m: ToRecorder): void => void process.send?.(m);
  process.on('message', async (m: ToSender) => {
    if (m.type === 'open') {
      sockets = await Promise.all(
        Array.from({ length: m.streams }, () => new Promise<Socket>((resolve) => {
          const s = createSocket('udp4');
          s.bind(0, HOST, () => resolve(s));
        })),
      );
      send({ type: 'ports', ports: sockets.map((s) => s.address().port) });
    } else if (m.type === 'start') {
      const n = sockets.length;
      const t0 = performance.now();
      const streams = sockets.map((socket, i) => ({
        socket,
        port: m.targets[i] as number,
        packets: i % 2 === 0 ? (voices[(i / 2) % voices.length] as Buffer[]) : tone,
        ssrc: (0x10000000 + i * 7919) >>> 0,
        seq: (i * 1000) & 0xffff,
        k: 0,
        due: t0 + (i * PERIOD_MS) / n,
      }));
      // One tick per millisecond sends whatever is due: each stream keeps its own 20 ms clock.
      const tick = (): void => {
        const now = performance.now();
        for (const s of streams) {
          while (s.due <= now) {
            const payload = s.packets[s.k % s.packets.length] as Buffer;
            const dgram = buildRtp({ payloadType: PT, sequenceNumber: s.seq + s.k, timestamp: s.k * 960, ssrc: s.ssrc }, payload);
            s.socket.send(dgram, s.port, HOST);
            s.k++;
            sent++;
            s.due += PERIOD_MS;
          }
        }
      };
      timer = setInterval(tick, 1);
    } else {
      if (timer) clearInterval(timer);
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      send({ type: 'stopped', sent });
      process.disconnect();
    }
  });
}

// ---------------------------------------------------------------- recorder side (this process, measured)

/** utime + stime of this process's own threads (children not counted), in µs. */
function stat(): number {
  return (processCpuSeconds(process.pid) ?? Number.NaN) * 1e6;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

interface RunResult {
  streams: number;
  seconds: number;
  packets: number;
  sent: number;
  lost: number;
  late: number;
  us_per_packet: number;
  core_pct_per_stream: number;
  stat_core_pct_per_stream: number;
  talk_pct_speech: number;
  talk_pct_tone: number;
  chunks: number;
}

function waitFor<T extends ToRecorder['type']>(child: ChildProcess, type: T): Promise<Extract<ToRecorder, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: ToRecorder): void => {
      if (m.type !== type) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m as Extract<ToRecorder, { type: T }>);
    };
    const onExit = (code: number | null): void => reject(new Error(`sender exited (${code}) before '${type}'`));
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

function offer(port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${HOST}`, 's=rtpengine', `c=IN IP4 ${HOST}`, 't=0 0', `m=audio ${port} RTP/AVP ${PT}`, `a=rtpmap:${PT} opus/48000/2`, 'a=sendonly', ''].join('\r\n');
}

const pacers = new Map<number, PacedReads>();
function pacerFor(ms: number): PacedReads {
  let p = pacers.get(ms);
  if (!p) pacers.set(ms, (p = new PacedReads(ms)));
  return p;
}

/**
 * `--floor`: bare sockets, bound and connected as a recorder's are, whose listener only counts. What Node and
 * the kernel charge for one datagram, before the recorder does anything with it.
 */
async function bareSocket(port: number, readMs: number): Promise<Recorder> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
  socket.connect(port, HOST);
  let received = 0;
  const count = (): void => void received++;
  if (readMs > 0) pacerFor(readMs).listen(socket, count);
  else socket.on('message', count);
  const summary = { received: 0, lost: 0, late: 0, talkMs: 0, durationMs: 0 };
  return {
    port: socket.address().port,
    summary: () => ({ ...summary, received }),
    stop: () => new Promise((resolve) => socket.close(() => resolve({ ...summary, received }))),
  } as unknown as Recorder;
}

async function run(streams: number, seconds: number, warmup: number, vad: boolean | 'floor', readMs: number, spool: Spool): Promise<RunResult> {
  // The sender must not inherit a profiler flag: only this process is measured.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--cpu-prof') && !a.startsWith('--prof'));
  const child = fork(fileURLToPath(import.meta.url), ['--sender'], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const log = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }));
  let chunks = 0;
  try {
    child.send({ type: 'open', streams } satisfies ToSender);
    const { ports } = await waitFor(child, 'ports');
    const recorders: Recorder[] = await Promise.all(
      ports.map(async (port, i) => {
        if (vad === 'floor') return bareSocket(port, readMs);
        const id = `rec_live${streams}x${i}`;
        const sealer = new ChunkSealer(id, newRecordingSecrets());
        const hashes: string[] = [];
        const r = await createRecorder({
          host: HOST,
          chunkSeconds: 5,
          vad,
          readIntervalMs: readMs,
          log,
          onChunk: async ({ bytes, last }) => {
            const sealed = sealer.seal(bytes, last);
            hashes[sealed.index] = createHash('sha256').update(sealed.bytes).digest('hex');
            await spool.enqueue(objectKeys.chunk(id, sealed.index), sealed.bytes);
            chunks++;
          },
        });
        r.answerSdp(offer(port));
        return r;
      }),
    );
    child.send({ type: 'start', targets: recorders.map((r) => r.port) } satisfies ToSender);
    await new Promise((r) => setTimeout(r, warmup * 1000));
    const received = (): number => recorders.reduce((sum, r) => sum + r.summary().received, 0);
    const p0 = received();
    const c0 = cpuUs();
    const s0 = stat();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const c1 = cpuUs();
    const s1 = stat();
    const wallS = (performance.now() - t0) / 1000;
    const packets = received() - p0;
    child.send({ type: 'stop' } satisfies ToSender);
    const { sent } = await waitFor(child, 'stopped');
    const summaries = await Promise.all(recorders.map((r) => r.stop()));
    const talk = (odd: number): number => {
      const picked = summaries.filter((_, i) => i % 2 === odd);
      const t = picked.reduce((a, s) => a + s.talkMs, 0);
      const d = picked.reduce((a, s) => a + s.durationMs, 0);
      return d > 0 ? Number(((100 * t) / d).toFixed(1)) : 0;
    };
    const cpu = c1 - c0;
    return {
      streams,
      seconds: Number(wallS.toFixed(2)),
      packets,
      sent,
      lost: summaries.reduce((a, s) => a + s.lost, 0),
      late: summaries.reduce((a, s) => a + s.late, 0),
      us_per_packet: Number((cpu / packets).toFixed(2)),
      core_pct_per_stream: Number(((100 * cpu) / 1e6 / wallS / streams).toFixed(3)),
      stat_core_pct_per_stream: Number(((100 * (s1 - s0)) / 1e6 / wallS / streams).toFixed(3)),
      talk_pct_speech: talk(0),
      talk_pct_tone: talk(1),
      chunks,
    };
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      streams: { type: 'string', default: '20,50,100' },
      seconds: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      vad: { type: 'string', default: 'on' },
      floor: { type: 'boolean', default: false },
      'read-ms': { type: 'string', default: String(READ_INTERVAL_MS) },
    },
  });
  const counts = values.streams.split(',').map(Number);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const vad = values.floor ? 'floor' : values.vad !== 'off';
  const readMs = Number(values['read-ms']);
  const dir = mkdtempSync(join(tmpdir(), 'monologue-bench-live-'));
  const spool = await openSpool({ dir: join(dir, 'spool'), store: createFsStore(join(dir, 'store')), log: createLogger('warn') });
  // Idle floor: what this process spends with no stream (timers, GC), to read the figures against.
  const i0 = cpuUs();
  await new Promise((r) => setTimeout(r, 2000));
  const idlePct = (100 * (cpuUs() - i0)) / 1e6 / 2;
  const results: RunResult[] = [];
  try {
    for (const n of counts) {
      const r = await run(n, seconds, warmup, vad, readMs, spool);
      results.push(r);
      console.log(
        `${String(n).padStart(4)} streams: ${r.us_per_packet.toFixed(1)} µs/packet, ${r.core_pct_per_stream.toFixed(3)}% of a core per stream ` +
          `(/proc stat ${r.stat_core_pct_per_stream.toFixed(3)}%), ${r.packets} packets in ${r.seconds} s, lost ${r.lost}, late ${r.late}, ` +
          `talk ${r.talk_pct_speech}% speech / ${r.talk_pct_tone}% tone`,
      );
    }
    await spool.drain(30_000);
  } finally {
    await spool.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ bench: 'recorder-live', vad, read_ms: readMs, idle_core_pct: Number(idlePct.toFixed(3)), node: process.version, runs: results }));
}

if (process.argv.includes('--sender')) await sender();
else await main();
