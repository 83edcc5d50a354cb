import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterpartAction, ensureAnnounceFile, loadConsentText } from '../../src/recordings/consent-policy.js';
import { loadConfig } from '../../src/config/load.js';
import { goertzel } from '../helpers/tone.js';

test('counterpart policy: the longest matching E.164 prefix wins; no match and anonymous take the default', () => {
  const policy = { default: 'record' as const, rules: [{ prefix: '+1', action: 'skip' as const }, { prefix: '+1415', action: 'announce' as const }, { prefix: '+1415555', action: 'record' as const }] };
  assert.equal(counterpartAction(policy, '+14155550100'), 'record');
  assert.equal(counterpartAction(policy, '+14151230100'), 'announce');
  assert.equal(counterpartAction(policy, '+12125550100'), 'skip');
  assert.equal(counterpartAction(policy, '+4930123456'), 'record');
  assert.equal(counterpartAction(policy, 'anonymous'), 'record');
  assert.equal(counterpartAction({ default: 'skip', rules: [] }, 'anonymous'), 'skip');
});

test('the shipped defaults: consent v1 with its text, record by default, announce for the listed two-party-consent NANP area codes', () => {
  const config = loadConfig({ env: {} });
  const text = loadConsentText(config.recording.consent);
  assert.equal(text.version, 'v1');
  assert.ok(text.text.length > 50);
  assert.equal(text.publishedAt, '2026-01-01T00:00:00.000Z');
  assert.equal(config.recording.counterpartPolicy.default, 'record');
  assert.equal(counterpartAction(config.recording.counterpartPolicy, '+14155550100'), 'announce');
  assert.equal(counterpartAction(config.recording.counterpartPolicy, '+15550002222'), 'record');
  assert.throws(() => loadConsentText({ ...config.recording.consent, text: '', textFile: '' }), /textFile/);
  assert.throws(() => loadConsentText({ ...config.recording.consent, publishedAt: 'yesterday' }), /publishedAt/);
});

test('the generated announcement: a WAV of three 1 kHz beeps, written once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'announce-'));
  try {
    const path = ensureAnnounceFile(join(dir, 'sub', 'announce.wav'));
    const wav = readFileSync(path);
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.readUInt32LE(24), 8000);
    const pcm = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.length));
    assert.equal(pcm.length, 8000 * 1.5);
    const beep = pcm.subarray(0, 2000);
    assert.ok(goertzel(beep, 1000, 8000) > 100 * goertzel(beep, 800, 8000), 'a 1 kHz beep');
    assert.equal(ensureAnnounceFile(path), path, 'an existing file is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
