import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { PacedReads } from '../../src/recorder/paced-reads.js';
import { createRecorder } from '../../src/recorder/recorder.js';
import { createLogger } from '../../src/log.js';
import { opusTone, rtp } from './ogg-reader.js';
import { until } from '../helpers/until.js';

/** Long enough that no tick falls inside a test: only `drain` reads. */
const NEVER_MS = 60_000;
/** How long the kernel is given to queue what was sent over loopback. */
const SETTLE_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  return s;
}

const drained = (p: PacedReads) => new Promise<void>((resolve) => p.drain(resolve));

test('a paced socket is read only on a pass: datagrams wait in the kernel, then a drain hands over all of them, bursts past libuv\'s 32 per poll included', async () => {
  const pacer = new PacedReads(NEVER_MS);
  const rx = await bound();
  const tx = await bound();
  let got = 0;
  try {
    assert.equal(pacer.listen(rx, () => void got++), true, 'this Node exposes the UDP handle: recorder sockets are paced');
    for (let i = 0; i < 200; i++) tx.send(Buffer.from([i]), rx.address().port, '127.0.0.1');
    await sleep(SETTLE_MS);
    assert.equal(got, 0, 'nothing is read between passes');
    await drained(pacer);
    assert.equal(got, 200, 'a drain reads everything that was queued');
    tx.send(Buffer.from([1]), rx.address().port, '127.0.0.1');
    await sleep(SETTLE_MS);
    assert.equal(got, 200, 'reading stopped again after the pass');
  } finally {
    tx.close();
    rx.close();
  }
  await sleep(0);
  assert.equal(pacer.size, 0, 'a closed socket leaves the pacer');
  let ran = false;
  pacer.drain(() => (ran = true));
  assert.equal(ran, true, 'with nothing paced, a drain returns at once');
});

test('the tick reads the paced sockets together', async () => {
  const pacer = new PacedReads(20);
  const rx = [await bound(), await bound()];
  const tx = await bound();
  const got = [0, 0];
  try {
    rx.forEach((s, i) => pacer.listen(s, () => void (got[i] as number)++));
    for (const s of rx) for (let i = 0; i < 3; i++) tx.send(Buffer.from([i]), s.address().port, '127.0.0.1');
    await until('a tick reads both sockets', () => got[0] === 3 && got[1] === 3, 2000, 5);
  } finally {
    tx.close();
    for (const s of rx) s.close();
  }
});

/** rtpengine's sendonly fork offer from `port`. */
function offer(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=t', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 111`, 'a=rtpmap:111 opus/48000/2', 'a=sendonly', ''].join('\r\n');
}

test('privacy with paced reads: what arrived during a pause stays paused even when resume comes before it is read; what arrived before a stop is kept', async () => {
  const rec = await createRecorder({ host: '127.0.0.1', chunkSeconds: 5, log: createLogger('silent'), onChunk: () => {}, readIntervalMs: NEVER_MS });
  const tx = await bound();
  const tone = opusTone(440, 75);
  const send = (from: number, to: number) => {
    for (let i = from; i < to; i++) tx.send(rtp(i, 960 * i, tone[i] as Buffer), rec.port, '127.0.0.1');
  };
  try {
    rec.answerSdp(offer(tx.address().port));
    assert.equal(rec.pause(), true);
    send(0, 50); // 1 s said during the pause, still in the kernel when the user resumes
    await sleep(SETTLE_MS);
    assert.equal(rec.summary().received, 0, 'nothing read yet: the socket is paced');
    assert.equal(rec.resume(), true);
    assert.equal(rec.paused, false, 'resumed, as far as the caller is concerned');
    assert.equal(rec.resume(), false, 'resuming twice is harmless');
    await until('the resume reads the datagrams of the pause', () => rec.summary().received === 50, 3000, 5);
    send(50, 75); // 0.5 s after the resume: kept, read only by the stop
    await sleep(SETTLE_MS);
    const s = await rec.stop();
    assert.equal(s.received, 75, 'the stop read what was queued before it');
    assert.deepEqual(s.pausedSpans, [{ startMs: 0, endMs: 1000, pausedMs: 1000 }], 'the pause swallowed exactly what was said during it');
    assert.ok(s.talkMs >= 480 && s.talkMs <= 520, `talk ${s.talkMs} ms: only the 0.5 s after the pause`);
  } finally {
    tx.close();
    await rec.stop();
  }
});

test('a pause during a resume that waits for its reads cancels it', async () => {
  const rec = await createRecorder({ host: '127.0.0.1', chunkSeconds: 5, log: createLogger('silent'), onChunk: () => {}, readIntervalMs: NEVER_MS });
  const tx = await bound();
  const tone = opusTone(440, 50);
  try {
    rec.answerSdp(offer(tx.address().port));
    assert.equal(rec.pause(), true);
    for (let i = 0; i < 50; i++) tx.send(rtp(i, 960 * i, tone[i] as Buffer), rec.port, '127.0.0.1');
    await sleep(SETTLE_MS);
    assert.equal(rec.resume(), true);
    assert.equal(rec.pause(), true, 'the resume had not taken effect: pausing again is a change');
    assert.equal(rec.paused, true);
    const s = await rec.stop();
    assert.equal(s.received, 50);
    assert.equal(s.talkMs, 0, 'nothing was kept: the pause never ended');
  } finally {
    tx.close();
    await rec.stop();
  }
});
