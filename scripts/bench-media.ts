/**
 * Media route benchmark: a 10-minute recording as the recorder stores it (Ogg Opus at 32 kbit/s, one
 * sealed chunk per 5 s: 120 chunks), served through the whole service over loopback HTTP by a grant.
 *
 *   node --import tsx scripts/bench-media.ts [fs|s3] [minutes]
 *
 * Figures: HEAD (grant use, SQL re-check, key unwrap, chunk listing and 120 header reads: everything
 * before the first chunk), time to first byte and throughput of a whole download, time to first byte of a
 * range at the end (opened from its own chunk), and for comparison what decrypting from chunk 0 and
 * discarding would add to that range (every earlier chunk fetched and opened). The last line is JSON.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import opus from '@discordjs/opus';
import { OggOpusMuxer } from '../src/recorder/ogg-opus.js';
import { ChunkOpener, ChunkSealer, decodeSecrets, encodeSecrets, newRecordingSecrets } from '../src/crypto/chunk-aead.js';
import { openKeyring } from '../src/crypto/kek.js';
import { kekDir } from '../src/recordings/storage-setup.js';
import { objectKeys } from '../src/recordings/catalog.js';
import { newId } from '../src/ids.js';
import { sine } from '../test/helpers/tone.js';
import { startApiRig } from '../test/api/fixture.js';
import { startS3Server, type S3TestServer } from '../test/helpers/s3.js';

const kind = (process.argv[2] ?? 'fs') as 'fs' | 's3';
const MINUTES = Number(process.argv[3] ?? 10);
const CHUNK_SECONDS = 5;
const RUNS = 5;


let s3: S3TestServer | undefined;
if (kind === 's3') s3 = await startS3Server();
const rig = await startApiRig({
  ...(s3 && {
    overrides: { storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, requestTimeoutMs: 5000 } } },
  }),
});
const svc = rig.service;
const owner = await rig.seedOwner('+15550900001', { calls: 0 });

// ---- a long recording as the recorder stores it; copies under new ids and keys measure uncached requests
const keyring = openKeyring(kekDir(svc.config), { create: false });
const encoder = new opus.OpusEncoder(48000, 1);
encoder.setBitrate(32000);
const second = sine(440, 48000, 48000, 0.3);
const frames: Buffer[] = [];
for (let off = 0; off < 48000; off += 960) frames.push(encoder.encode(Buffer.from(second.buffer, second.byteOffset + off * 2, 1920)));
const pages: Buffer[] = [];
const muxer = new OggOpusMuxer({ onPage: (p) => pages.push(Buffer.from(p)), maxPageSamples: 48000 });
const chunks: Buffer[] = [];
const totalFrames = MINUTES * 60 * 50;
for (let f = 0; f < totalFrames; f++) {
  muxer.write(frames[f % frames.length]!, 960);
  if ((f + 1) % (CHUNK_SECONDS * 50) === 0 && f + 1 < totalFrames) {
    muxer.flush();
    chunks.push(Buffer.concat(pages.splice(0)));
  }
}
muxer.end();
chunks.push(Buffer.concat(pages.splice(0)));
const plain = Buffer.concat(chunks);

async function store(): Promise<{ id: string; wrapped: ReturnType<typeof keyring.wrap> }> {
  const id = newId('rec');
  const secrets = newRecordingSecrets();
  const wrapped = keyring.wrap(encodeSecrets(secrets), id);
  const callId = newId('call');
  await svc.records.create({ id: callId, userId: owner.id, direction: 'outbound', counterpart: '+15552000001', createdAt: Date.now() });
  await svc.catalog.create({ id, callId, userId: owner.id, wrappedKey: wrapped.blob, kekId: wrapped.kekId });
  const sealer = new ChunkSealer(id, secrets);
  for (const [i, c] of chunks.entries()) await svc.objects.put(objectKeys.chunk(id, i), sealer.seal(c, i === chunks.length - 1).bytes);
  await svc.catalog.finish(id, { state: 'complete', chunkCount: chunks.length, durationMs: MINUTES * 60_000, talkMs: MINUTES * 60_000 });
  return { id, wrapped };
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ---- HTTP, timed from the request to the headers, the first body byte and the end
async function timed(method: string, url: string, range?: string): Promise<{ headersMs: number; firstByteMs: number; totalMs: number; bytes: number; hash: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(url.slice(1), rig.url), { method, headers: range ? { range } : {} }, (res) => {
      const headersMs = performance.now() - t0;
      let firstByteMs = NaN;
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - t0;
        h.update(d);
        bytes += d.length;
      });
      res.on('end', () => resolve({ headersMs, firstByteMs, totalMs: performance.now() - t0, bytes, hash: h.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
const grant = async (id: string) => {
  const res = await rig.request('POST', `/v1/recordings/${id}/grants`, { token: owner.token, body: { purpose: 'download' } });
  return ((await res.json()) as { url: string }).url;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const check = (r: Awaited<ReturnType<typeof timed>>, want: Buffer) => {
  if (r.hash !== sha(want) || r.bytes !== want.length) throw new Error('the response is not the bytes asked for');
  return r;
};
const TAIL = 'bytes=-4000';
const tailBytes = plain.subarray(plain.length - 4000);

// First requests for a recording: the chunk headers are read.
const cold = { head: [] as number[], full: [] as Array<Awaited<ReturnType<typeof timed>>>, tail: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  cold.head.push((await timed('HEAD', await grant((await store()).id))).headersMs);
  cold.full.push(check(await timed('GET', await grant((await store()).id)), plain));
  cold.tail.push(check(await timed('GET', await grant((await store()).id), TAIL), tailBytes).firstByteMs);
}
// Later requests for the same recording (a player's next ranges): its chunk table is cached.
const warmRec = await store();
const warmUrl = await grant(warmRec.id);
await timed('HEAD', warmUrl);
const warm = { full: [] as Array<Awaited<ReturnType<typeof timed>>>, tail: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  warm.full.push(check(await timed('GET', warmUrl), plain));
  warm.tail.push(check(await timed('GET', warmUrl, TAIL), tailBytes).firstByteMs);
}

// What decrypting from chunk 0 and discarding would add to that tail range: every earlier chunk fetched and opened.
const skip: number[] = [];
const s = decodeSecrets(keyring.unwrap(warmRec.wrapped, warmRec.id));
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const opener = new ChunkOpener(warmRec.id, s);
  for (let c = 0; c < chunks.length - 1; c++) opener.open(await svc.objects.get(objectKeys.chunk(warmRec.id, c)));
  skip.push(performance.now() - t0);
}

const fullMs = median(warm.full.map((f) => f.totalMs));
const ms = (x: number) => +x.toFixed(1);
const result = {
  store: kind,
  minutes: MINUTES,
  chunks: chunks.length,
  bytes: plain.length,
  firstRequest: { headMs: ms(median(cold.head)), fullFirstByteMs: ms(median(cold.full.map((f) => f.firstByteMs))), fullTotalMs: ms(median(cold.full.map((f) => f.totalMs))), tailFirstByteMs: ms(median(cold.tail)) },
  laterRequests: { fullFirstByteMs: ms(median(warm.full.map((f) => f.firstByteMs))), fullTotalMs: ms(fullMs), tailFirstByteMs: ms(median(warm.tail)) },
  throughputMBps: +(plain.length / 1e6 / (fullMs / 1000)).toFixed(1),
  realtimeFactor: Math.round((MINUTES * 60_000) / fullMs),
  decryptFromZeroWouldAddMs: ms(median(skip)),
};
console.log(`${MINUTES}-minute recording: ${result.chunks} chunks, ${(result.bytes / 1e6).toFixed(2)} MB, ${kind} store, medians of ${RUNS}`);
console.log(`  first request:  HEAD ${result.firstRequest.headMs} ms; whole file first byte ${result.firstRequest.fullFirstByteMs} ms, done ${result.firstRequest.fullTotalMs} ms; ${TAIL} first byte ${result.firstRequest.tailFirstByteMs} ms`);
console.log(`  later requests: whole file first byte ${result.laterRequests.fullFirstByteMs} ms, done ${result.laterRequests.fullTotalMs} ms (${result.throughputMBps} MB/s, ${result.realtimeFactor}x real time); ${TAIL} first byte ${result.laterRequests.tailFirstByteMs} ms`);
console.log(`  ${TAIL} from chunk 0 instead would add ${result.decryptFromZeroWouldAddMs} ms`);
console.log(JSON.stringify(result));
await rig.close();
await s3?.close();
process.exit(0);
