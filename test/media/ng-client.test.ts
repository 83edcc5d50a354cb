/**
 * The ng control plane answers only to rtpengine (DESIGN §4.8, issue 7 item 7): a reply to a pending cookie
 * from any other address or port is dropped and counted, and logged once per source per minute. A real UDP
 * socket stands in for rtpengine (it sees the request and hands the cookie to forgers); the normal path runs
 * against a real rtpengine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import bencode from 'bencode';
import { pino } from 'pino';
import { createLogger } from '../../src/log.js';
import { MonologueError } from '../../src/errors.js';
import { createNgClient, createRtpengineProcess } from '../../src/media/index.js';
import { freeUdpPort, freeUdpPortRange } from '../helpers/ports.js';
import { until } from '../helpers/until.js';

async function bound(address: string): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => resolve());
  });
  return s;
}

function reply(cookie: string, dict: Record<string, unknown>): Buffer {
  return Buffer.concat([Buffer.from(`${cookie} `), bencode.encode(dict)]);
}

/** A pino logger whose warn lines land in `lines`. */
function capturedLog(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { log, lines };
}

test('a reply to a pending cookie from another address or another port is ignored, counted and logged once per source', async () => {
  const rtpengine = await bound('127.0.0.1');
  const samePortElsewhere = await bound('127.0.0.1'); // same host, other port
  const otherHost = await bound('127.0.0.66'); // the attacker on another loopback address
  const { log, lines } = capturedLog();
  const ng = createNgClient({ host: '127.0.0.1', port: rtpengine.address().port, tries: 3, retryIntervalMs: 150, log });
  const cookies: string[] = [];
  let client: { address: string; port: number } | undefined;
  rtpengine.on('message', (msg, from) => {
    client = from;
    const cookie = msg.subarray(0, msg.indexOf(0x20)).toString('latin1');
    cookies.push(cookie);
    // The forgers know the cookie (an on-path observer would) and answer first, twice each.
    for (const forger of [samePortElsewhere, otherHost]) {
      for (let i = 0; i < 2; i++) forger.send(reply(cookie, { result: 'pong' }), from.port, from.address);
    }
  });
  try {
    const started = Date.now();
    await assert.rejects(ng.ping(), (e: unknown) => e instanceof MonologueError && e.code === 'MEDIA_TIMEOUT');
    assert.ok(Date.now() - started >= 3 * 150, 'the client kept waiting for rtpengine itself');
    assert.equal(cookies.length, 3, 'every try went to rtpengine');
    await until('the forged replies are counted', () => ng.foreignReplies === 12, 2000);
    const dropped = lines.filter((l) => l.msg === 'ng datagram from a source other than rtpengine dropped');
    assert.deepEqual(
      dropped.map((l) => l.src).sort(),
      [`127.0.0.1:${samePortElsewhere.address().port}`, `127.0.0.66:${otherHost.address().port}`].sort(),
      'one line per source, not one per datagram',
    );

    // The same request answered by rtpengine's own address and port goes through.
    rtpengine.removeAllListeners('message');
    rtpengine.on('message', (msg, from) => {
      const cookie = msg.subarray(0, msg.indexOf(0x20)).toString('latin1');
      otherHost.send(reply(cookie, { result: 'error', 'error-reason': 'forged' }), from.port, from.address);
      rtpengine.send(reply(cookie, { result: 'pong' }), from.port, from.address);
    });
    await ng.ping(); // a forged `error` raced it and was not taken
    assert.ok(client, 'rtpengine saw the client');
    await until('the forged error is counted', () => ng.foreignReplies === 13, 2000);
    assert.equal(lines.filter((l) => l.msg === 'ng datagram from a source other than rtpengine dropped').length, 2, 'still one line per source this minute');
  } finally {
    ng.close();
    for (const s of [rtpengine, samePortElsewhere, otherHost]) s.close();
  }
});

test('the normal path against a real rtpengine: replies come from its ng address and port, none is dropped', async () => {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const range = await freeUdpPortRange(20);
  const proc = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max });
  await proc.start();
  try {
    assert.ok(proc.argv.includes('--endpoint-learning=off'), 'rtpengine learns no endpoint from packets');
    for (let i = 0; i < 5; i++) await proc.ng.ping();
    assert.deepEqual(await proc.ng.list(), []);
    assert.equal(proc.ng.foreignReplies, 0);
  } finally {
    await proc.stop();
  }
});
