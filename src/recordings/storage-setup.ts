import { join, resolve } from 'node:path';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { openKeyring, type Keyring } from '../crypto/kek.js';
import type { ObjectStore } from '../storage/object-store.js';
import { createFsStore } from '../storage/fs-store.js';
import { createS3Store } from '../storage/s3-store.js';

/** Where recordings live, from config: the object store and the key-encryption keys. */
export function openObjectStore(config: Config): ObjectStore {
  const s = config.storage;
  if (s.kind === 'fs') return createFsStore(s.fsDir || join(resolve(config.dataDir), 'objects'));
  return createS3Store({
    ...(s.s3.endpoint && { endpoint: s.s3.endpoint }),
    region: s.s3.region,
    bucket: s.s3.bucket,
    forcePathStyle: s.s3.forcePathStyle,
    ...(s.s3.accessKeyId && { accessKeyId: s.s3.accessKeyId, secretAccessKey: s.s3.secretAccessKey }),
    requestTimeoutMs: s.s3.requestTimeoutMs,
  });
}

export function kekDir(config: Config): string {
  return config.recording.kekDir || join(resolve(config.dataDir), 'keys', 'kek');
}

export function spoolDir(config: Config): string {
  return config.storage.spoolDir || join(resolve(config.dataDir), 'spool');
}

/** The keyring, or undefined (logged) when it cannot be opened: recording then fails closed. */
export function openKeyringOrNone(config: Config, log: Logger): Keyring | undefined {
  try {
    return openKeyring(kekDir(config), { create: true });
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'no key-encryption key: calls will not be recorded');
    return undefined;
  }
}
