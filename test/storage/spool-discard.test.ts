/** Spool.discard: a shredded recording's pending chunks leave the spool, safely against writes and uploads in flight. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { createFsStore } from '../../src/storage/fs-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { openSpool } from '../../src/storage/spool.js';
import { walkFiles } from '../../src/storage/fs-util.js';
import { until } from '../helpers/until.js';

const log = createLogger('silent');
const key = (rec: string, i: number) => `rec/${rec}/chunk-${String(i).padStart(6, '0')}`;

/** A filesystem store whose puts can be switched off (they throw) or held at a gate, and are counted per key. */
function controlledStore(dir: string) {
  const inner = createFsStore(dir);
  const puts = new Map<string, number>();
  const state = { down: false, gate: undefined as Promise<void> | undefined, started: [] as string[] };
  const store: ObjectStore = {
    ...inner,
    async put(k, b) {
      puts.set(k, (puts.get(k) ?? 0) + 1);
      state.started.push(k);
      if (state.gate) await state.gate;
      if (state.down) throw new Error('store down');
      return inner.put(k, b);
    },
  };
  return { store, inner, puts, state };
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'monologue-discard-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('discard drops the pending files of one prefix and cancels their retries; other keys still upload', async () => {
  await withRoot(async (root) => {
    const c = controlledStore(path.join(root, 'store'));
    c.state.down = true;
    const spool = await openSpool({ dir: path.join(root, 'spool'), store: c.store, log, minBackoffMs: 5, maxBackoffMs: 20 });
    for (let i = 0; i < 5; i++) await spool.enqueue(key('GONE', i), randomBytes(100));
    await spool.enqueue(`rec/GONE/manifest.json`, randomBytes(20));
    for (let i = 0; i < 3; i++) await spool.enqueue(key('KEEP', i), randomBytes(100));
    // Every key has failed at least once: they all wait on a retry timer.
    await until('every key tried once', () => new Set(c.state.started).size === 9, 5000, 5);
    assert.equal(spool.pending, 9);

    assert.equal(await spool.discard('rec/GONE/'), 6);
    assert.equal(spool.pending, 3, 'only the other recording is pending');
    const files = await walkFiles(path.join(root, 'spool', 'q'));
    assert.deepEqual(files.filter((f) => f.startsWith('rec/GONE/')), [], 'no spool file of the discarded prefix');
    assert.equal(files.length, 3);

    const putsAtDiscard = new Map(c.puts);
    c.state.down = false;
    await spool.drain(5000);
    // The kept keys retried after the discard on the same backoff: a retry of a discarded key would have run by now.
    for (let i = 0; i < 5; i++) assert.equal(c.puts.get(key('GONE', i)), putsAtDiscard.get(key('GONE', i)), `no retry of ${key('GONE', i)} after discard`);
    assert.deepEqual(await c.inner.list('rec/GONE/'), [], 'nothing of the discarded prefix reached the store');
    assert.equal((await c.inner.list('rec/KEEP/')).length, 3);
    assert.deepEqual(await walkFiles(path.join(root, 'spool')), []);
    await spool.close();

    // A reopened spool finds nothing of it to recover.
    const again = await openSpool({ dir: path.join(root, 'spool'), store: c.store, log });
    assert.equal(again.stats.recovered, 0);
    await again.close();
  });
});

test('an upload in flight: discard waits for it, then nothing retries and the caller can remove what landed', async () => {
  await withRoot(async (root) => {
    for (const outcome of ['lands', 'fails'] as const) {
      const c = controlledStore(path.join(root, `store-${outcome}`));
      let release: () => void = () => undefined;
      c.state.gate = new Promise<void>((r) => (release = r));
      const spool = await openSpool({ dir: path.join(root, `spool-${outcome}`), store: c.store, log, minBackoffMs: 5, maxBackoffMs: 20 });
      let failures = 0;
      spool.on('failed', () => failures++);
      await spool.enqueue(key('FLY', 0), randomBytes(64));
      await until('the upload is in flight', () => c.state.started.length === 1, 5000, 5);

      let settled = false;
      const discarding = spool.discard('rec/FLY/').then((n) => ((settled = true), n));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false, `${outcome}: discard waits while the upload is in flight`);
      assert.deepEqual(await walkFiles(path.join(root, `spool-${outcome}`, 'q')), [], `${outcome}: the spool file is already gone`);
      if (outcome === 'fails') c.state.down = true;
      release();
      assert.equal(await discarding, 1);
      assert.equal(spool.pending, 0);
      await spool.drain(1000);
      if (outcome === 'lands') {
        assert.deepEqual(await c.inner.list('rec/FLY/'), [key('FLY', 0)], 'the in-flight put landed: the caller deletes the prefix after discard');
        assert.equal(await c.inner.deletePrefix('rec/FLY/'), 1);
      }
      assert.equal(failures, 0, `${outcome}: a discarded upload that fails is not reported as a retry`);
      // Something else through the same spool: it uploads, and the discarded key is never put again.
      c.state.gate = undefined;
      c.state.down = false;
      await spool.enqueue(key('NEXT', 0), randomBytes(8));
      await spool.drain(5000);
      assert.equal(c.puts.get(key('FLY', 0)), 1, `${outcome}: exactly one put of the discarded key`);
      assert.deepEqual(await c.inner.list('rec/FLY/'), []);
      await spool.close();
    }
  });
});

test('a write still in progress is waited for and dropped; a key enqueued after discard is kept', async () => {
  await withRoot(async (root) => {
    const c = controlledStore(path.join(root, 'store'));
    c.state.down = true;
    const spool = await openSpool({ dir: path.join(root, 'spool'), store: c.store, log, minBackoffMs: 5, maxBackoffMs: 20 });
    const writing = spool.enqueue(key('W', 0), randomBytes(64));
    // Called before the write resolves: it must not miss the file the write is about to create.
    const n = await spool.discard('rec/W/');
    await writing;
    assert.equal(n, 1);
    assert.equal(spool.pending, 0);
    assert.deepEqual(await walkFiles(path.join(root, 'spool', 'q')), []);

    const body = randomBytes(32);
    await spool.enqueue(key('W', 1), body);
    c.state.down = false;
    await spool.drain(5000);
    assert.deepEqual(await c.inner.list('rec/W/'), [key('W', 1)]);
    assert.ok((await c.inner.get(key('W', 1))).equals(body));
    await spool.close();
  });
});

test('discard refuses the empty prefix and invalid prefixes', async () => {
  await withRoot(async (root) => {
    const spool = await openSpool({ dir: path.join(root, 'spool'), store: createFsStore(path.join(root, 'store')), log });
    await assert.rejects(spool.discard(''), { code: 'SPOOL_DISCARD_ALL' });
    await assert.rejects(spool.discard('../x'), { code: 'OBJECT_KEY_INVALID' });
    assert.equal(await spool.discard('rec/none/'), 0);
    await spool.close();
  });
});
