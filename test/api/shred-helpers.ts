/** Shared by the shred, delete-me and retention tests: 404 snapshots, the operator CLI, backups and decryption attempts. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ChunkOpener, decodeSecrets, openStream } from '../../src/crypto/chunk-aead.js';
import { openKeyring } from '../../src/crypto/kek.js';
import { MonologueError } from '../../src/errors.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import { kekDir, spoolDir } from '../../src/recordings/storage-setup.js';
import { walkFiles } from '../../src/storage/fs-util.js';
import type { ApiRig } from './fixture.js';

export const randomRecId = () => `rec_${randomBytes(16).toString('base64url')}`;
export const randomGrant = () => `mlg_${randomBytes(32).toString('base64url')}`;

export interface Snapshot {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Status, headers (but date) and body: what two 404s must share byte for byte. */
export async function snapshot(res: Response): Promise<Snapshot> {
  const body = await res.text();
  return { status: res.status, headers: Object.fromEntries([...res.headers].filter(([k]) => k !== 'date')), body };
}

/** `path` with the shredded id answers exactly what the same path with a random id answers. */
export async function assertSameAsMissing(rig: ApiRig, method: string, path: (id: string) => string, id: string, missing: string, opts: { token?: string; body?: unknown } = {}): Promise<void> {
  const a = await snapshot(await rig.request(method, path(id), opts));
  const b = await snapshot(await rig.request(method, path(missing), opts));
  assert.equal(a.status, 404, `${method} ${path('{id}')}: ${a.status} ${a.body}`);
  assert.deepEqual(a, b, `${method} ${path('{id}')}: same answer as for a missing id`);
}

/** The operator CLI against the rig's data folder and database (as test/e2e/recording-ops.test.ts runs it). */
export function cli(rig: ApiRig, env: Record<string, string>, ...args: string[]) {
  const c = rig.service.config;
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: { ...process.env, MONOLOGUE_DATA_DIR: c.dataDir, DATABASE_URL: c.database.url, LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
  });
}

/** A copy of every object of the store, as a backup would hold it. */
export async function backupStore(rig: ApiRig): Promise<Map<string, Buffer>> {
  const copy = new Map<string, Buffer>();
  for (const key of await rig.service.objects.list('')) copy.set(key, await rig.service.objects.get(key));
  return copy;
}

/** The sealed chunks of one recording in a backup, in index order. */
export function chunksOf(backup: Map<string, Buffer>, recordingId: string): Buffer[] {
  return [...backup.keys()]
    .filter((k) => k.startsWith(objectKeys.prefix(recordingId)) && k !== objectKeys.manifest(recordingId))
    .sort()
    .map((k) => backup.get(k)!);
}

export async function recordingRow(rig: ApiRig, id: string) {
  return rig.service.db.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** Decrypts a recording's chunks from a backup with the key the database holds now (throws when there is none). */
export async function decryptFromBackup(rig: ApiRig, backup: Map<string, Buffer>, id: string): Promise<Buffer> {
  const row = await recordingRow(rig, id);
  if (!row.wrapped_key || !row.kek_id) throw new MonologueError('RECORDING_SHREDDED', 'no key');
  const keyring = openKeyring(kekDir(rig.service.config), { create: false });
  return openStream(id, decodeSecrets(keyring.unwrap({ kekId: row.kek_id, blob: row.wrapped_key }, id)), chunksOf(backup, id));
}

/**
 * Tries everything the system still holds on every backed-up chunk of a shredded recording: every wrapped
 * key left in the database, under every KEK of the keyring, unwrapped for the shredded id (the wrap binds
 * its recording: refused) and for its own recording (then its data key tried on each chunk: refused).
 * Returns how many attempts were made; throws if any one of them opened a chunk.
 */
export async function assertUndecryptable(rig: ApiRig, backup: Map<string, Buffer>, id: string): Promise<number> {
  const chunks = chunksOf(backup, id);
  assert.ok(chunks.length > 0, 'the backup holds chunks of the recording');
  const row = await recordingRow(rig, id);
  assert.equal(row.wrapped_key, null);
  assert.equal(row.kek_id, null);
  const keyring = openKeyring(kekDir(rig.service.config), { create: false });
  const wrapped = await rig.service.db.db.selectFrom('recordings').select(['id', 'wrapped_key', 'kek_id']).where('wrapped_key', 'is not', null).execute();
  assert.ok(wrapped.length > 0, 'other recordings still hold keys to try');
  let attempts = 0;
  for (const w of wrapped) {
    for (const kekId of keyring.ids()) {
      attempts++;
      assert.throws(() => keyring.unwrap({ kekId, blob: w.wrapped_key! }, id), (e: MonologueError) => e.code === 'KEY_UNWRAP_FAILED', `${w.id}'s key unwraps for ${id} under ${kekId}`);
      let secrets;
      try {
        secrets = decodeSecrets(keyring.unwrap({ kekId, blob: w.wrapped_key! }, w.id));
      } catch {
        continue; // wrapped under another KEK
      }
      for (const chunk of chunks) {
        attempts++;
        assert.throws(() => new ChunkOpener(id, secrets).open(chunk), (e: MonologueError) => e.code === 'CHUNK_TAMPERED', `${w.id}'s data key opened a chunk of ${id}`);
      }
    }
  }
  return attempts;
}

/** Spool files (relative keys) under a recording's prefix. */
export async function spooledOf(rig: ApiRig, id: string): Promise<string[]> {
  const q = join(resolve(spoolDir(rig.service.config)), 'q');
  if (!existsSync(q)) return [];
  return (await walkFiles(q)).filter((k) => k.startsWith(objectKeys.prefix(id)));
}
