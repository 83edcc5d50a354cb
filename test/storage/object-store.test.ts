/** One contract, two stores: the filesystem store and the S3 store against a real s3rver on loopback. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MonologueError } from '../../src/errors.js';
import { createFsStore } from '../../src/storage/fs-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

function isCode(code: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MonologueError, `expected MonologueError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

const BAD_KEYS = [
  '', '/rec/a', 'rec/../x', '..', 'rec/a b', 'rec/ä', 'rec//a', 'rec/a/', 'rec/./a', 'rec\\a', 'a'.repeat(513),
  `rec/${'x'.repeat(256)}`, 'rec/+1555', 'rec/a?b',
];

function contract(name: string, open: () => Promise<{ store: ObjectStore; cleanup(): Promise<void> }>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await open());
    });
    after(async () => cleanup());

    test('ping', async () => {
      assert.equal(await store.ping(), true);
    });

    test('put / get round-trips binary bodies, overwrite replaces', async () => {
      const body = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x0d, 0x00, 0x4f, 0x67, 0x67, 0x53]);
      await store.put('rec/r1/chunk-000000', body);
      assert.deepEqual(await store.get('rec/r1/chunk-000000'), body);
      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await store.put('rec/r1/chunk-000000', every);
      assert.deepEqual(await store.get('rec/r1/chunk-000000'), every);
      await store.put('rec/r1/empty', Buffer.alloc(0));
      assert.equal((await store.get('rec/r1/empty')).length, 0);
    });

    test('1 MiB body round-trips', async () => {
      const big = randomBytes(1024 * 1024);
      await store.put('rec/big/chunk-000001', big);
      const got = await store.get('rec/big/chunk-000001');
      assert.equal(got.length, big.length);
      assert.ok(got.equals(big));
    });

    test('missing key → OBJECT_NOT_FOUND', async () => {
      await assert.rejects(store.get('rec/nope/chunk-000000'), isCode('OBJECT_NOT_FOUND'));
      await assert.rejects(store.get('rec'), isCode('OBJECT_NOT_FOUND'));
    });

    test('bad keys are rejected with OBJECT_KEY_INVALID', async () => {
      for (const k of BAD_KEYS) {
        await assert.rejects(store.put(k, Buffer.from('x')), isCode('OBJECT_KEY_INVALID'), `put ${k}`);
        await assert.rejects(store.get(k), isCode('OBJECT_KEY_INVALID'), `get ${k}`);
        await assert.rejects(store.delete(k), isCode('OBJECT_KEY_INVALID'), `delete ${k}`);
      }
      await assert.rejects(store.list('../'), isCode('OBJECT_KEY_INVALID'));
      await assert.rejects(store.deletePrefix('/rec'), isCode('OBJECT_KEY_INVALID'));
    });

    test('list is sorted, prefix-filtered (string prefix, not folder), paginated', async () => {
      const keys = ['rec/L/chunk-000003', 'rec/L/chunk-000001', 'rec/L/manifest.json', 'rec/L/chunk-000002', 'rec/L2/chunk-000000', 'rec/Lx'];
      for (const k of keys) await store.put(k, Buffer.from(k));
      assert.deepEqual(await store.list('rec/L/'), ['rec/L/chunk-000001', 'rec/L/chunk-000002', 'rec/L/chunk-000003', 'rec/L/manifest.json']);
      assert.deepEqual(await store.list('rec/L/chunk-'), ['rec/L/chunk-000001', 'rec/L/chunk-000002', 'rec/L/chunk-000003']);
      assert.deepEqual(await store.list('rec/L'), [...keys].sort());
      assert.deepEqual(await store.list('rec/none/'), []);
      assert.deepEqual(await store.list('zzz'), []);
      const all = await store.list('');
      assert.deepEqual(all, [...all].sort());
      for (const k of keys) assert.ok(all.includes(k));
    });

    test('delete is idempotent', async () => {
      await store.put('rec/d/chunk-000000', Buffer.from('a'));
      await store.delete('rec/d/chunk-000000');
      await assert.rejects(store.get('rec/d/chunk-000000'), isCode('OBJECT_NOT_FOUND'));
      await store.delete('rec/d/chunk-000000');
      await store.delete('rec/never/was');
      assert.deepEqual(await store.list('rec/d/'), []);
    });

    test('deletePrefix removes exactly the prefix and counts', async () => {
      for (let i = 0; i < 7; i++) await store.put(`rec/dp/chunk-${String(i).padStart(6, '0')}`, Buffer.from([i]));
      await store.put('rec/dp/manifest.json', Buffer.from('{}'));
      await store.put('rec/dpx/chunk-000000', Buffer.from('keep'));
      assert.equal(await store.deletePrefix('rec/dp/'), 8);
      assert.deepEqual(await store.list('rec/dp/'), []);
      assert.deepEqual(await store.get('rec/dpx/chunk-000000'), Buffer.from('keep'));
      assert.equal(await store.deletePrefix('rec/dp/'), 0);
    });
  });
}

contract('fs', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'monologue-fs-store-'));
  return { store: createFsStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

let s3: S3TestServer | undefined;
contract('s3 (s3rver)', async () => {
  s3 = await startS3Server();
  const store = createS3Store({
    endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, forcePathStyle: true,
    accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, requestTimeoutMs: 3000, listPageSize: 2,
  });
  const srv = s3;
  return { store, cleanup: () => srv.close() };
});

describe('fs store specifics', () => {
  test('folders 0700, files 0600, no temp files left', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'monologue-fs-store-'));
    try {
      const store = createFsStore(dir);
      await store.put('rec/m/chunk-000000', Buffer.from('x'));
      assert.equal((await stat(path.join(dir, 'objects', 'rec', 'm'))).mode & 0o777, 0o700);
      assert.equal((await stat(path.join(dir, 'objects', 'rec', 'm', 'chunk-000000'))).mode & 0o777, 0o600);
      const { readdir } = await import('node:fs/promises');
      assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
      await store.deletePrefix('rec/');
      assert.deepEqual(await readdir(path.join(dir, 'objects')), [], 'empty folders pruned');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('s3 store specifics', () => {
  test('an outage fails fast with STORAGE_UNAVAILABLE naming endpoint and bucket, never credentials', async () => {
    const srv = await startS3Server();
    try {
      const store = createS3Store({
        endpoint: srv.endpoint, region: srv.region, bucket: srv.bucket, forcePathStyle: true,
        accessKeyId: srv.accessKeyId, secretAccessKey: srv.secretAccessKey, requestTimeoutMs: 1000,
      });
      await srv.stop();
      const t0 = Date.now();
      const err = await store.put('rec/o/chunk-000000', Buffer.from('x')).then(() => undefined, (e: unknown) => e);
      assert.ok(Date.now() - t0 < 3000, 'fails fast');
      assert.ok(err instanceof MonologueError);
      assert.equal(err.code, 'STORAGE_UNAVAILABLE');
      assert.match(err.message, new RegExp(srv.endpoint.replace(/[.:/]/g, '\\$&')));
      assert.match(err.message, new RegExp(srv.bucket));
      assert.doesNotMatch(err.message, /S3RVER/, 'no credentials in errors');
      assert.equal(await store.ping(), false);
      await srv.start();
      assert.equal(await store.ping(), true);
      await store.put('rec/o/chunk-000000', Buffer.from('x'));
    } finally {
      await srv.close();
    }
  });

  test('wrong bucket: ping false, get → STORAGE_UNAVAILABLE', async () => {
    const srv = await startS3Server();
    try {
      const store = createS3Store({
        endpoint: srv.endpoint, region: srv.region, bucket: 'no-such-bucket', forcePathStyle: true,
        accessKeyId: srv.accessKeyId, secretAccessKey: srv.secretAccessKey,
      });
      assert.equal(await store.ping(), false);
      await assert.rejects(store.put('rec/x/chunk-000000', Buffer.from('x')), isCode('STORAGE_UNAVAILABLE'));
    } finally {
      await srv.close();
    }
  });
});
