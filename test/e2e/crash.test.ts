import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, freeUdpPort, freeUdpPortRange } from '../helpers/ports.js';
import { startSipp, freePort } from '../helpers/sipp.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { filesBelow } from '../helpers/recording.js';
import { opusPackets } from '../helpers/ogg.js';
import { openDatabase } from '../../src/db/database.js';

/**
 * kill -9 mid-call: after a restart the recording is `incomplete`, decrypts up to its last stored chunk,
 * and the spool holds no orphan files.
 */
test('a service killed mid-call leaves an incomplete recording that still decrypts', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'monologue-crash-'));
  const sippPort = await freePort();
  const httpPort = await freeTcpPort();
  const range = await freeUdpPortRange(40);
  const configFile = join(dataDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      log: { level: 'warn' },
      http: { port: httpPort },
      sip: { port: await freeUdpPort(), trunk: { port: sippPort } },
      media: { rtpengine: { ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max } },
      recording: { chunkSeconds: 1 },
      calls: { drainMs: 1000 },
    }),
  );
  const env = { ...process.env, MONOLOGUE_CONFIG: configFile, DATABASE_URL: '' };
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, string>;
  };
  const user = cli('user', 'create', '--phone', '+15550001111', '--enrolled', '--consent', 'v1');
  const { token } = cli('token', 'issue', '--user', user.id!);

  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const sipp = startSipp({ scenario: 'uas-answer', port: sippPort, keys: { rtp_port: String(sink.address().port) }, timeoutMs: 60_000 });
  let child: ChildProcess | undefined;
  const dialer = new WrtcDialer(`ws://127.0.0.1:${httpPort}/v1/signal`, token!);
  try {
    child = await serve(env, httpPort);
    await sipp.ready;
    await dialer.connect();
    const call = await dialer.call('+15550002222');
    await dialer.waitConnected(call.callId);
    await new Promise((r) => setTimeout(r, 4500));
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    dialer.close();
    sipp.kill();

    child = await serve(env, httpPort); // fails if the old rtpengine outlived its parent (port in use)
    const db = await openDatabase(join(dataDir, 'monologue.db'));
    const row = await db.db.selectFrom('recordings').selectAll().where('call_id', '=', call.callId).executeTakeFirstOrThrow();
    await db.close();
    assert.equal(row.state, 'incomplete');
    assert.match(row.failure ?? '', /interrupted/);

    const out = join(dataDir, 'out.opus');
    const decrypted = cli('recording', 'decrypt', row.id, '--out', out);
    const packets = opusPackets(await import('node:fs').then((fs) => fs.readFileSync(out)));
    assert.ok(packets.length >= 100, `${packets.length} Opus packets (≥ 2 s) survive the crash`);
    assert.ok(Number(decrypted.bytes) > 0);
    const verify = cli('recording', 'verify', row.id);
    assert.equal(verify.complete, false);
    assert.ok(Number(verify.chunks) >= 2);

    const spooled = filesBelow(join(dataDir, 'spool')).map((f) => f.path);
    assert.deepEqual(spooled, [], 'no orphan spool files after the restart drained it');
  } finally {
    dialer.close();
    sipp.kill();
    sink.close();
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
});

async function serve(env: NodeJS.ProcessEnv, httpPort: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`service exited: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok, () => false);
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`service not ready: ${stderr}`);
}
