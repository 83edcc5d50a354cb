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
  assert.throws(() => loadConfig({ env: { MONOLOGUE_SIP__TRUNK__TRANSPORT: 'sctp' } }), /sip\.trunk\.transport.*udp, tcp or tls/);
  assert.throws(() => loadConfig({ overrides: { media: { rtpengine: { portMin: 5000, portMax: 4000 } } } as never }), /portMin/);
  assert.throws(() => loadConfig({ env: { MONOLOGUE_HTTP__PROT: '1' } }), /http\.prot.*remove it/);
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'bad.json'), '{ nope');
  assert.throws(() => loadConfig({ file: join(dir, 'bad.json'), env: {} }), /not valid JSON/);
  assert.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: {} }), { code: 'CONFIG_UNREADABLE' });
});

test('trunks: a list from the environment, TLS settings, SRTP mode, and the combinations that cannot work', () => {
  const trunks = [
    { host: 'sip.telnyx.com', port: 5061, transport: 'tls', tls: { caFile: '/etc/ca.pem' } },
    { host: '192.0.2.10', port: 5060, transport: 'udp', allowedSources: ['192.0.2.0/24'] },
  ];
  const c = loadConfig({ env: { MONOLOGUE_SIP__TRUNKS: JSON.stringify(trunks), MONOLOGUE_MEDIA__TRUNK_SRTP: 'sdes' } });
  assert.equal(c.sip.trunks.length, 2);
  assert.equal(c.sip.trunks[0]!.tls?.caFile, '/etc/ca.pem');
  assert.equal(c.media.trunkSrtp, 'sdes');
  assert.equal(c.sip.trunk.tls?.rejectUnauthorized, true, 'certificate verification is on by default');
  assert.throws(() => loadConfig({ env: { MONOLOGUE_MEDIA__TRUNK_SRTP: 'dtls' } }), /media\.trunkSrtp.*off, sdes or sdes-optional/);
  assert.throws(() => loadConfig({ overrides: { sip: { trunk: { scheme: 'sips', transport: 'udp' } } }, env: {} }), /sip\.trunk\.scheme.*needs.*tls/);
  assert.throws(() => loadConfig({ env: { MONOLOGUE_SIP__TRUNKS: JSON.stringify([{ host: 'x', port: 5061, transport: 'tls', scheme: 'sips' }, { host: 'y', port: 5060, transport: 'udp', scheme: 'sips' }]) } }), /sip\.trunks\.1\.scheme/);
  assert.throws(() => loadConfig({ overrides: { sip: { tls: { port: 5061 } } }, env: {} }), /sip\.tls\.certFile/);
  assert.throws(() => loadConfig({ env: { MONOLOGUE_SIP__TRUNKS: JSON.stringify([{ host: 'x', transport: 'tls' }]) } }), /sip\.trunks\.0\.port/);
});
