import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { Browser } from 'playwright-core';
import { startTestService, type TestService } from '../helpers/service.js';
import { startSipp, freePort } from '../helpers/sipp.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { launchBrowser, writeSineWav, DialerDriver } from '../helpers/browser.js';
import { MALFORMED_CASES } from '../sip/malformed-cases.js';
import { udpExchange, tcpExchange } from '../sip/raw.js';

/** Garbage on every door of the running service, then a good call must still go through. */
let service: TestService;
let sippPort: number;
let token: string;

before(async () => {
  sippPort = await freePort();
  service = await startTestService({
    trunkPort: sippPort,
    overrides: { signaling: { authTimeoutMs: 800, maxMessageBytes: 32_768, maxMessagesPerSecond: 20 } },
  });
  ({ token } = await service.addUser('+15550001111'));
});

after(async () => service?.stop());

type Msg = Record<string, unknown>;

/** A raw client that records every message and the close code. */
async function client(): Promise<{ ws: WebSocket; msgs: Msg[]; closed: Promise<number>; next(pred: (m: Msg) => boolean): Promise<Msg> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${service.httpPort}/v1/signal`);
  const msgs: Msg[] = [];
  const waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as Msg;
    msgs.push(m);
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  await new Promise<void>((r, j) => { ws.once('open', () => r()); ws.once('error', j); });
  return {
    ws, msgs, closed,
    next: (pred) => {
      const hit = msgs.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        setTimeout(() => reject(new Error(`no matching message; got ${JSON.stringify(msgs)}`)), 5000);
      });
    },
  };
}
const isError = (code: string) => (m: Msg) => m.type === 'error' && m.code === code;

test('WebSocket: bad frames before and after auth get clear errors; the socket survives what it should', async () => {
  const c = await client();
  c.ws.send(JSON.stringify({ type: 'call.start', ref: 'early', to: '+15550002222', sdp: 'v=0 something long' }));
  assert.equal((await c.next(isError('AUTH_REQUIRED'))).ref, 'early');
  c.ws.send('{not json');
  await c.next(isError('BAD_JSON'));
  c.ws.send(JSON.stringify({ type: 'teleport' }));
  await c.next(isError('UNKNOWN_TYPE'));
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await c.next(isError('BAD_MESSAGE'));
  c.ws.send(JSON.stringify({ type: 'call.hangup' }));
  assert.match(String((await c.next((m) => isError('BAD_MESSAGE')(m) && /callId/.test(String(m.message)))).message), /callId/);
  c.ws.send(JSON.stringify({ type: 'ping' }));
  await c.next((m) => m.type === 'pong');

  c.ws.send(JSON.stringify({ type: 'auth', token }));
  await c.next((m) => m.type === 'ready');
  c.ws.send(JSON.stringify({ type: 'auth', token }));
  await c.next(isError('ALREADY_AUTHENTICATED'));
  c.ws.send(JSON.stringify({ type: 'call.start', ref: 'num', to: '12345', sdp: 'v=0 0123456789' }));
  assert.equal((await c.next(isError('NUMBER_INVALID'))).ref, 'num');
  c.ws.send(JSON.stringify({ type: 'call.start', ref: 'sdp', to: '+15550002222', sdp: 'this is not an SDP at all' }));
  assert.equal((await c.next(isError('BAD_SDP'))).ref, 'sdp');
  const ended = await c.next((m) => m.type === 'call.ended');
  assert.equal(ended.reason, 'media-failed');
  c.ws.send(JSON.stringify({ type: 'call.hangup', callId: 'call_doesnotexist' }));
  await c.next(isError('CALL_NOT_FOUND'));
  c.ws.send(JSON.stringify({ type: 'call.accept', callId: String(ended.callId), sdp: 'v=0 0123456789' }));
  await c.next((m) => isError('CALL_NOT_FOUND')(m) && c.msgs.filter(isError('CALL_NOT_FOUND')).length === 2);
  c.ws.send(JSON.stringify({ type: 'call.reject', callId: '../../etc/passwd' }));
  await new Promise((r) => setTimeout(r, 1100)); // refill the rate limiter
  for (let i = 0; i < 40; i++) c.ws.send(JSON.stringify({ type: 'ping' }));
  await c.next(isError('RATE_LIMITED'));
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  c.ws.close();
  assert.deepEqual(await service.media.listCalls(), []);
});

test('WebSocket: bad token, no auth and oversized frames close the socket with a reason', async () => {
  const bad = await client();
  bad.ws.send(JSON.stringify({ type: 'auth', token: 'mlt_forged' }));
  await bad.next(isError('AUTH_FAILED'));
  assert.equal(await bad.closed, 4001);

  const silent = await client();
  await silent.next(isError('AUTH_TIMEOUT'));
  assert.equal(await silent.closed, 4002);

  const big = await client();
  big.ws.send(JSON.stringify({ type: 'auth', token: 'x'.repeat(40_000) }));
  assert.equal(await big.closed, 1009, 'message too big');

  const res = await fetch(`http://127.0.0.1:${service.httpPort}/v1/signal?token=${token}`);
  assert.equal(res.status, 404, 'plain HTTP on the signaling path is not an upgrade');
});

test('SIP: a barrage of malformed messages over UDP and TCP, then a good call from the dialer page', async () => {
  const port = service.sipPort;
  await Promise.all(MALFORMED_CASES.map(([, make]) => udpExchange(port, make(port), 300)));
  await tcpExchange(port, [Buffer.alloc(4000, 0xff)], { end: true });
  await tcpExchange(port, ['INVITE sip:+15550001111@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9\r\n'], { end: true });
  assert.ok(MALFORMED_CASES.length >= 20);
  assert.equal(service.switchboard.liveCalls, 0);

  const peer = await createRtpPeer({ tone: 1000 });
  const sipp = startSipp({ scenario: 'uas-401-answer', port: sippPort, remote: `127.0.0.1:${port}`, keys: { rtp_port: String(peer.port), bye_after: '2500' }, timeoutMs: 30_000 });
  const wav = writeSineWav({ freq: 440, seconds: 10 }, join(mkdtempSync(join(tmpdir(), 'wav-')), 'a440.wav'));
  let browser: Browser | undefined;
  try {
    browser = await launchBrowser({ fakeAudioWav: wav });
    const dialer = await DialerDriver.open(browser, service.url);
    await sipp.ready;
    await dialer.connect(token);
    await dialer.call('+15550002222');
    await dialer.waitState('active', 15_000);
    peer.start();
    await peer.waitForPackets(50, 10_000);
    assert.ok(peer.measure(440, 1000) > 20);
    await dialer.waitState('ended', 15_000);
    assert.equal((await sipp.done).code, 0);
  } finally {
    sipp.kill();
    await browser?.close();
    await peer.close();
  }
});
