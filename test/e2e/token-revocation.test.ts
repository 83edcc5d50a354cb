import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { startTestService, type TestService } from '../helpers/service.js';
import { startSipp, freePort } from '../helpers/sipp.js';
import { signalClient, isError, webrtcOffer, type SignalClient } from '../helpers/signal-client.js';
import { startSilentTrunk } from '../helpers/silent-trunk.js';
import { until } from '../helpers/until.js';
import type { ServerMessage } from '../../src/signaling/protocol.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';

/**
 * Sessions die with their tokens: a token revoked by the operator CLI (another process, same database)
 * or in process, or reaching its expiry, closes its live socket (4001), and an inbound call for the user
 * rings only a socket whose token still holds.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Rig {
  service: TestService;
  sink: Socket;
  /** A user with two sessions: `older` for a libwebrtc dialer, `newer` for a raw socket (the one inbound calls ring first). */
  user(): Promise<{ userId: string; phone: string; older: Session; newer: Session }>;
  close(): Promise<void>;
}
interface Session {
  sessionId: string;
  token: string;
}

async function startRig(tokenCheckIntervalMs?: number): Promise<Rig> {
  const service = await startTestService({
    trunkPort: await freePort(),
    overrides: tokenCheckIntervalMs === undefined ? {} : { accounts: { tokenCheckIntervalMs } },
  });
  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  let n = 0;
  return {
    service,
    sink,
    async user() {
      const phone = `+1555000${String(1111 + n++)}`;
      const user = await service.users.create({ phone, enrolled: false });
      const issue = async () => {
        const t = await service.tokens.issue(user.id, 3_600_000);
        return { sessionId: t.sessionId, token: t.token };
      };
      return { userId: user.id, phone, older: await issue(), newer: await issue() };
    },
    async close() {
      sink.close();
      await service.stop();
    },
  };
}

/** `monologue token revoke` as an operator runs it: another process on the same data folder and database. */
function cliRevoke(service: TestService, sessionId: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'token', 'revoke', '--session', sessionId], {
    cwd: ROOT,
    env: { ...process.env, MONOLOGUE_DATA_DIR: service.config.dataDir, DATABASE_URL: service.config.database.url },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

async function revokedAt(service: TestService, sessionId: string): Promise<number> {
  const row = await service.db.db.selectFrom('sessions').select('revoked_at').where('id', '=', sessionId).executeTakeFirstOrThrow();
  assert.notEqual(row.revoked_at, null);
  return Number(row.revoked_at);
}

/** sipp calls the user's number; the libwebrtc dialer must be the one that rings, and answers it. */
async function inboundRings(rig: Rig, to: string, dialer: WrtcDialer): Promise<void> {
  const sipp = startSipp({
    scenario: 'uac-call',
    port: await freePort(),
    remote: `127.0.0.1:${rig.service.sipPort}`,
    service: to,
    pauseMs: 1000,
    keys: { rtp_port: String(rig.sink.address().port), caller: '+15550002222' },
    timeoutMs: 30_000,
  });
  try {
    const incoming = await dialer.waitIncoming(10_000);
    assert.equal(incoming.from, '+15550002222');
    const call = await dialer.accept(incoming.callId);
    assert.equal(await call.ended, 'remote-hangup');
    const result = await sipp.done;
    assert.equal(result.code, 0, `sipp: ${result.errors}`);
  } finally {
    sipp.kill();
  }
}

const closedWith4001 = async (c: SignalClient, reason: string) => {
  const closed = await c.closed;
  assert.equal(closed.code, 4001);
  assert.equal(closed.reason, reason);
  return closed;
};

describe('default check interval', () => {
  let rig: Rig;
  before(async () => (rig = await startRig()));
  after(async () => rig?.close());

  test('a token revoked through the CLI closes its socket within 1 s (4001); inbound calls then ring the valid socket', async (t) => {
    const { phone, older, newer } = await rig.user();
    const valid = new WrtcDialer(`ws://127.0.0.1:${rig.service.httpPort}/v1/signal`, older.token);
    const revoked = await signalClient(rig.service.httpPort);
    try {
      await valid.connect();
      await revoked.auth(newer.token);
      const cli = await cliRevoke(rig.service, newer.sessionId);
      assert.equal(cli.status, 0, cli.stderr);
      assert.deepEqual(JSON.parse(cli.stdout), { revoked: true });
      const closed = await closedWith4001(revoked, 'token revoked');
      const latency = closed.at - (await revokedAt(rig.service, newer.sessionId));
      assert.ok(latency < 1000, `closed ${latency} ms after the revocation was committed`);
      t.diagnostic(`CLI revocation to close: ${latency} ms`);
      assert.ok(revoked.msgs.some(isError('TOKEN_REVOKED')));
      await inboundRings(rig, phone, valid);
      assert.ok(!revoked.msgs.some((m) => m.type === 'call.incoming'));
    } finally {
      valid.close();
      revoked.close();
    }
  });
});

describe('check interval of a minute (only the in-process path, the ring-time check and the expiry timer act)', () => {
  let rig: Rig;
  before(async () => (rig = await startRig(60_000)));
  after(async () => rig?.close());

  test('a token revoked in process closes its socket at once (4001) and ends its call; the other socket stays', async (t) => {
    const { userId, older, newer } = await rig.user();
    const trunk = await startSilentTrunk(rig.service.config.sip.trunk.port);
    const kept = await signalClient(rig.service.httpPort);
    const revoked = await signalClient(rig.service.httpPort);
    try {
      await kept.auth(older.token);
      await revoked.auth(newer.token);
      revoked.send({ type: 'call.start', ref: 'r', to: '+15550002222', sdp: await webrtcOffer() });
      const created = await revoked.next((m): m is Extract<ServerMessage, { type: 'call.created' }> => m.type === 'call.created');
      const start = Date.now();
      assert.equal(await rig.service.tokens.revoke(newer.sessionId), true);
      const closed = await closedWith4001(revoked, 'token revoked');
      assert.ok(closed.at - start < 1000, `closed ${closed.at - start} ms after revoke()`);
      t.diagnostic(`in-process revocation to close: ${closed.at - start} ms`);
      await until('the revoked socket\'s call is over', () => rig.service.switchboard.liveCalls === 0, 5000);
      await until('its record says why', async () => (await rig.service.records.get(userId, created.callId))?.endReason === 'dialer-disconnected', 5000);
      kept.send({ type: 'ping' });
      await kept.next((m) => m.type === 'pong');
      assert.equal(kept.ws.readyState, kept.ws.OPEN);
    } finally {
      kept.close();
      revoked.close();
      await trunk.close();
    }
  });

  test('an inbound call never rings a socket whose token another process revoked, even before the next check', async () => {
    const { phone, older, newer } = await rig.user();
    const valid = new WrtcDialer(`ws://127.0.0.1:${rig.service.httpPort}/v1/signal`, older.token);
    const revoked = await signalClient(rig.service.httpPort);
    try {
      await valid.connect();
      await revoked.auth(newer.token); // the newest socket: the one an inbound call would ring
      const cli = await cliRevoke(rig.service, newer.sessionId);
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(revoked.ws.readyState, revoked.ws.OPEN, 'the minute-long check has not run yet');
      await inboundRings(rig, phone, valid);
      await closedWith4001(revoked, 'token revoked');
      assert.ok(!revoked.msgs.some((m) => m.type === 'call.incoming'), 'the revoked socket never heard of the call');
    } finally {
      valid.close();
      revoked.close();
    }
  });

  test('a token reaching its expiry closes its socket at that instant (4001)', async (t) => {
    const { userId } = await rig.user();
    const issued = await rig.service.tokens.issue(userId, 1500);
    const c = await signalClient(rig.service.httpPort);
    try {
      await c.auth(issued.token);
      const closed = await closedWith4001(c, 'token expired');
      const late = closed.at - issued.expiresAt;
      assert.ok(late >= 0 && late < 500, `closed ${late} ms after the expiry`);
      t.diagnostic(`expiry to close: ${late} ms`);
      assert.ok(c.msgs.some(isError('TOKEN_EXPIRED')));
    } finally {
      c.close();
    }
  });
});
