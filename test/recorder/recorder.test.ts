import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import * as sdpTransform from 'sdp-transform';
import { createLogger } from '../../src/log.js';
import { MonologueError } from '../../src/errors.js';
import { createRecorder } from '../../src/recorder/recorder.js';
import type { RecordingChunk } from '../../src/recorder/pipeline.js';
import { checkOggOpus, opusTone, rtp } from './ogg-reader.js';

/** What rtpengine's `subscribe request` returns: a sendonly Opus offer (payload type chosen here as 96). */
const OFFER = [
  'v=0',
  'o=- 1545997027 1 IN IP4 127.0.0.1',
  's=tester',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 30000 RTP/AVP 96 101',
  'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 minptime=10;useinbandfec=1',
  'a=rtpmap:101 telephone-event/48000',
  'a=sendonly',
  'a=rtcp:30001',
  '',
].join('\r\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const answer = sdpTransform.parse(rec.answerSdp(OFFER));
  const m = answer.media[0];
  assert.equal(answer.connection?.ip, '127.0.0.1');
  assert.equal(m?.port, rec.port);
  assert.equal(m?.direction, 'recvonly');
  assert.equal(String(m?.payloads), '96');
  assert.deepEqual(m?.rtp.map((r) => r.codec), ['opus']);
  assert.equal(rec.payloadType, 96);

  const sender = createSocket('udp4');
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
  rec.answerSdp(OFFER);
  const sender = createSocket('udp4');
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
  } finally {
    await rec.stop();
  }
});
