/**
 * No plaintext on disk while streaming (DESIGN §4.4): a slow reader holds a media stream open in the
 * middle of a recording, and meanwhile no file in the service's data folder or temp folder holds an Ogg
 * page, and nothing new under the system temp folder holds this recording's audio.
 *
 * "Mid-file" is made certain, not hoped for: the test holds the store's read of chunk 4 until it has
 * looked, so the server has decrypted and sent chunks 0-3 and not yet seen the rest. That also proves the
 * stream is a stream: the first four chunks reached the client before the fifth was even read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectChunk } from '../../src/crypto/chunk-aead.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import { until } from '../helpers/until.js';
import { startApiRig, type ApiRig, type SeededOwner } from './fixture.js';

// Every temp file this process makes (the service runs in it) goes to a folder of its own, scanned whole.
const systemTmp = tmpdir();
const before0 = new Set(readdirSync(systemTmp));
const privateTmp = mkdtempSync(join(systemTmp, 'monologue-rec-tmp-'));
process.env.TMPDIR = privateTmp;

let rig: ApiRig;
let owner: SeededOwner;

before(async () => {
  rig = await startApiRig();
  owner = await rig.seedOwner('+15550300001', { calls: 1, seconds: 8, toneHz: 1234 });
});
after(async () => {
  await rig?.close();
  rmSync(privateTmp, { recursive: true, force: true });
});

/** Files under `dir` containing `needle`; files that vanish or cannot be read are passed over. */
function holders(dir: string, needle: Buffer): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      try {
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && st.size < 256 * 1024 * 1024 && readFileSync(p).includes(needle)) hits.push(p);
      } catch {
        // gone or unreadable: another process's
      }
    }
  };
  walk(dir);
  return hits;
}

test('while a slow reader holds the stream mid-file, no plaintext is on disk', async () => {
  const rec = owner.recordings[0]!;
  assert.ok(rec.chunkCount >= 8);
  const starts: number[] = [];
  for (let i = 0, at = 0; i < rec.chunkCount; i++) {
    starts.push(at);
    at += inspectChunk(await rig.service.objects.get(objectKeys.chunk(rec.id, i))).length;
  }

  // Hold the service's read of chunk 4 until the scan is done.
  const held = objectKeys.chunk(rec.id, 4);
  const store = rig.service.objects;
  const get = store.get.bind(store);
  let reached!: () => void;
  const reachedP = new Promise<void>((r) => (reached = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  store.get = async (key) => {
    if (key === held) {
      reached();
      await released;
    }
    return get(key);
  };
  try {
    const g = await rig.request('POST', `/v1/recordings/${rec.id}/grants`, { token: owner.token, body: { purpose: 'download' } });
    const { url } = (await g.json()) as { url: string };
    const req = http.get(new URL(url.slice(1), rig.url));
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    assert.equal(res.statusCode, 200);
    const parts: Buffer[] = [];
    let got = 0;
    res.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
    });
    await reachedP;
    // Chunks 0-3 arrive, less the one byte held back until the bytes served are counted (media.ts).
    await until('the client has chunks 0-3', () => got === starts[4]! - 1, 10_000, 10);
    res.pause(); // the slow reader

    assert.deepEqual(holders(privateTmp, Buffer.from('OggS')), [], 'no Ogg page in the temp folder or the data folder below it');
    assert.ok(rig.service.config.dataDir.startsWith(privateTmp), 'the data folder was scanned with it');
    const sample = rec.ogg.subarray(starts[2]! + 100, starts[2]! + 164);
    const fresh = readdirSync(systemTmp).filter((n) => !before0.has(n) && join(systemTmp, n) !== privateTmp);
    for (const n of fresh) assert.deepEqual(holders(join(systemTmp, n), sample), [], `${n} holds this recording's audio`);

    release();
    res.resume();
    await once(res, 'end');
    assert.deepEqual(Buffer.concat(parts), rec.ogg, 'the whole file once the read goes on');
  } finally {
    release();
    store.get = get;
  }
});
