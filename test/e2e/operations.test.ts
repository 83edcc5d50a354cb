import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { startTestService } from '../helpers/service.js';
import { startSipp, freePort } from '../helpers/sipp.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { until } from '../helpers/until.js';

test('healthz, readyz, and a drain that refuses new calls and ends live ones with "shutdown"', async () => {
  const sippPort = await freePort();
  const service = await startTestService({ trunkPort: sippPort, overrides: { calls: { drainMs: 1500 } } });
  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const sipp = startSipp({ scenario: 'uas-answer', port: sippPort, keys: { rtp_port: String(sink.address().port) }, timeoutMs: 30_000 });
  const base = `http://127.0.0.1:${service.httpPort}`;
  const { token } = await service.addUser('+15550001111');
  const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token);
  try {
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { ok: true });
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ok: true, checks: { database: true, rtpengine: true, accepting: true } });
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal((await fetch(`${base}/nope`)).status, 404);

    await sipp.ready;
    await dialer.connect();
    const call = await dialer.call('+15550002222');
    await dialer.waitConnected(call.callId);

    const closing = service.close();
    let draining = await fetch(`${base}/readyz`);
    await until('readyz says 503 while draining', async () => (draining = await fetch(`${base}/readyz`)).status === 503, 5000);
    assert.equal(((await draining.json()) as { checks: { accepting: boolean } }).checks.accepting, false);
    await assert.rejects(dialer.call('+15550003333'), /SHUTTING_DOWN/);
    assert.equal(service.switchboard.liveCalls, 1, 'the live call goes on while draining');

    assert.equal(await dialer.waitEnded(call.callId, 10_000), 'shutdown');
    await closing;
    const result = await sipp.done;
    assert.equal(result.code, 0, 'the trunk got a BYE');
  } finally {
    dialer.close();
    sipp.kill();
    sink.close();
    await service.stop();
  }
});

test('operator CLI creates users and tokens as JSON and explains bad input', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'monologue-cli-'));
  const env = { ...process.env, MONOLOGUE_DATA_DIR: dataDir, DATABASE_URL: '' };
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, encoding: 'utf8' });

  const created = cli('user', 'create', '--phone', '+15550001111', '--enrolled');
  assert.equal(created.status, 0, created.stderr);
  const user = JSON.parse(created.stdout) as { id: string; enrolled: boolean };
  assert.equal(user.enrolled, true);
  assert.ok(!created.stdout.includes('5550001111'), 'the number is not echoed');

  const issued = cli('token', 'issue', '--user', user.id);
  assert.equal(issued.status, 0, issued.stderr);
  const token = JSON.parse(issued.stdout) as { token: string; sessionId: string };
  assert.match(token.token, /^mlt_/);
  assert.equal(JSON.parse(cli('token', 'revoke', '--session', token.sessionId).stdout).revoked, true);

  const dup = cli('user', 'create', '--phone', '+15550001111');
  assert.equal(dup.status, 1);
  assert.equal(JSON.parse(dup.stderr).code, 'PHONE_TAKEN');
  const usage = cli('token', 'issue');
  assert.equal(usage.status, 2);
  assert.match(JSON.parse(usage.stderr).message, /missing --user/);
  const badConfig = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'user', 'create', '--phone', '+1555'], {
    env: { ...env, MONOLOGUE_SIP__PORT: '99999' },
    encoding: 'utf8',
  });
  assert.equal(badConfig.status, 1);
  assert.match(JSON.parse(badConfig.stderr).message, /sip\.port.*99999/);
});
