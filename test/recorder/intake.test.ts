import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtpIntake } from '../../src/recorder/intake.js';
import { rtp, SSRC } from './ogg-reader.js';

/** A distinct valid 20 ms Opus packet per index (CELT FB 20 ms TOC + a tag byte) to follow order. */
function pkt(i: number): Buffer {
  return Buffer.from([0xf8, i & 0xff, (i >> 8) & 0xff]);
}

function collect(opts: { reorderPackets?: number } = {}) {
  const out: Array<{ tag: number; samples: number; inserted: boolean }> = [];
  const intake = new RtpIntake({
    payloadType: 111,
    onPacket: (p, samples, inserted) => out.push({ tag: inserted ? -1 : (p[1] as number) | ((p[2] as number) << 8), samples, inserted }),
    ...opts,
  });
  const real = () => out.filter((o) => !o.inserted).map((o) => o.tag);
  const samples = () => out.reduce((a, o) => a + o.samples, 0);
  return { intake, out, real, samples };
}

test('reordering within the window restores order; nothing is lost', () => {
  const { intake, real, samples } = collect();
  const order = [0, 1, 3, 2, 4, 6, 5, 7, 9, 8, 10];
  for (const i of order) intake.push(rtp(100 + i, 5000 + i * 960, pkt(i)), i * 20);
  intake.flush();
  assert.deepEqual(real(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(intake.stats.lost, 0);
  assert.equal(intake.stats.reordered, 3);
  assert.equal(intake.stats.insertedSamples, 0);
  assert.equal(samples(), 11 * 960);
});

test('duplicates are dropped (in the window and behind it); too-late packets are dropped', () => {
  const { intake, real } = collect();
  const send = (i: number) => intake.push(rtp(100 + i, 5000 + i * 960, pkt(i)), i * 20);
  [0, 1, 1, 2, 4, 4, 3, 2, 0].forEach(send);
  // 5 is lost: after more than 5 waiting packets, the intake gives up on it.
  [6, 7, 8, 9, 10, 11].forEach(send);
  send(5); // too late now
  intake.flush();
  assert.deepEqual(real(), [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
  assert.equal(intake.stats.duplicates, 4);
  assert.equal(intake.stats.late, 1);
  assert.equal(intake.stats.lost, 1);
  // The lost packet's 20 ms was filled with silence: time stays continuous.
  assert.equal(intake.stats.insertedSamples, 960);
});

test('a foreign SSRC is ignored and counted; other payload types and RTCP too', () => {
  const { intake, real } = collect();
  for (let i = 0; i < 5; i++) {
    intake.push(rtp(100 + i, 5000 + i * 960, pkt(i)), i * 20);
    intake.push(rtp(900 + i, 77 + i * 960, pkt(500 + i), 0xabcdef), i * 20);
  }
  intake.push(rtp(105, 5000 + 5 * 960, pkt(5), SSRC, 101), 100); // telephone-event PT
  intake.push(Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]), 100); // RTCP SR
  intake.push(rtp(106, 5000 + 6 * 960, Buffer.alloc(0)), 120); // empty Opus
  intake.flush();
  assert.deepEqual(real(), [0, 1, 2, 3, 4]);
  assert.equal(intake.ssrc, SSRC);
  assert.equal(intake.stats.foreignSsrc, 5);
  assert.equal(intake.stats.wrongPayloadType, 1);
  assert.equal(intake.stats.rtcp, 1);
  assert.equal(intake.stats.bad, 1);
});

test('a 1-second gap (DTX or loss) keeps duration = wall time: 48,000 samples inserted', () => {
  const { intake, samples, out } = collect();
  for (let i = 0; i < 10; i++) intake.push(rtp(1 + i, 1000 + i * 960, pkt(i)), i * 20);
  // DTX: the sender stops for 1 s; sequence numbers continue, the timestamp jumps.
  for (let i = 10; i < 20; i++) intake.push(rtp(1 + i, 1000 + i * 960 + 48000, pkt(i)), i * 20 + 1000);
  intake.flush();
  assert.equal(intake.stats.insertedSamples, 48000);
  assert.equal(intake.stats.lost, 0);
  assert.equal(samples(), 20 * 960 + 48000);
  const firstInserted = out.findIndex((o) => o.inserted);
  assert.equal(firstInserted, 10);
});

test('loss of a whole second (sequence and timestamp both jump) also fills the time', () => {
  const { intake, samples } = collect();
  for (let i = 0; i < 100; i++) {
    if (i >= 20 && i < 70) continue; // 50 packets = 1 s lost
    intake.push(rtp(i, i * 960, pkt(i)), i * 20);
  }
  intake.flush();
  assert.equal(intake.stats.lost, 50);
  assert.equal(samples(), 100 * 960);
});

test('a timestamp jump the arrival clock does not back is capped (no hour of silence)', () => {
  const { intake, samples } = collect();
  intake.push(rtp(1, 0, pkt(0)), 0);
  intake.push(rtp(2, 960 + 48000 * 3600, pkt(1)), 20);
  intake.flush();
  assert.ok(samples() <= 2 * 960 + (20 + 200) * 48, `samples ${samples()}`);
});

test('sequence numbers and timestamps wrap at 65535 and 2^32', () => {
  const { intake, real, samples } = collect();
  const order = [0, 1, 2, 4, 3, 5, 6, 7];
  for (const i of order) intake.push(rtp(65532 + i, 0xffffffff - 2 * 960 + i * 960, pkt(i)), i * 20);
  intake.flush();
  assert.deepEqual(real(), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(intake.stats.lost, 0);
  assert.equal(intake.stats.reordered, 1);
  assert.equal(samples(), 8 * 960);
});
