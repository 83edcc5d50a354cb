/**
 * An off-path attacker for media tests: a separate Node process that binds one UDP socket on `address`
 * (another loopback address such as 127.0.0.66, or 127.0.0.1 on its own port) and, for `durationMs`, sends a
 * small RTP-looking packet to every port of `portMin..portMax` on `target` each `roundMs` — the RTP bleed
 * probe. It counts every datagram it gets back, by source, for `lingerMs` after it stops.
 *
 * Its own process, so that the spray loop does not share an event loop with the service under test.
 */
import { spawn } from 'node:child_process';

export interface SprayOptions {
  address: string;
  target: string;
  portMin: number;
  portMax: number;
  durationMs: number;
  /** Default 20 ms: every port gets a packet as often as a real RTP stream sends one. */
  roundMs?: number;
  /** Default 1000 ms. */
  lingerMs?: number;
}

export interface SprayResult {
  sent: number;
  received: number;
  /** Datagrams received, by `address:port` of the sender. */
  from: Record<string, number>;
}

export interface Sprayer {
  /** Resolves once the socket is bound and the spray started. */
  readonly started: Promise<void>;
  readonly done: Promise<SprayResult>;
  kill(): void;
}

// Plain JS for `node -e`: no TypeScript loader in the child.
const CHILD = `
const { createSocket } = require('node:dgram');
const o = JSON.parse(process.env.SPRAY);
const s = createSocket('udp4');
let sent = 0, received = 0, seq = 0;
const from = {};
s.on('message', (m, r) => { received++; const k = r.address + ':' + r.port; from[k] = (from[k] || 0) + 1; });
s.on('error', () => {});
s.bind(0, o.address, () => {
  process.stdout.write('started\\n');
  const end = Date.now() + o.durationMs;
  const ssrc = (Math.random() * 0xffffffff) >>> 0;
  const round = () => {
    if (Date.now() >= end) {
      setTimeout(() => { process.stdout.write(JSON.stringify({ sent, received, from }) + '\\n'); process.exit(0); }, o.lingerMs);
      return;
    }
    for (let p = o.portMin; p <= o.portMax; p++) {
      const b = Buffer.alloc(16);
      b[0] = 0x80; b[1] = [0, 8, 111][seq % 3];
      b.writeUInt16BE(seq & 0xffff, 2); b.writeUInt32BE((seq * 160) >>> 0, 4); b.writeUInt32BE(ssrc, 8);
      s.send(b, p, o.target);
      sent++;
    }
    seq++;
    setTimeout(round, o.roundMs);
  };
  round();
});
`;

export function startSprayer(opts: SprayOptions): Sprayer {
  const env = { ...process.env, SPRAY: JSON.stringify({ roundMs: 20, lingerMs: 1000, ...opts }) };
  const child = spawn(process.execPath, ['-e', CHILD], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    if (out.includes('started\n')) markStarted();
  });
  const done = new Promise<SprayResult>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as SprayResult);
      else reject(new Error(`sprayer ended ${code ?? signal} without a result: ${out}`));
    });
  });
  done.catch(() => markStarted()); // a sprayer that dies before starting must not hang `started`
  return { started, done, kill: () => child.kill('SIGKILL') };
}
