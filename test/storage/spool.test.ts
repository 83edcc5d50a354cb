/** The spool: durable local queue in front of a store (filesystem and real s3rver, outage and restart). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { createFsStore } from '../../src/storage/fs-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { openSpool } from '../../src/storage/spool.js';
import { walkFiles } from '../../src/storage/fs-util.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

const log = createLogger('silent');

async function tempDir(tag: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `monologue-${tag}-`));
}

/** Bytes that look like AES-GCM output (random), never "OggS". */
function ciphertext(n: number): Buffer {
  const b = randomBytes(n);
  if (b.subarray(0, 4).toString('latin1') === 'OggS') b[0] = 0;
  return b;
}

describe('spool over the filesystem store', () => {
  test('uploads and empties itself; spool files hold exactly the bytes handed in', async () => {
    const root = await tempDir('spool');
    try {
      const store = createFsStore(path.join(root, 'store'));
      const spoolDir = path.join(root, 'spool');
      // Capture the spool file while the upload is held back, to compare it with the input.
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      const gated = { ...store, put: async (k: string, b: Buffer) => { await gate; return store.put(k, b); } };
      const spool = await openSpool({ dir: spoolDir, store: gated, log, minBackoffMs: 10, maxBackoffMs: 50 });
      const bodies = new Map<string, Buffer>();
      for (let i = 0; i < 20; i++) bodies.set(`rec/R1/chunk-${String(i).padStart(6, '0')}`, ciphertext(100 + i * 37));
      bodies.set('rec/R1/manifest.json', ciphertext(64));
      for (const [k, b] of bodies) await spool.enqueue(k, b);
      assert.equal(spool.pending, bodies.size);
      for (const [k, b] of bodies) {
        const onDisk = await readFile(path.join(spoolDir, 'q', ...k.split('/')));
        assert.ok(onDisk.equals(b), `spool file for ${k} is the exact ciphertext`);
        assert.equal((await stat(path.join(spoolDir, 'q', ...k.split('/')))).mode & 0o777, 0o600);
      }
      release();
      await spool.drain(5000);
      assert.equal(spool.pending, 0);
      assert.equal(spool.stats.uploaded, bodies.size);
      for (const [k, b] of bodies) assert.ok((await store.get(k)).equals(b));
      assert.deepEqual(await walkFiles(spoolDir), [], 'spool folder empty');
      await spool.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('same key enqueued twice: the newer bytes win', async () => {
    const root = await tempDir('spool');
    try {
      const store = createFsStore(path.join(root, 'store'));
      const spool = await openSpool({ dir: path.join(root, 'spool'), store, log, minBackoffMs: 10 });
      for (let i = 0; i < 10; i++) await spool.enqueue('rec/R2/manifest.json', Buffer.from([i]));
      await spool.drain(5000);
      assert.deepEqual(await store.get('rec/R2/manifest.json'), Buffer.from([9]));
      await spool.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('drain rejects on timeout; close keeps files; enqueue after close is refused', async () => {
    const root = await tempDir('spool');
    try {
      const store = createFsStore(path.join(root, 'store'));
      const failing = { ...store, put: async () => { throw new Error('down'); } };
      const spool = await openSpool({ dir: path.join(root, 'spool'), store: failing, log, minBackoffMs: 5, maxBackoffMs: 20 });
      await spool.enqueue('rec/R3/chunk-000000', Buffer.from('x'));
      await assert.rejects(spool.drain(200), (e: unknown) => (e as { code?: string }).code === 'SPOOL_DRAIN_TIMEOUT');
      assert.ok(spool.stats.failed >= 3, `retried (${spool.stats.failed} failures)`);
      await spool.close();
      await assert.rejects(spool.enqueue('rec/R3/chunk-000001', Buffer.from('y')), (e: unknown) => (e as { code?: string }).code === 'SPOOL_CLOSED');
      assert.deepEqual(await walkFiles(path.join(root, 'spool')), ['q/rec/R3/chunk-000000']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('spool over S3 (s3rver)', () => {
  let s3: S3TestServer;
  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => s3.close());

  const s3store = () =>
    createS3Store({
      endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, forcePathStyle: true,
      accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, requestTimeoutMs: 1000,
    });

  test('outage: enqueue still resolves, uploads fail and retry, everything arrives after start()', async () => {
    const root = await tempDir('spool');
    try {
      const store = s3store();
      const spool = await openSpool({ dir: root, store, log, minBackoffMs: 50, maxBackoffMs: 400 });
      await s3.stop();
      const bodies = new Map<string, Buffer>();
      for (let i = 0; i < 30; i++) bodies.set(`rec/OUT/chunk-${String(i).padStart(6, '0')}`, ciphertext(2000 + i));
      // The store stays down until every enqueue has resolved: an enqueue that waited on the store would never return.
      for (const [k, b] of bodies) await spool.enqueue(k, b);
      const failedKeys = new Set<string>();
      await new Promise<void>((resolve) => {
        const onFailed = (key: string) => {
          failedKeys.add(key);
          if (failedKeys.size === bodies.size) {
            spool.off('failed', onFailed);
            resolve();
          }
        };
        spool.on('failed', onFailed);
      });
      assert.equal(spool.stats.uploaded, 0);
      assert.ok(spool.stats.failed >= bodies.size, `failures counted (${spool.stats.failed})`);
      assert.equal(spool.pending, bodies.size);
      assert.equal((await walkFiles(path.join(root, 'q'))).length, bodies.size, 'nothing lost while down');
      await s3.start();
      await spool.drain(10_000);
      for (const [k, b] of bodies) assert.ok((await store.get(k)).equals(b), `${k} stored with the right bytes`);
      assert.deepEqual(await walkFiles(root), [], 'spool folder empty');
      await spool.close();
    } finally {
      await s3.start();
      await rm(root, { recursive: true, force: true });
    }
  });

  test('crash/restart: a spool reopened over leftover files uploads them and leaves no orphans', async () => {
    const root = await tempDir('spool');
    try {
      const store = s3store();
      await s3.stop();
      const first = await openSpool({ dir: root, store, log, minBackoffMs: 50, maxBackoffMs: 200 });
      const bodies = new Map<string, Buffer>();
      for (let i = 0; i < 10; i++) bodies.set(`rec/CR/chunk-${String(i).padStart(6, '0')}`, ciphertext(500));
      bodies.set('rec/CR/manifest.json', ciphertext(80));
      for (const [k, b] of bodies) await first.enqueue(k, b);
      await first.close(); // "crash": never drained
      assert.equal((await walkFiles(path.join(root, 'q'))).length, bodies.size);
      // A write torn by the crash (temp file, enqueue never resolved) must not be uploaded.
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path.join(root, 'tmp', 'torn.tmp'), ciphertext(10));
      await s3.start();
      const second = await openSpool({ dir: root, store, log, minBackoffMs: 50, maxBackoffMs: 200 });
      assert.equal(second.stats.recovered, bodies.size);
      await second.drain(10_000);
      for (const [k, b] of bodies) assert.ok((await store.get(k)).equals(b));
      assert.deepEqual((await store.list('rec/CR/')).length, bodies.size);
      assert.deepEqual(await walkFiles(root), [], 'no orphan files');
      await second.close();
    } finally {
      await s3.start();
      await rm(root, { recursive: true, force: true });
    }
  });

  test('nothing in the spool or the bucket starts with OggS', async () => {
    const files = await walkFiles(s3.dir);
    assert.ok(files.length > 0);
    for (const f of files) {
      const head = (await readFile(path.join(s3.dir, f))).subarray(0, 4).toString('latin1');
      assert.notEqual(head, 'OggS', f);
    }
  });
});
