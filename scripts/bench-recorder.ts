/**
 * Recorder benchmark: synthetic Opus RTP (a few real 20 ms frames of a 440 Hz tone, encoded once, reused
 * with advancing sequence numbers and timestamps) pushed through the whole recording path on one core:
 * intake → Ogg → AES-256-GCM chunk sealing → folder storage (atomic, fsynced writes).
 * Variants: without voice activity, and "with VAD" (plus a libopus decode per packet, as the service runs).
 *
 *   node --import tsx scripts/bench-recorder.ts [packets]
 *
 * The last line is one JSON object with the figures.
 */
import opus from '@discordjs/opus';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingPipeline, type RecordingChunk } from '../src/recorder/pipeline.js';
import { buildRtp } from '../src/recorder/rtp.js';
import { ChunkSealer, newRecordingSecrets } from '../src/crypto/chunk-aead.js';
import { createFsStore } from '../src/storage/fs-store.js';
import type { ObjectStore } from '../src/storage/object-store.js';

const PACKETS = Number(process.argv[2] ?? 500_000);
const VAD_PACKETS = PACKETS;
const PT = 111;
const FRAME = 960;

/** Seal each chunk as the service does and write it to the folder store. */
function sealAndStore(store: ObjectStore, recordingId: string, writes: Promise<void>[]) {
  const sealer = new ChunkSealer(recordingId, newRecordingSecrets());
  return (chunk: RecordingChunk, totals: { chunks: number; bytes: number }): void => {
    const sealed = sealer.seal(chunk.bytes, chunk.last);
    totals.chunks++;
    totals.bytes += sealed.bytes.length;
    writes.push(store.put(`rec/${recordingId}/chunk-${String(sealed.index).padStart(6, '0')}`, sealed.bytes));
  };
}

function toneFrames(count: number): Buffer[] {
  const enc = new opus.OpusEncoder(48000, 1);
  enc.setBitrate(32000); // what a browser sends for voice
  const frames: Buffer[] = [];
  for (let f = 0; f < count; f++) {
    const pcm = Buffer.alloc(FRAME * 2);
    for (let i = 0; i < FRAME; i++) pcm.writeInt16LE(Math.round(16000 * Math.sin((2 * Math.PI * 440 * (f * FRAME + i)) / 48000)), i * 2);
    frames.push(enc.encode(pcm));
  }
  return frames;
}

/** Prebuilt datagrams, so the loop measures the recorder and not packet construction. */
function datagrams(frames: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) {
    out[i] = buildRtp({ payloadType: PT, sequenceNumber: (1000 + i) & 0xffff, timestamp: (123456 + i * FRAME) >>> 0, ssrc: 0x1234abcd }, frames[i % frames.length] as Buffer);
  }
  return out;
}

let runs = 0;
export async function run(
  packets: Buffer[],
  vad: boolean,
  store: ObjectStore,
): Promise<{ pps: number; usPerPacket: number; chunks: number; bytes: number; durationMs: number; talkMs: number }> {
  const totals = { chunks: 0, bytes: 0 };
  const writes: Promise<void>[] = [];
  const onChunk = sealAndStore(store, `rec_bench${++runs}`, writes);
  const p = new RecordingPipeline({ chunkSeconds: 5, vad, onChunk: (c) => onChunk(c, totals) });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < packets.length; i++) p.push(packets[i] as Buffer, i * 20);
  const s = p.end();
  await Promise.all(writes);
  const ns = Number(process.hrtime.bigint() - t0);
  return { pps: Math.round(packets.length / (ns / 1e9)), usPerPacket: ns / 1e3 / packets.length, chunks: totals.chunks, bytes: totals.bytes, durationMs: s.durationMs, talkMs: s.talkMs };
}

const frames = toneFrames(50);
const all = datagrams(frames, PACKETS);
const dir = mkdtempSync(join(tmpdir(), 'monologue-bench-rec-'));
const store = createFsStore(dir);
await run(all.slice(0, 20_000), false, store); // warm up the JIT
await run(all.slice(0, 2_000), true, store);
const mux = await run(all, false, store);
console.log(`sealed+stored : ${PACKETS} packets, ${mux.pps} packets/s, ${mux.usPerPacket.toFixed(3)} µs/packet, ${mux.chunks} chunks, ${(mux.bytes / 1e6).toFixed(1)} MB Ogg, ${(mux.durationMs / 1000).toFixed(0)} s audio`);
const full = await run(all.slice(0, VAD_PACKETS), true, store);
rmSync(dir, { recursive: true, force: true });
console.log(`with VAD      : ${VAD_PACKETS} packets, ${full.pps} packets/s, ${full.usPerPacket.toFixed(3)} µs/packet, talk ${(full.talkMs / 1000).toFixed(0)} s of ${(full.durationMs / 1000).toFixed(0)} s`);
console.log(
  JSON.stringify({
    bench: 'recorder',
    packets: PACKETS,
    pps: mux.pps,
    us_per_packet: Number(mux.usPerPacket.toFixed(3)),
    packets_vad: VAD_PACKETS,
    pps_vad: full.pps,
    us_per_packet_vad: Number(full.usPerPacket.toFixed(3)),
    realtime_streams_per_core: Math.floor(full.pps / 50),
  }),
);
