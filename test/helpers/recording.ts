import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import opus from '@discordjs/opus';
import { openKeyring } from '../../src/crypto/kek.js';
import { Archive } from '../../src/recordings/archive.js';
import { kekDir } from '../../src/recordings/storage-setup.js';
import { objectKeys, type RecordingRow } from '../../src/recordings/catalog.js';
import type { Manifest } from '../../src/recordings/recordings.js';
import type { Service } from '../../src/service.js';
import { opusPackets } from './ogg.js';

/** Wait until the call's recording left the `recording` state. */
export async function waitForRecording(service: Service, callId: string, timeoutMs = 15_000): Promise<RecordingRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await service.catalog.byCall(callId);
    if (row && row.state !== 'recording') return row;
    if (Date.now() > deadline) throw new Error(`recording of ${callId} not finished: ${JSON.stringify(row)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A finished recording's manifest. The recording's row turns `complete` once its manifest is spooled, not
 * uploaded: reading the store at once races the spool's upload, so the spool is drained first.
 */
export async function readManifest(service: Service, recordingId: string): Promise<Manifest> {
  await service.spool.drain(20_000);
  return JSON.parse((await service.objects.get(objectKeys.manifest(recordingId))).toString('utf8')) as Manifest;
}

/** Decrypt a recording through the operator path and decode it to 48 kHz mono PCM. */
export async function decryptAndDecode(service: Service, recordingId: string): Promise<{ ogg: Buffer; packets: Buffer[]; pcm: Int16Array }> {
  await service.spool.drain(20_000);
  const archive = new Archive(service.catalog, service.objects, openKeyring(kekDir(service.config), { create: false }), service.audit);
  const ogg = await archive.decrypt(recordingId, 'test');
  const packets = opusPackets(ogg);
  const decoder = new opus.OpusEncoder(48000, 1);
  const pcm = Buffer.concat(packets.map((p) => decoder.decode(p)));
  return { ogg, packets, pcm: new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2) };
}

/** Every file below `dir`, with its bytes. */
export function filesBelow(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: p, bytes: readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}
