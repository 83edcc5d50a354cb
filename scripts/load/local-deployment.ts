/**
 * Local mode: the service as a separate process (`node dist/src/cli.js serve` with a generated config in a
 * temporary data folder), on free loopback ports, with its supervised rtpengine, its admin API (a fresh key)
 * for users and tokens, and its metrics listener on a chosen port when this build has one. Everything is
 * removed again by close(), and killed outright if the load client exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { generateAdminKey, hashAdminKey } from '../../src/api/admin-key.js';
import { MonologueError } from '../../src/errors.js';
import { freeSipPort, freeTcpPort, freeUdpPort, freeUdpPortRange } from '../../test/helpers/ports.js';
import { childNamed, processCpuMs, rssBytes } from './cpu.js';
import { adminAccounts, type Deployment } from './deployment.js';

export interface LocalOptions {
  /** Live calls the media port range must hold (5 ports per recorded call). */
  concurrency: number;
  logLevel: string;
  /** Write a V8 CPU profile of the service (node --cpu-prof) into a folder of its own. */
  profile: boolean;
  /** Leave the data folder (config, service.log) in place for a post-mortem. */
  keep: boolean;
}

const HOST = '127.0.0.1';
const STARTUP_MS = 30_000;
const STOP_MS = 10_000;

export async function startLocalDeployment(o: LocalOptions): Promise<Deployment> {
  const dataDir = mkdtempSync(join(tmpdir(), 'monologue-load-'));
  const profileDir = o.profile ? mkdtempSync(join(tmpdir(), 'monologue-profile-')) : undefined;
  const adminKey = generateAdminKey();
  const [httpPort, sipPort, trunkPort, ngPort, adminPort, metricsPort] = [await freeTcpPort(), await freeSipPort(), await freeSipPort(), await freeUdpPort(), await freeTcpPort(), await freeTcpPort()];
  const range = await freeUdpPortRange(Math.max(200, o.concurrency * 6 + 100));
  // The metrics listener exists only in builds that have it (metrics contract); an unknown key would be refused.
  const hasMetrics = 'metrics' in ConfigSchema.properties;
  const config = {
    dataDir,
    log: { level: o.logLevel },
    http: { host: HOST, port: httpPort },
    sip: { listenAddress: HOST, port: sipPort, trunk: { host: HOST, port: trunkPort, transport: 'udp', allowedSources: [HOST] } },
    media: { rtpengine: { spawn: true, ngAddress: HOST, ngPort, interface: HOST, recorderInterface: HOST, portMin: range.min, portMax: range.max } },
    // A load run is many calls from few users at a rate no person dials: lift the per-user and per-address
    // policing so that it measures the service, not its abuse limits.
    calls: { drainMs: 2000, maxCallsPerUser: 1000, dailyMaxCallAttempts: 100_000_000, dailyMaxMinutes: 100_000_000 },
    signaling: { maxMessagesPerSecond: 100_000, maxSocketsPerUser: 1000, maxSocketsPerIp: 100_000, maxUnauthenticatedSocketsPerIp: 10_000 },
    admin: { host: HOST, port: adminPort, keyHash: hashAdminKey(adminKey), rateLimitPerMinute: 1_000_000 },
    ...(hasMetrics && { metrics: { enabled: true, host: HOST, port: metricsPort } }),
  };
  const configFile = join(dataDir, 'load-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  // The operator's MONOLOGUE_* variables would override the generated file: leave them out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MONOLOGUE_') && k !== 'DATABASE_URL'));
  // Node refuses --cpu-prof in NODE_OPTIONS: it goes on the command line. The profile is written at exit.
  const profiling = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...profiling, join(packageRoot(), 'dist', 'src', 'cli.js'), 'serve', '--config', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logFile = join(dataDir, 'service.log');
  const log = createWriteStream(logFile);
  child.stderr!.pipe(log, { end: false });
  let stderrTail = '';
  child.stderr!.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));

  // If this process ends without close() (a crash, a second Ctrl-C), take the service and its rtpengine along.
  let rtpenginePid: number | undefined;
  const killAll = (): void => {
    child.kill('SIGKILL');
    if (rtpenginePid) tryKill(rtpenginePid);
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', killAll);

  try {
    await waitReady(child, log, () => stderrTail);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  rtpenginePid = childNamed(child.pid!, 'rtpengine');
  const servicePid = child.pid!;
  const publicUrl = `http://${HOST}:${httpPort}/`;
  const notes: string[] = o.keep ? [`data folder kept: ${dataDir}`] : [];
  if (!hasMetrics) notes.push('this build has no metrics listener (config key "metrics"): recorder packets, event-loop delay and open handles are null');
  if (rtpenginePid === undefined) notes.push('no rtpengine child of the service was found: its CPU is null');

  return {
    mode: 'local',
    signalUrl: `ws://${HOST}:${httpPort}/v1/signal`,
    sip: { host: HOST, port: sipPort },
    trunk: { host: HOST, port: trunkPort },
    metricsUrl: hasMetrics ? `http://${HOST}:${metricsPort}/metrics` : undefined,
    cpu: new Map([
      ['service', () => processCpuMs(servicePid)],
      ['rtpengine', () => (rtpenginePid === undefined ? undefined : processCpuMs(rtpenginePid))],
    ]),
    serviceRss: async () => rssBytes(servicePid),
    accounts: (count, record) => adminAccounts(`http://${HOST}:${adminPort}/`, adminKey, publicUrl, count, record),
    profileDir,
    notes,
    async close() {
      process.removeListener('exit', killAll);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
        await exited;
        clearTimeout(timer);
      }
      if (rtpenginePid) tryKill(rtpenginePid);
      await new Promise<void>((resolve) => log.end(() => resolve()));
      if (o.keep) process.stderr.write(`service data folder kept (config, service.log): ${dataDir}\n`);
      else rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The service prints `Monologue dialer: URL` on stdout once it listens; its other stdout lines are its log. */
function waitReady(child: ChildProcess, log: NodeJS.WritableStream, stderr: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => reject(new MonologueError('SERVICE_START', `the service did not come up within ${STARTUP_MS / 1000} s: ${stderr()}`)), STARTUP_MS);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      log.write(line + '\n');
      if (!ready && line.startsWith('Monologue dialer:')) {
        ready = true;
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!ready) reject(new MonologueError('SERVICE_START', `the service exited (${code ?? signal}) while starting: ${stderr().trim() || '(no output)'}`));
    });
  });
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
