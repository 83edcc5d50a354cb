import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';

test('defaults load and validate', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.http.port, 8080);
  assert.deepEqual(c.media.trunkCodecs, ['PCMU', 'PCMA']);
});

test('file, then environment, then overrides win, in that order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ http: { port: 9000 }, sip: { trunk: { host: 'trunk.example' } } }));
  const c = loadConfig({
    file,
    env: { MONOLOGUE_SIP__TRUNK__HOST: '127.0.0.1', MONOLOGUE_MEDIA__TRUNK_CODECS: 'PCMA,opus', MONOLOGUE_DATA_DIR: '/tmp/x', DATABASE_URL: 'postgres://u@h/db' },
    overrides: { calls: { drainMs: 5 } },
  });
  assert.equal(c.http.port, 9000);
  assert.equal(c.sip.trunk.host, '127.0.0.1');
  assert.deepEqual(c.media.trunkCodecs, ['PCMA', 'opus']);
  assert.equal(c.dataDir, '/tmp/x');
  assert.equal(c.database.url, 'postgres://u@h/db');
  assert.equal(c.calls.drainMs, 5);
  assert.equal(loadConfig({ env: { MONOLOGUE_CONFIG: file } }).http.port, 9000);
});

test('a bad value names the key, the value and the expected form', () => {
  assert.throws(() => loadConfig({ env: { MONOLOGUE_HTTP__PORT: 'eighty' } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(e.message, /http\.port/);
    assert.match(e.message, /"eighty"/);
    return true;
  });
  assert.throws(() => loadConfig({ env: { MONOLOGUE_MEDIA__TRUNK_CODECS: 'G729' } }), /media\.trunkCodecs\.0.*"G729".*PCMU, PCMA, opus/);
  assert.throws(() => loadConfig({ env: { MONOLOGUE_SIP__TRUNK__TRANSPORT: 'sctp' } }), /sip\.trunk\.transport.*udp or tcp/);
  assert.throws(() => loadConfig({ overrides: { media: { rtpengine: { portMin: 5000, portMax: 4000 } } } as never }), /portMin/);
  assert.throws(() => loadConfig({ env: { MONOLOGUE_HTTP__PROT: '1' } }), /http\.prot.*remove it/);
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'bad.json'), '{ nope');
  assert.throws(() => loadConfig({ file: join(dir, 'bad.json'), env: {} }), /not valid JSON/);
  assert.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: {} }), { code: 'CONFIG_UNREADABLE' });
});
