import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort } from '../helpers/sipp.js';
import { signalClient, isError, webrtcOffer, type SignalClient } from '../helpers/signal-client.js';
import { startSilentTrunk, type SilentTrunk } from '../helpers/silent-trunk.js';
import type { ServerMessage } from '../../src/signaling/protocol.js';
import { until } from '../helpers/until.js';

/**
 * Limits that hold under concurrency: a burst of call.starts from one user over two sockets creates
 * at most calls.maxCallsPerUser calls, on SQLite and PostgreSQL (the database's await is where the old
 * check-then-register raced); and the socket caps per user, per address and unauthenticated per address.
 */
const MAX_CALLS = 2;
const BURST = 50;

let sdp: string;
before(async () => {
  sdp = await webrtcOffer();
});

/** A service whose trunk listens and never answers: created calls stay up until hung up. */
async function limitedService(database: 'sqlite' | 'postgres'): Promise<{ service: TestService; trunk: SilentTrunk }> {
  const trunkPort = await freePort();
  const trunk = await startSilentTrunk(trunkPort);
  const service = await startTestService({
    trunkPort,
    database,
    overrides: {
      calls: { maxCallsPerUser: MAX_CALLS },
      signaling: { maxMessagesPerSecond: 500, maxSocketsPerUser: 2, maxSocketsPerIp: 4, maxUnauthenticatedSocketsPerIp: 2 },
    },
  });
  return { service, trunk };
}

const createdOrRefused = (ref: string) => (m: ServerMessage) => (m.type === 'call.created' || m.type === 'error') && m.ref === ref;

/** Fire `n` call.starts over the sockets in turn without waiting; resolve with each start's answer. */
async function burst(sockets: SignalClient[], n: number, tag: string): Promise<ServerMessage[]> {
  const refs = Array.from({ length: n }, (_, i) => `${tag}${i}`);
  refs.forEach((ref, i) => sockets[i % sockets.length]!.send({ type: 'call.start', ref, to: '+15550002222', sdp }));
  return Promise.all(refs.map((ref, i) => sockets[i % sockets.length]!.next(createdOrRefused(ref), 20_000)));
}

async function hangUpAll(answers: ServerMessage[], sockets: SignalClient[]): Promise<void> {
  for (const m of answers) {
    if (m.type !== 'call.created') continue;
    const owner = sockets.find((s) => s.msgs.includes(m))!;
    owner.send({ type: 'call.hangup', callId: m.callId });
    await owner.next((x) => x.type === 'call.ended' && x.callId === m.callId);
  }
}

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`call limits on ${database}`, () => {
    let service: TestService;
    let trunk: SilentTrunk;
    before(async () => ({ service, trunk } = await limitedService(database)));
    after(async () => {
      await service?.stop();
      await trunk?.close();
    });

    test(`${BURST} concurrent call.starts over two sockets create at most ${MAX_CALLS} calls; the slots come back`, async () => {
      const { id, token } = await service.addUser('+15550001111');
      const sockets = [await signalClient(service.httpPort), await signalClient(service.httpPort)];
      try {
        for (const s of sockets) await s.auth(token);
        const answers = await burst(sockets, BURST, 'b');
        const created = answers.filter((m) => m.type === 'call.created');
        const refused = answers.filter(isError('TOO_MANY_CALLS'));
        assert.equal(created.length, MAX_CALLS, JSON.stringify(answers.filter((m) => m.type === 'error' && m.code !== 'TOO_MANY_CALLS')));
        assert.equal(refused.length, BURST - MAX_CALLS);
        assert.equal(service.switchboard.refusedStarts.TOO_MANY_CALLS, BURST - MAX_CALLS);
        // call.created goes out as the record's insert starts; wait for the inserts, then count exactly.
        const recorded = async () => (await service.records.outboundTally(id, 0, { now: Date.now(), maxCallMs: 0 })).attempts;
        await until('the created calls are recorded', async () => (await recorded()) >= MAX_CALLS, 5000);
        assert.equal(await recorded(), MAX_CALLS, 'one record per created call, none for refused ones');
        assert.equal(service.switchboard.liveCalls, MAX_CALLS);
        await hangUpAll(answers, sockets);

        // A refused start gives its slot back once, whichever check refused it: afterwards a new burst
        // again gets exactly the maximum, no more (a slot released twice) and no fewer (one never released).
        for (const to of ['+447700900123', '+15550001111']) {
          sockets[0]!.send({ type: 'call.start', ref: `denied${to}`, to, sdp });
          await sockets[0]!.next(isError('DESTINATION_NOT_ALLOWED', `denied${to}`));
        }
        const again = await burst(sockets, 10, 'again');
        assert.equal(again.filter((m) => m.type === 'call.created').length, MAX_CALLS);
        await hangUpAll(again, sockets);
        assert.equal(service.switchboard.liveCalls, 0);
      } finally {
        for (const s of sockets) s.close();
      }
    });
  });
}

describe('socket caps', () => {
  let service: TestService;
  let trunk: SilentTrunk;
  before(async () => ({ service, trunk } = await limitedService('sqlite')));
  after(async () => {
    await service?.stop();
    await trunk?.close();
  });

  test('the socket after maxUnauthenticatedSocketsPerIp unauthenticated ones from one address is closed 4005', async () => {
    const waiting = [await signalClient(service.httpPort, { localAddress: '127.0.0.2' }), await signalClient(service.httpPort, { localAddress: '127.0.0.2' })];
    const third = await signalClient(service.httpPort, { localAddress: '127.0.0.2' });
    try {
      assert.equal((await third.closed).code, 4005);
      assert.ok(third.msgs.some(isError('TOO_MANY_CONNECTIONS')));
      // Another address is not affected, and a closed socket frees its place.
      const other = await signalClient(service.httpPort, { localAddress: '127.0.0.3' });
      other.send({ type: 'ping' });
      await other.next((m) => m.type === 'pong');
      other.close();
      waiting[0]!.close();
      await waiting[0]!.closed;
      const replacement = await signalClient(service.httpPort, { localAddress: '127.0.0.2' });
      replacement.send({ type: 'ping' });
      await replacement.next((m) => m.type === 'pong');
      replacement.close();
    } finally {
      for (const s of waiting) s.close();
    }
  });

  test('the socket after maxSocketsPerIp from one address is closed 4004; the one after maxSocketsPerUser of a user 4003', async () => {
    const a = await service.addUser('+15550003333');
    const b = await service.addUser('+15550004444');
    const open: SignalClient[] = [];
    try {
      for (const token of [a.token, a.token, b.token, b.token]) {
        const s = await signalClient(service.httpPort, { localAddress: '127.0.0.4' });
        open.push(s);
        await s.auth(token);
      }
      const fifth = await signalClient(service.httpPort, { localAddress: '127.0.0.4' });
      assert.equal((await fifth.closed).code, 4004);
      assert.ok(fifth.msgs.some(isError('TOO_MANY_CONNECTIONS')));

      // User a already holds maxSocketsPerUser (2): a third socket, from anywhere, is refused at auth.
      const third = await signalClient(service.httpPort, { localAddress: '127.0.0.6' });
      third.send({ type: 'auth', token: a.token });
      assert.equal((await third.closed).code, 4003);
      assert.ok(third.msgs.some(isError('TOO_MANY_CONNECTIONS')));
      assert.ok(!third.msgs.some((m) => m.type === 'ready'));

      // Once one of a's sockets closes, a's next one is accepted.
      open[0]!.close();
      await open[0]!.closed;
      const next = await signalClient(service.httpPort, { localAddress: '127.0.0.6' });
      open.push(next);
      await next.auth(a.token);
    } finally {
      for (const s of open) s.close();
    }
  });
});
