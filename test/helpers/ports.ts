/**
 * Free ports on 127.0.0.1 for tests: bind port 0, read the port the kernel chose, release it.
 * (A port is only "probably free" afterwards: use it right away.)
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A UDP port free on `host` (default 127.0.0.1) at the time of the call. */
export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A TCP port free on `host` (default 127.0.0.1) at the time of the call. */
export function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A port free for both UDP and TCP on `host`, for a SIP listener (it binds both). Chosen in 10000..19999:
 * below the kernel's ephemeral range (where outgoing TCP connections of other tests take their local
 * ports, so a port free for UDP may already be a TCP connection's) and below the rtpengine blocks of
 * `freeUdpPortRange`.
 */
export async function freeSipPort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 10000);
    if ((await canBindUdp(port, host)) && (await canBindTcp(port, host))) return port;
  }
  throw new Error('no port free for both UDP and TCP in 10000..19999');
}

function canBindUdp(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

function canBindTcp(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * A block of `count` consecutive UDP ports (even start) that were all free when probed, for an rtpengine
 * `--port-min/--port-max` range. Probes random blocks in 20000..59999.
 */
export async function freeUdpPortRange(count: number, host = '127.0.0.1'): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 20000 + 2 * Math.floor(Math.random() * ((40000 - count) / 2));
    if (await allUdpFree(min, count, host)) return { min, max: min + count - 1 };
  }
  throw new Error(`no free block of ${count} UDP ports`);
}

async function allUdpFree(min: number, count: number, host: string): Promise<boolean> {
  const sockets = [];
  try {
    for (let p = min; p < min + count; p++) {
      const s = createSocket('udp4');
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(p, host, () => resolve());
      });
    }
    return true;
  } catch {
    return false;
  } finally {
    for (const s of sockets) {
      try {
        s.close();
      } catch {
        /* not bound */
      }
    }
  }
}
