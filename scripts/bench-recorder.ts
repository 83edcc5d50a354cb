/**
 * Recorder benchmark: synthetic Opus RTP (a few real 20 ms frames of a 440 Hz tone, encoded once, reused
 * with advancing sequence numbers and timestamps) pushed through RecordingPipeline on one core.
 * Variants: "mux only" (intake → Ogg → chunks) and "with VAD" (plus a libopus decode per packet).
 *
 *   node --import tsx scripts/bench-recorder.ts [packets]
 *
 * The last line is one JSON object with the figures.
 */
import opus from '@discordjs/opus';
import { RecordingPipeline, type RecordingChunk } from '../src/recorder/pipeline.js';
import { buildRtp } from '../src/recorder/rtp.js';

const PACKETS = Number(process.argv[2] ?? 500_000);
const VAD_PACKETS = PACKETS;
const PT = 111;
const FRAME = 960;

/**
 * WHERE ENCRYPTION AND STORAGE GO: each chunk of plaintext Ogg passes through this function. Replace it (or
 * pass another to `run`) to seal with AES-GCM (src/crypto) and write to the folder store, so the benchmark
 * measures the whole path. Here it only counts bytes.
 */
function defaultOnChunk(chunk: RecordingChunk, totals: { chunks: number; bytes: number }): void {
  totals.chunks++;
  totals.bytes += chunk.bytes.length;
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

export function run(
  packets: Buffer[],
  vad: boolean,
  onChunk: (chunk: RecordingChunk, totals: { chunks: number; bytes: number }) => void = defaultOnChunk,
): { pps: number; usPerPacket: number; chunks: number; bytes: number; durationMs: number; talkMs: number } {
  const totals = { chunks: 0, bytes: 0 };
  const p = new RecordingPipeline({ chunkSeconds: 5, vad, onChunk: (c) => onChunk(c, totals) });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < packets.length; i++) p.push(packets[i] as Buffer, i * 20);
  const s = p.end();
  const ns = Number(process.hrtime.bigint() - t0);
  return { pps: Math.round(packets.length / (ns / 1e9)), usPerPacket: ns / 1e3 / packets.length, chunks: totals.chunks, bytes: totals.bytes, durationMs: s.durationMs, talkMs: s.talkMs };
}

const frames = toneFrames(50);
const all = datagrams(frames, PACKETS);
run(all.slice(0, 20_000), false); // warm up the JIT
run(all.slice(0, 2_000), true);
const mux = run(all, false);
console.log(`mux only : ${PACKETS} packets, ${mux.pps} packets/s, ${mux.usPerPacket.toFixed(3)} µs/packet, ${mux.chunks} chunks, ${(mux.bytes / 1e6).toFixed(1)} MB Ogg, ${(mux.durationMs / 1000).toFixed(0)} s audio`);
const full = run(all.slice(0, VAD_PACKETS), true);
console.log(`with VAD : ${VAD_PACKETS} packets, ${full.pps} packets/s, ${full.usPerPacket.toFixed(3)} µs/packet, talk ${(full.talkMs / 1000).toFixed(0)} s of ${(full.durationMs / 1000).toFixed(0)} s`);
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
