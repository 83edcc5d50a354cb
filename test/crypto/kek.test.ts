import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openKeyring, retireKek, rotateKeyring, type WrappedKey } from '../../src/crypto/kek.js';

function kekDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'kek-')), 'keys', 'kek');
}

function code(c: string, message?: RegExp) {
  return (e: Error & { code?: string }) => {
    assert.equal(e.code, c, `expected ${c}, got ${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  };
}

test('first start creates one KEK, 0600 in a 0700 folder, named by current', () => {
  const dir = kekDir();
  const ring = openKeyring(dir);
  assert.match(ring.currentId, /^kek_[0-9a-f]{8}$/);
  assert.deepEqual(ring.ids(), [ring.currentId]);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const file = join(dir, `${ring.currentId}.key`);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'current')).mode & 0o777, 0o600);
  assert.equal(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64').length, 32);
  assert.equal(readFileSync(join(dir, 'current'), 'utf8').trim(), ring.currentId);
  // Opening again reuses it.
  assert.equal(openKeyring(dir).currentId, ring.currentId);
});

test('wrap/unwrap round trip; the context is bound; an edited blob fails', () => {
  const ring = openKeyring(kekDir());
  const key = randomBytes(55);
  const w = ring.wrap(key, 'rec_1');
  assert.equal(w.kekId, ring.currentId);
  assert.match(w.blob, /^[A-Za-z0-9_-]+$/);
  assert.equal(Buffer.from(w.blob, 'base64url').length, 12 + 16 + 55);
  assert.deepEqual(ring.unwrap(w, 'rec_1'), key);
  assert.throws(() => ring.unwrap(w, 'rec_2'), code('KEY_UNWRAP_FAILED'));
  const b = Buffer.from(w.blob, 'base64url');
  b[b.length - 1] = (b[b.length - 1] as number) ^ 1;
  assert.throws(() => ring.unwrap({ ...w, blob: b.toString('base64url') }, 'rec_1'), code('KEY_UNWRAP_FAILED'));
  assert.throws(() => ring.unwrap({ kekId: '../../etc/passwd', blob: w.blob }, 'rec_1'), code('KEY_UNWRAP_FAILED'));
  assert.throws(() => ring.unwrap({ kekId: w.kekId, blob: 'AAAA' }, 'rec_1'), code('KEY_UNWRAP_FAILED'));
});

test('rotate, rewrap, retire: old keys unwrap until their KEK is retired', () => {
  const dir = kekDir();
  const ring = openKeyring(dir);
  const first = ring.currentId;
  const key = randomBytes(32);
  const old: WrappedKey = ring.wrap(key, 'rec_a');
  const stranded: WrappedKey = ring.wrap(randomBytes(32), 'rec_b');

  const second = rotateKeyring(dir);
  assert.notEqual(second, first);
  assert.equal(ring.currentId, second, 'a keyring already open sees the rotation');
  assert.deepEqual(ring.ids(), [first, second].sort());
  assert.ok(ring.has(first) && ring.has(second) && !ring.has('kek_00000000') && !ring.has('nonsense'));
  assert.deepEqual(ring.unwrap(old, 'rec_a'), key, 'keys wrapped by the old KEK still unwrap');

  const rewrapped = ring.wrap(ring.unwrap(old, 'rec_a'), 'rec_a');
  assert.equal(rewrapped.kekId, second);
  assert.throws(() => retireKek(dir, second), code('KEK_CURRENT', /rotate first/));
  retireKek(dir, first);
  assert.deepEqual(ring.ids(), [second]);
  assert.ok(!ring.has(first));
  assert.deepEqual(ring.unwrap(rewrapped, 'rec_a'), key);
  assert.throws(() => ring.unwrap(old, 'rec_a'), code('KEK_MISSING', new RegExp(first)));
  assert.throws(() => ring.unwrap(stranded, 'rec_b'), code('KEK_MISSING'));
  assert.throws(() => retireKek(dir, first), code('KEK_MISSING'));
  assert.equal(openKeyring(dir).currentId, second);
});

test('fail closed: no keyring with create: false, exposed files, damaged current', () => {
  const missing = kekDir();
  assert.throws(() => openKeyring(missing, { create: false }), code('KEK_UNAVAILABLE', /restore/));

  const dir = kekDir();
  const ring = openKeyring(dir);
  const file = join(dir, `${ring.currentId}.key`);
  chmodSync(file, 0o644);
  assert.throws(() => openKeyring(dir), code('KEK_UNAVAILABLE', /chmod 600/));
  assert.throws(() => ring.wrap(randomBytes(32), 'r'), code('KEK_UNAVAILABLE', /chmod 600/));
  chmodSync(file, 0o600);
  chmodSync(dir, 0o755);
  assert.throws(() => openKeyring(dir), code('KEK_UNAVAILABLE', /chmod 700/));
  chmodSync(dir, 0o700);

  writeFileSync(file, 'dG9vIHNob3J0\n', { mode: 0o600 });
  assert.throws(() => openKeyring(dir), code('KEK_UNAVAILABLE', /32 bytes/));

  // KEK files but no `current`: refuse rather than start a new keyring beside them.
  const d2 = kekDir();
  openKeyring(d2);
  unlinkSync(join(d2, 'current'));
  assert.throws(() => openKeyring(d2), code('KEK_UNAVAILABLE', /current/));
  writeFileSync(join(d2, 'current'), '../x\n', { mode: 0o600 });
  assert.throws(() => openKeyring(d2), code('KEK_UNAVAILABLE', /not a KEK id/));

  // `current` naming a file that is gone.
  const d3 = kekDir();
  const r3 = openKeyring(d3);
  unlinkSync(join(d3, `${r3.currentId}.key`));
  assert.throws(() => openKeyring(d3), code('KEK_MISSING'));
  assert.throws(() => r3.wrap(randomBytes(32), 'r'), code('KEK_MISSING'));
});

test('an existing empty 0700 folder gets its first KEK; rotate on a fresh folder works', () => {
  const dir = kekDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  assert.equal(openKeyring(dir).ids().length, 1);
  const fresh = kekDir();
  const id = rotateKeyring(fresh);
  assert.equal(openKeyring(fresh, { create: false }).currentId, id);
});
