import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config, type DeepPartial } from '../../src/config/load.js';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/log.js';
import { startService, type Service } from '../../src/service.js';
import { freeSipPort, freeUdpPort, freeUdpPortRange } from './ports.js';
import { freshPostgres, type TestDatabase } from './db.js';

export interface TestService extends Service {
  sipPort: number;
  /** A user with a token, ready to dial. */
  addUser(phone: string, enrolled?: boolean): Promise<{ id: string; token: string }>;
  stop(): Promise<void>;
}

export interface TestServiceOptions {
  /** Where the trunk (sipp) listens. */
  trunkPort: number;
  trunkTransport?: 'udp' | 'tcp';
  database?: 'sqlite' | 'postgres';
  mediaPorts?: number;
  overrides?: DeepPartial<Config>;
  /** Where the service's log lines go (tests that read them); default stdout. */
  logDestination?: DestinationStream;
  /** The service's clock for the API (grant expiry). */
  now?: () => number;
}

/** The whole service in this process, on free loopback ports, with its own rtpengine and data folder. */
export async function startTestService(opts: TestServiceOptions): Promise<TestService> {
  const dataDir = mkdtempSync(join(tmpdir(), 'monologue-'));
  // SQLite: the service's own default file in its data folder.
  const db: TestDatabase | undefined = opts.database === 'postgres' ? await freshPostgres() : undefined;
  // SIP listens on UDP and TCP: the port must be free for both.
  const sipPort = await freeSipPort();
  const ngPort = await freeUdpPort();
  const range = await freeUdpPortRange(opts.mediaPorts ?? 200);
  const base: DeepPartial<Config> = {
    dataDir,
    log: { level: (process.env.TEST_LOG_LEVEL as Config['log']['level'] | undefined) ?? 'warn' },
    http: { host: '127.0.0.1', port: 0 },
    // Several services share the test process: each metrics listener on its own free port.
    metrics: { port: 0 },
    database: { url: db?.url ?? '' },
    sip: {
      listenAddress: '127.0.0.1',
      port: sipPort,
      inviteTimeoutMs: 8000,
      trunk: { host: '127.0.0.1', port: opts.trunkPort, transport: opts.trunkTransport ?? 'udp', username: 'monologue', password: 'secret', allowedSources: ['127.0.0.1'] },
    },
    media: { rtpengine: { spawn: true, ngAddress: '127.0.0.1', ngPort, interface: '127.0.0.1', portMin: range.min, portMax: range.max } },
    calls: { drainMs: 2000, ringTimeoutMs: 10000 },
  };
  const config = loadConfig({ env: {}, overrides: deepMerge(base, opts.overrides ?? {}) });
  const service = await startService(config, createLogger(config.log.level, opts.logDestination), opts.now);
  return Object.assign(service, {
    sipPort,
    async addUser(phone: string, enrolled = true) {
      const user = await service.users.create({ phone, enrolled });
      const t = await service.tokens.issue(user.id, 3_600_000);
      return { id: user.id, token: t.token };
    },
    async stop() {
      await service.close();
      await db?.drop().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

function deepMerge<T>(a: T, b: DeepPartial<T>): T {
  const out = { ...a } as Record<string, unknown>;
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) {
    const cur = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' ? deepMerge(cur, v) : v;
  }
  return out as T;
}
