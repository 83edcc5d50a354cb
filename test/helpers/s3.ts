/**
 * A real S3-compatible server for tests: s3rver 3.7.1 on 127.0.0.1, a free port, a temp folder and one
 * bucket. Credentials: S3RVER / S3RVER.
 *
 * s3rver runs in a child process started with `--openssl-legacy-provider`: it makes ListObjectsV2
 * continuation tokens with DES, which Node ≥ 17 (OpenSSL 3) refuses without the legacy provider, so every
 * truncated listing would be an HTTP 500. A child also makes `stop()` a real outage (process killed,
 * connections reset); `start()` brings it back on the SAME port with the same data folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freeTcpPort } from './ports.js';

export const S3_TEST_ACCESS_KEY = 'S3RVER';
export const S3_TEST_SECRET_KEY = 'S3RVER';
export const S3_TEST_REGION = 'us-east-1';

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  port: number;
  dir: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Take the server down (process killed, port refuses connections), keeping its data. */
  stop(): Promise<void>;
  /** Bring it back on the same port with the same data. */
  start(): Promise<void>;
  /** Stop and delete the data folder. */
  close(): Promise<void>;
}

const S3RVER_MAIN = createRequire(import.meta.url).resolve('s3rver');

const CHILD = `
const S3rver = require(process.env.S3RVER_MAIN);
const s = new S3rver({ address: '127.0.0.1', port: Number(process.env.S3RVER_PORT), silent: true,
  directory: process.env.S3RVER_DIR, configureBuckets: [{ name: process.env.S3RVER_BUCKET }] });
s.run().then((a) => process.stdout.write('READY ' + a.port + '\\n'), (e) => { console.error(String(e && e.stack || e)); process.exit(2); });
process.on('disconnect', () => process.exit(0));
`;

function runChild(dir: string, port: number, bucket: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD], {
      env: { ...process.env, NODE_OPTIONS: '', S3RVER_MAIN, S3RVER_PORT: String(port), S3RVER_DIR: dir, S3RVER_BUCKET: bucket },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'], // ipc: the child exits if the test process dies
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3rver did not start within 10 s: ${err}`));
    }, 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}) before it was ready: ${err}`));
    });
  });
}

export async function startS3Server(bucket = 'monologue-test'): Promise<S3TestServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'monologue-s3-'));
  let child: ChildProcess | undefined;
  let port = await freeTcpPort();

  async function start(): Promise<void> {
    if (child) return;
    // Rebinding the same port right after stop() can briefly fail; retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await runChild(dir, port, bucket);
        child = r.child;
        port = r.port;
        return;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async function stop(): Promise<void> {
    const c = child;
    if (!c) return;
    child = undefined;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
  }

  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    port,
    dir,
    accessKeyId: S3_TEST_ACCESS_KEY,
    secretAccessKey: S3_TEST_SECRET_KEY,
    region: S3_TEST_REGION,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
