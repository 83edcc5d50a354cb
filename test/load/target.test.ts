import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateAdminKey, hashAdminKey } from '../../src/api/admin-key.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort } from '../helpers/sipp.js';
import { freeTcpPort } from '../helpers/ports.js';
import { runLoad } from '../helpers/load-cli.js';
import { audioPassed, cleanRun } from './scenarios-check.js';

/**
 * Target mode against a deployment the script did not start (here a service in this test process): the
 * trunk emulator binds where that service's trunk points, users come from its admin API or a tokens file.
 */
let service: TestService;
let trunkPort: number;
let adminUrl: string;
const adminKey = generateAdminKey();
const dir = mkdtempSync(join(tmpdir(), 'load-target-'));

before(async () => {
  trunkPort = await freePort();
  const adminPort = await freeTcpPort();
  adminUrl = `http://127.0.0.1:${adminPort}/`;
  service = await startTestService({
    trunkPort,
    overrides: { admin: { host: '127.0.0.1', port: adminPort, keyHash: hashAdminKey(adminKey) }, calls: { maxCallsPerUser: 10 }, signaling: { maxMessagesPerSecond: 1000 } },
  });
});

after(async () => {
  await service?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The metrics endpoint where this build has one (metrics contract: Service.metricsUrl). */
const metricsArgs = (): string[] => {
  const url = (service as { metricsUrl?: string }).metricsUrl;
  return url ? ['--metrics', url] : [];
};

test('target calls with --admin: users created through the admin API, an outbound and an inbound call, audio both ways', async () => {
  const r = cleanRun(
    await runLoad([
      'calls', '--calls', '2', '--hold', '2', '--mix', '1:1', '--rate', '10',
      '--target', service.url, '--admin', adminUrl, '--admin-key', adminKey,
      '--trunk', `127.0.0.1:${trunkPort}`, '--sip', `127.0.0.1:${service.sipPort}`, ...metricsArgs(),
    ]),
    2,
  );
  assert.equal(r.mode, 'target');
  assert.equal(r.calls.recorded, 2);
  audioPassed(r, 2);
  // CPU of a remote service comes from its /metrics; the load client's own is always measured.
  assert.ok(r.cpu.processes.client!.cpuMs! > 0);
  if (metricsArgs().length === 0) {
    assert.equal(r.cpu.processes.service!.cpuMs, null);
    assert.ok(r.notes.some((n) => /--metrics/.test(n)));
  } else {
    assert.ok(r.cpu.processes.service!.cpuMs! > 0);
  }
});

test('target cps with --tokens FILE', async () => {
  const lines: string[] = [];
  for (let i = 0; i < 2; i++) lines.push((await service.addUser(`+1555000${3000 + i}`)).token);
  const file = join(dir, 'tokens.txt');
  writeFileSync(file, `# one token per line\n${lines.join('\n')}\n`);
  const r = cleanRun(await runLoad(['cps', '--max-calls', '10', '--sockets', '2', '--target', service.url, '--tokens', file, '--trunk', `127.0.0.1:${trunkPort}`]), 10);
  assert.equal(r.mode, 'target');
});

test('target with too few tokens says how many it needs', async () => {
  const file = join(dir, 'one-token.txt');
  writeFileSync(file, 'sometoken\n');
  const run = await runLoad(['cps', '--sockets', '3', '--max-calls', '3', '--target', service.url, '--tokens', file, '--trunk', `127.0.0.1:${trunkPort}`]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /has 1 tokens; this run needs 3/);
});
