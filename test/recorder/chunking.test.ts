import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingPipeline, type RecordingChunk } from '../../src/recorder/pipeline.js';
import { checkOggOpus, decodeAll, opusTone, rtp } from './ogg-reader.js';
import { dbRatio } from '../helpers/tone.js';

test('chunkSeconds 1 and 3.5 s of audio: 4 chunks at page boundaries that concatenate to one stream', () => {
  const chunks: RecordingChunk[] = [];
  const p = new RecordingPipeline({ chunkSeconds: 1, onChunk: (c) => chunks.push(c) });
  const packets = opusTone(440, 175); // 3.5 s
  packets.forEach((pk, i) => p.push(rtp(40000 + i, 12345 + i * 960, pk), i * 20));
  assert.equal(chunks.length, 3, 'three full chunks before stop');
  const s = p.end();
  assert.equal(chunks.length, 4);
  assert.equal(s.chunks, 4);
  chunks.forEach((c, i) => {
    assert.equal(c.index, i);
    assert.equal(c.bytes.toString('latin1', 0, 4), 'OggS', `chunk ${i} starts at a page`);
    assert.equal(c.last, i === 3);
  });
  assert.equal(chunks[0]?.bytes.indexOf('OpusHead'), 28);
  assert.equal(chunks[1]?.bytes.indexOf('OpusHead'), -1);
  const whole = Buffer.concat(chunks.map((c) => c.bytes));
  const { pages, audio, preSkip } = checkOggOpus(whole);
  assert.equal(audio.length, 175);
  assert.equal(pages[pages.length - 1]?.granule, 175 * 960);
  assert.equal(s.samples, 175 * 960);
  assert.equal(s.durationMs, 3500);
  assert.equal(s.oggBytes, whole.length);
  // Each chunk ends on a page whose granule is a chunk boundary.
  let offset = 0;
  for (const c of chunks.slice(0, 3)) {
    offset += c.bytes.length;
    const lastPage = pages.filter((pg) => pg.offset + pg.length === offset)[0];
    assert.ok(lastPage && lastPage.granule % 48000 === 0, 'chunk ends exactly on a second');
  }
  assert.ok(dbRatio(decodeAll(audio).subarray(preSkip), 440, 1000, 48000) > 30);
});

test('no audio at all: one last chunk with the header pages and EOS', () => {
  const chunks: RecordingChunk[] = [];
  const p = new RecordingPipeline({ chunkSeconds: 5, onChunk: (c) => chunks.push(c) });
  const s = p.end();
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0]?.last, true);
  checkOggOpus(chunks[0]?.bytes as Buffer);
  assert.equal(s.durationMs, 0);
  assert.equal(p.end().chunks, 1, 'end is idempotent');
});
