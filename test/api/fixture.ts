import { createHash } from 'node:crypto';
import opus from '@discordjs/opus';
import { OggOpusMuxer } from '../../src/recorder/ogg-opus.js';
import { ChunkSealer, encodeSecrets, newRecordingSecrets } from '../../src/crypto/chunk-aead.js';
import { openKeyring } from '../../src/crypto/kek.js';
import { kekDir } from '../../src/recordings/storage-setup.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import type { Manifest } from '../../src/recordings/recordings.js';
import { newId } from '../../src/ids.js';
import { sine } from '../helpers/tone.js';
import { startTestService, type TestService, type TestServiceOptions } from '../helpers/service.js';

/**
 * Owner-API test data made by the real modules (no rows written by hand): users with tokens, finished
 * calls, recordings whose chunks are real Opus tones sealed with their own data key and stored through
 * the object store, and ledger entries. Each recording's tone frequency is recorded so a test can check
 * that what it downloads is that recording.
 */
export interface SeededRecording {
  id: string;
  callId: string;
  toneHz: number;
  seconds: number;
  /** The plaintext Ogg Opus file the chunks seal (what a full download must return). */
  ogg: Buffer;
  chunkCount: number;
}

export interface SeededOwner {
  id: string;
  phone: string;
  token: string;
  sessionId: string;
  calls: string[];
  recordings: SeededRecording[];
  /** Ledger entry ids of the user's call credits. */
  ledger: string[];
}

export interface ApiRig {
  service: TestService;
  /** Base URL ending in `/`. */
  url: string;
  /** The server's clock offset (ms) the test can move: grants expire by it. */
  clock: { offsetMs: number };
  seedOwner(phone: string, opts?: { calls?: number; toneHz?: number; seconds?: number; creditMicros?: number }): Promise<SeededOwner>;
  /** fetch against the service with an optional bearer token. */
  request(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

/** A whole service (SQLite by default, or PostgreSQL) with a movable clock for the API. */
export async function startApiRig(opts: Partial<TestServiceOptions> = {}): Promise<ApiRig> {
  const clock = { offsetMs: 0 };
  const service = await startTestService({ trunkPort: 5999, ...opts, now: () => Date.now() + clock.offsetMs });
  const keyring = () => openKeyring(kekDir(service.config), { create: true });
  let toneStep = 0;
  const rig: ApiRig = {
    service,
    url: service.url,
    clock,
    async seedOwner(phone, o = {}) {
      const user = await service.users.create({ phone, enrolled: true, consentVersion: 'v1' });
      const t = await service.tokens.issue(user.id, 3_600_000);
      const owner: SeededOwner = { id: user.id, phone, token: t.token, sessionId: t.sessionId, calls: [], recordings: [], ledger: [] };
      for (let i = 0; i < (o.calls ?? 2); i++) {
        const callId = newId('call');
        const started = Date.now() - 60_000 * (i + 1);
        await service.records.create({ id: callId, userId: user.id, direction: i % 2 ? 'inbound' : 'outbound', counterpart: `+1555${String(2000000 + toneStep).padStart(7, '0')}`, createdAt: started });
        await service.records.update(callId, { ringingAt: started + 1000, answeredAt: started + 2000, endedAt: started + 32_000, endReason: 'remote-hangup', sipStatus: 200 });
        owner.calls.push(callId);
        const toneHz = o.toneHz ?? 400 + 100 * (toneStep++ % 10);
        owner.recordings.push(await seedRecording(service, keyring(), user.id, callId, toneHz, o.seconds ?? 3));
        const credit = await service.ledger.credit({ userId: user.id, callId, type: 'call_credit', state: 'available', amountMicros: o.creditMicros ?? 4_000_000 });
        owner.ledger.push(credit.entry.id);
      }
      return owner;
    },
    async request(method, path, r = {}) {
      const headers: Record<string, string> = { ...r.headers };
      if (r.token !== undefined) headers.authorization = `Bearer ${r.token}`;
      if (r.body !== undefined) headers['content-type'] = 'application/json';
      return fetch(new URL(path.replace(/^\//, ''), service.url), { method, headers, ...(r.body !== undefined && { body: JSON.stringify(r.body) }) });
    },
    close: () => service.stop(),
  };
  return rig;
}

/** A complete recording of `seconds` of a pure tone, stored as the recorder would store it. */
async function seedRecording(service: TestService, keyring: ReturnType<typeof openKeyring>, userId: string, callId: string, toneHz: number, seconds: number): Promise<SeededRecording> {
  const id = newId('rec');
  const secrets = newRecordingSecrets();
  const wrapped = keyring.wrap(encodeSecrets(secrets), id);
  await service.catalog.create({ id, callId, userId, wrappedKey: wrapped.blob, kekId: wrapped.kekId });
  const pages: Buffer[] = [];
  const muxer = new OggOpusMuxer({ onPage: (p) => pages.push(Buffer.from(p)), maxPageSamples: 48000 });
  const encoder = new opus.OpusEncoder(48000, 1);
  const pcm = sine(toneHz, 48000, 48000 * seconds, 0.4);
  const chunks: Buffer[] = [];
  for (let off = 0; off < pcm.length; off += 960) {
    const frame = Buffer.from(pcm.buffer, pcm.byteOffset + off * 2, 960 * 2);
    muxer.write(encoder.encode(frame), 960);
    // A chunk per second, cut at a page boundary as the recorder does.
    if ((off / 960 + 1) % 50 === 0 && off + 960 < pcm.length) {
      muxer.flush();
      chunks.push(Buffer.concat(pages.splice(0)));
    }
  }
  muxer.end();
  chunks.push(Buffer.concat(pages.splice(0)));
  const sealer = new ChunkSealer(id, secrets);
  const hashes: string[] = [];
  for (const [i, c] of chunks.entries()) {
    const sealed = sealer.seal(c, i === chunks.length - 1);
    hashes.push(createHash('sha256').update(sealed.bytes).digest('hex'));
    await service.objects.put(objectKeys.chunk(id, sealed.index), sealed.bytes);
  }
  const manifest: Manifest = { version: 1, recordingId: id, chunkCount: chunks.length, durationMs: seconds * 1000, talkMs: seconds * 1000, complete: true, chunks: hashes };
  await service.objects.put(objectKeys.manifest(id), Buffer.from(JSON.stringify(manifest)));
  await service.catalog.finish(id, { state: 'complete', chunkCount: chunks.length, durationMs: seconds * 1000, talkMs: seconds * 1000 });
  return { id, callId, toneHz, seconds, ogg: Buffer.concat(chunks), chunkCount: chunks.length };
}
