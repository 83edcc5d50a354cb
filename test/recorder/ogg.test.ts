import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OggOpusMuxer, oggCrc32 } from '../../src/recorder/ogg-opus.js';
import { opusPacketSamples, forEachSilentPacket } from '../../src/recorder/opus-packet.js';
import { goertzel, dbRatio } from '../helpers/tone.js';
import { checkOggOpus, crcBytewise, decodeAll, opusTone } from './ogg-reader.js';

function mux(packets: Buffer[], opts: { maxPageBytes?: number } = {}): Buffer {
  const pages: Buffer[] = [];
  const m = new OggOpusMuxer({ onPage: (p) => pages.push(p), ...opts });
  for (const p of packets) m.write(p, opusPacketSamples(p));
  m.end();
  return Buffer.concat(pages);
}

test('Ogg CRC (slicing) matches a bytewise reference, including the known "OggS" pages', () => {
  for (let n = 0; n < 300; n++) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 131 + n) & 0xff;
    assert.equal(oggCrc32(b), crcBytewise(b), `length ${n}`);
  }
});

test('TOC durations (RFC 6716 §3.1)', () => {
  assert.equal(opusPacketSamples(Buffer.from([0xf8, 0xff, 0xfe])), 960); // CELT FB 20 ms, code 0
  assert.equal(opusPacketSamples(Buffer.from([0x08 << 0 | (3 << 3), 0])), 2880); // SILK 60 ms
  assert.equal(opusPacketSamples(Buffer.from([0x79, 1, 2])), 1920); // config 15 (hybrid 20 ms), code 1: 2 frames
  assert.equal(opusPacketSamples(Buffer.from([0x79, 1])), 0); // code 1 with odd body
  assert.equal(opusPacketSamples(Buffer.from([0xfb, 0x06])), 5760); // 6 × 20 ms
  assert.equal(opusPacketSamples(Buffer.from([0xfb, 0x07])), 0); // 140 ms: too long
  assert.equal(opusPacketSamples(Buffer.from([0xfb, 0x00])), 0); // no frames
  assert.equal(opusPacketSamples(Buffer.alloc(0)), 0);
});

test('inserted silent packets decode to silence at every size', () => {
  const packets: Buffer[] = [];
  const covered = forEachSilentPacket(5760 + 960 + 480 + 240 + 120 + 100, (p) => packets.push(p));
  assert.equal(covered, 5760 + 960 + 480 + 240 + 120);
  assert.equal(packets.length, 5);
  const pcm = decodeAll(packets);
  assert.equal(pcm.length, covered);
  assert.ok(pcm.every((s) => Math.abs(s) <= 1));
});

test('a 440 Hz tone round-trips through Ogg pages and libopus', () => {
  const packets = opusTone(440, 250); // 5 s
  const ogg = mux(packets);
  const { pages, audio, preSkip, channels } = checkOggOpus(ogg);
  assert.equal(preSkip, 312);
  assert.equal(channels, 1);
  assert.equal(audio.length, packets.length);
  audio.forEach((p, i) => assert.ok(p.equals(packets[i] as Buffer), `packet ${i}`));
  assert.equal(pages[pages.length - 1]?.granule, 250 * 960);
  assert.ok(pages.length > 3, 'several audio pages');
  // Every audio page's granule = samples of all packets completed so far.
  let samples = 0;
  for (const p of pages.slice(2)) {
    samples += p.packets.reduce((a, pk) => a + opusPacketSamples(pk), 0);
    assert.equal(p.granule, samples);
  }
  const pcm = decodeAll(audio).subarray(preSkip);
  assert.ok(dbRatio(pcm, 440, 1000, 48000) > 30, '440 Hz dominates 1000 Hz');
  assert.ok(dbRatio(pcm, 440, 300, 48000) > 30, '440 Hz dominates 300 Hz');
  assert.ok(goertzel(pcm, 440, 48000) > 0);

  const tools = ['ffprobe', 'opusinfo'].filter((t) => spawnSync('which', [t]).status === 0);
  if (tools.length > 0) {
    const dir = mkdtempSync(join(tmpdir(), 'ogg-'));
    try {
      const f = join(dir, 'a.opus');
      writeFileSync(f, ogg);
      if (tools.includes('opusinfo')) assert.equal(spawnSync('opusinfo', [f]).status, 0);
      if (tools.includes('ffprobe')) assert.equal(spawnSync('ffprobe', ['-v', 'error', f]).status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('large packets: lacing with 255s, page splits by segment count and byte budget', () => {
  const big = [Buffer.alloc(600, 1), Buffer.alloc(255, 2), Buffer.alloc(510, 3), Buffer.alloc(0 + 1, 4)];
  for (const b of big) b[0] = 0xf8;
  const packets = Array.from({ length: 200 }, (_, i) => big[i % big.length] as Buffer);
  const { audio } = checkOggOpus(mux(packets, { maxPageBytes: 65025 }));
  assert.equal(audio.length, packets.length);
  audio.forEach((p, i) => assert.ok(p.equals(packets[i] as Buffer)));
});

test('a stream with no audio still ends with EOS (on the OpusTags page)', () => {
  const pages: Buffer[] = [];
  const m = new OggOpusMuxer({ onPage: (p) => pages.push(p), serial: 7 });
  m.end();
  const { pages: parsed } = checkOggOpus(Buffer.concat(pages));
  assert.equal(parsed.length, 2);
  assert.equal(parsed[0]?.serial, 7);
});
