import { createHash } from 'node:crypto';
import type { Keyring } from '../crypto/kek.js';
import { decodeSecrets, openStream } from '../crypto/chunk-aead.js';
import type { ObjectStore } from '../storage/object-store.js';
import { MonologueError } from '../errors.js';
import type { AuditAction, AuditLog } from '../audit/audit-log.js';
import { objectKeys, type RecordingCatalog, type RecordingRow } from './catalog.js';
import type { Manifest } from './recordings.js';

export interface VerifyReport {
  recordingId: string;
  state: RecordingRow['state'];
  chunks: number;
  /** Complete: final chunk present, every chunk authentic and in order, manifest hashes match. */
  complete: boolean;
  bytes: number;
}

/**
 * Reads recordings back for operators: every chunk authenticated, in order. A recording marked
 * `incomplete` (its process died mid-call) has no final chunk: it decrypts up to its last stored chunk,
 * and the result is still a valid Ogg Opus file that ends early (no end-of-stream page).
 */
export class Archive {
  constructor(
    private readonly catalog: RecordingCatalog,
    private readonly store: ObjectStore,
    private readonly keyring: Keyring,
    private readonly audit: AuditLog,
  ) {}

  async decrypt(id: string, actor: string): Promise<Buffer> {
    return this.audited(id, actor, 'recording.decrypt', async () => {
      const { row, plaintext } = await this.open(id);
      return { result: plaintext, detail: `${row.chunkCount} chunks` };
    });
  }

  async verify(id: string, actor: string): Promise<VerifyReport> {
    return this.audited(id, actor, 'recording.verify', async () => ({ result: await this.check(id), detail: 'ok' }));
  }

  /**
   * Every attempt is in the audit log, failed ones too, with the error's code: probing recordings
   * that do not open (wrong id, shredded, tampered) leaves a trace like reading them does.
   */
  private async audited<T>(id: string, actor: string, action: AuditAction, run: () => Promise<{ result: T; detail: string }>): Promise<T> {
    let outcome: { result: T; detail: string };
    try {
      outcome = await run();
    } catch (err) {
      const code = err instanceof MonologueError ? err.code : 'FAILED';
      await this.audit.append({ actor, action, recordingId: id, userId: (await this.catalog.get(id).catch(() => undefined))?.userId, detail: `failed: ${code}` });
      throw err;
    }
    await this.audit.append({ actor, action, recordingId: id, userId: (await this.catalog.get(id))?.userId, detail: outcome.detail });
    return outcome.result;
  }

  private async check(id: string): Promise<VerifyReport> {
    const { row, plaintext, chunkBytes } = await this.open(id);
    if (row.state === 'complete') {
      const manifest = JSON.parse((await this.store.get(objectKeys.manifest(id))).toString('utf8')) as Manifest;
      const hashes = chunkBytes.map((b) => createHash('sha256').update(b).digest('hex'));
      if (manifest.chunkCount !== chunkBytes.length || manifest.chunks.some((h, i) => h !== hashes[i])) {
        throw new MonologueError('MANIFEST_MISMATCH', `recording ${id}: the stored chunks do not match the manifest`);
      }
    }
    return { recordingId: id, state: row.state, chunks: chunkBytes.length, complete: row.state === 'complete', bytes: plaintext.length };
  }

  private async open(id: string): Promise<{ row: RecordingRow; plaintext: Buffer; chunkBytes: Buffer[] }> {
    const row = await this.catalog.get(id);
    if (!row) throw new MonologueError('RECORDING_NOT_FOUND', `no recording with id ${id}`);
    if (!row.wrappedKey || !row.kekId) {
      throw new MonologueError(
        'RECORDING_SHREDDED',
        `recording ${id} was crypto-shredded (deleted by its owner or their account deletion, or by retention): its data key no longer exists, so neither its stored chunks nor any backup of them can be decrypted, by this tool or any other; there is nothing to recover. The audit log says who and when: look for recording.delete or recording.retention-shred entries with this recording id`,
      );
    }
    if (row.state === 'recording') throw new MonologueError('RECORDING_LIVE', `recording ${id} is still being recorded`);
    if (row.state === 'failed' && row.chunkCount === 0) throw new MonologueError('RECORDING_EMPTY', `recording ${id} failed before any audio was stored`);
    const secrets = decodeSecrets(this.keyring.unwrap({ kekId: row.kekId, blob: row.wrappedKey }, id));
    const keys = (await this.store.list(objectKeys.prefix(id))).filter((k) => k !== objectKeys.manifest(id));
    const chunkBytes = await Promise.all(keys.map((k) => this.store.get(k)));
    const plaintext = openStream(id, secrets, chunkBytes, { allowUnfinished: row.state !== 'complete' });
    return { row, plaintext, chunkBytes };
  }
}
