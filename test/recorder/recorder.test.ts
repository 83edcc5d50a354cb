import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import * as sdpTransform from 'sdp-transform';
import { createLogger } from '../../src/log.js';
import { MonologueError } from '../../src/errors.js';
import { createRecorder } from '../../src/recorder/recorder.js';
import type { RecordingChunk } from '../../src/recorder/pipeline.js';
import { checkOggOpus, opusTone, rtp } from './ogg-reader.js';
import { until } from '../helpers/until.js';

/**
 * What rtpengine's `subscribe request` returns: a sendonly Opus offer (payload type chosen here as 96) from
 * its own address and port for the fork, which is where the fork's RTP comes from.
 */
function offer(port = 30000, address = '127.0.0.1'): string {
  return [
    'v=0',
    `o=- 1545997027 1 IN IP4 ${address}`,
    's=tester',
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 96 101`,
    'a=rtpmap:96 opus/48000/2',
    'a=fmtp:96 minptime=10;useinbandfec=1',
    'a=rtpmap:101 telephone-event/48000',
    'a=sendonly',
    `a=rtcp:${port + 1}`,
    '',
  ].join('\r\n');
}
const OFFER = offer();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A UDP socket on `address`, standing in for rtpengine's fork port or for an attacker. */
async function udpSocket(address = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => resolve());
  });
  return s;
}

test('recorder over a real UDP socket: answer SDP, receive RTP, stop, summary and chunks match', async () => {
  const chunks: RecordingChunk[] = [];
  const rec = await createRecorder({
    host: '127.0.0.1',
    chunkSeconds: 1,
    log: createLogger('silent'),
    onChunk: async (c) => {
      await sleep(1); // an async sealer/store
      chunks.push(c);
    },
  });
  assert.ok(rec.port > 0);
  const sender = await udpSocket();
  const answer = sdpTransform.parse(rec.answerSdp(offer(sender.address().port)));
  const m = answer.media[0];
  assert.equal(answer.connection?.ip, '127.0.0.1');
  assert.equal(m?.port, rec.port);
  assert.equal(m?.direction, 'recvonly');
  assert.equal(String(m?.payloads), '96');
  assert.deepEqual(m?.rtp.map((r) => r.codec), ['opus']);
  assert.equal(rec.payloadType, 96);
  assert.deepEqual(rec.source, { address: '127.0.0.1', port: sender.address().port });

  const packets = opusTone(440, 100); // 2 s
  for (let i = 0; i < packets.length; i++) {
    sender.send(rtp(7 + i, 960 * i, packets[i] as Buffer, 0x5555, 96), rec.port, '127.0.0.1');
    if (i % 10 === 9) await sleep(2);
  }
  sender.send(rtp(999, 0, packets[0] as Buffer, 0x6666, 96), rec.port, '127.0.0.1'); // a foreign stream
  sender.send(Buffer.from('not rtp at all'), rec.port, '127.0.0.1');
  await sleep(100);
  sender.close();

  const s = await rec.stop();
  assert.equal(s.packets, 100);
  assert.equal(s.lost, 0);
  assert.equal(s.foreignSsrc, 1);
  assert.equal(s.foreignSource, 0);
  assert.equal(s.bad, 1);
  assert.equal(s.durationMs, 2000);
  assert.ok(s.talkMs >= 1900, `talk ${s.talkMs}`);
  assert.equal(s.chunks, 2);
  assert.equal(s.chunkFailures, 0);
  assert.equal(chunks.length, 2, 'stop waited for every onChunk');
  assert.deepEqual(chunks.map((c) => [c.index, c.last]), [[0, false], [1, true]]);
  const { audio } = checkOggOpus(Buffer.concat(chunks.map((c) => c.bytes)));
  assert.equal(audio.length, 100);
  assert.equal(rec.closed, true);
  assert.deepEqual(await rec.stop(), s, 'stop is idempotent');
});

test('a failing onChunk is counted, later chunks still go, stop still resolves', async () => {
  const got: number[] = [];
  const rec = await createRecorder({
    host: '127.0.0.1', chunkSeconds: 0.2, log: createLogger('silent'), vad: false,
    onChunk: (c) => {
      if (c.index === 0) throw new Error('disk full');
      got.push(c.index);
    },
  });
  const sender = await udpSocket();
  rec.answerSdp(offer(sender.address().port));
  const packets = opusTone(440, 25);
  for (let i = 0; i < packets.length; i++) sender.send(rtp(i, 960 * i, packets[i] as Buffer, 1, 96), rec.port, '127.0.0.1');
  await sleep(100);
  sender.close();
  const s = await rec.stop();
  assert.equal(s.chunkFailures, 1);
  assert.equal(got.length, s.chunks - 1);
});

test('an offer without Opus is a BAD_SDP error', async () => {
  const rec = await createRecorder({ host: '127.0.0.1', chunkSeconds: 5, log: createLogger('silent'), onChunk: () => {} });
  try {
    assert.throws(() => rec.answerSdp(OFFER.replace('opus/48000/2', 'PCMU/8000')), (e: unknown) => e instanceof MonologueError && e.code === 'BAD_SDP');
    assert.throws(() => rec.answerSdp('garbage'), MonologueError);
    assert.throws(() => rec.answerSdp(OFFER.replace('c=IN IP4 127.0.0.1', 'c=IN IP4 0.0.0.0')), (e: unknown) => e instanceof MonologueError && e.code === 'BAD_SDP');
  } finally {
    await rec.stop();
  }
});

test('only the fork source gets in: another port on the same address and another address are refused, before and after the answer', async () => {
  const rec = await createRecorder({ host: '127.0.0.1', chunkSeconds: 5, log: createLogger('silent'), onChunk: () => {} });
  const rtpengine = await udpSocket();
  const samePortElsewhere = await udpSocket();
  const otherHost = await udpSocket('127.0.0.66');
  const user = opusTone(440, 50);
  const foreign = opusTone(1000, 50);
  try {
    // A sender racing the subscription: everything before the answer is foreign, rtpengine's own included.
    for (let i = 0; i < 10; i++) {
      for (const s of [samePortElsewhere, otherHost, rtpengine]) s.send(rtp(i, 960 * i, foreign[i] as Buffer, 0x0bad, 96), rec.port, '127.0.0.1');
    }
    await until('the early datagrams are dropped', () => rec.summary().foreignSource === 30, 2000);
    assert.equal(rec.summary().received, 0, 'none reached the intake');

    rec.answerSdp(offer(rtpengine.address().port));
    // Connected attackers learn from the kernel that nobody takes their datagrams (ICMP port unreachable
    // comes back as ECONNREFUSED): the recorder's socket is connected to rtpengine's fork port.
    const refused = new Map<Socket, number>();
    for (const s of [samePortElsewhere, otherHost]) {
      refused.set(s, 0);
      s.on('error', (err: NodeJS.ErrnoException) => void (err.code === 'ECONNREFUSED' && refused.set(s, refused.get(s)! + 1)));
      await new Promise<void>((r) => s.connect(rec.port, '127.0.0.1', () => r()));
    }
    for (let i = 0; i < 50; i++) {
      rtpengine.send(rtp(100 + i, 960 * i, user[i] as Buffer, 0x5555, 96), rec.port, '127.0.0.1');
      samePortElsewhere.send(rtp(100 + i, 960 * i, foreign[i] as Buffer, 0x5555, 96)); // even with the user's SSRC
      otherHost.send(rtp(100 + i, 960 * i, foreign[i] as Buffer, 0x0bad, 96));
      await sleep(2);
    }
    await until('the user\'s 50 packets arrive', () => rec.summary().packets === 50, 3000);
    await until('both attackers are told the port refuses them', () => [...refused.values()].every((n) => n > 0), 3000);
    const s = await rec.stop();
    assert.equal(s.packets, 50, 'only the fork source was recorded');
    assert.equal(s.foreignSsrc, 0);
    assert.equal(s.received, 50, 'nothing foreign reached the intake');
    assert.equal(s.foreignSource, 30, 'only the datagrams queued before the answer reached the socket');
    assert.equal(s.durationMs, 1000);
  } finally {
    await rec.stop();
    for (const s of [rtpengine, samePortElsewhere, otherHost]) s.close();
  }
});
