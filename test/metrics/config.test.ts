import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.js';

test('metrics config: on by default, on loopback, on 9464', () => {
  assert.deepEqual(loadConfig({ env: {} }).metrics, { enabled: true, host: '127.0.0.1', port: 9464 });
});

test('metrics config: 0 takes any free port; the environment sets it like any key', () => {
  assert.equal(loadConfig({ env: {}, overrides: { metrics: { port: 0 } } }).metrics.port, 0);
  const fromEnv = loadConfig({ env: { MONOLOGUE_METRICS__PORT: '9100', MONOLOGUE_METRICS__ENABLED: 'false', MONOLOGUE_METRICS__HOST: '10.0.0.5' } }).metrics;
  assert.deepEqual(fromEnv, { enabled: false, host: '10.0.0.5', port: 9100 });
});

test('metrics config: a port out of range, a non-number, an empty host, a stray key are refused by name', () => {
  const refused = (overrides: object, message: RegExp) =>
    assert.throws(() => loadConfig({ env: {}, overrides: { metrics: overrides } as never }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, message);
      return true;
    });
  refused({ port: 65536 }, /"metrics\.port" has 65536: expected a port, 0-65535/);
  refused({ port: -1 }, /"metrics\.port" has -1/);
  refused({ host: '' }, /"metrics\.host" has "": expected an IP address or host name/);
  refused({ enabled: 'sometimes' }, /"metrics\.enabled" has "sometimes": expected true or false/);
  refused({ path: '/m' }, /"metrics\.path".*remove it or check its spelling/);
  assert.throws(() => loadConfig({ env: { MONOLOGUE_METRICS__PORT: 'ninety' } }), /"metrics\.port" has "ninety"/);
});

test('metrics config: /metrics never shares the public or the admin listener', () => {
  assert.throws(() => loadConfig({ env: {}, overrides: { http: { port: 8080 }, metrics: { port: 8080 } } }), {
    code: 'CONFIG_INVALID',
    message: /"metrics\.port" \(8080\) is also http\.port: give \/metrics its own port/,
  });
  assert.throws(() => loadConfig({ env: {}, overrides: { admin: { port: 9000 }, metrics: { port: 9000 } } }), { code: 'CONFIG_INVALID', message: /is also admin\.port/ });
  // Off, its port does not matter.
  assert.equal(loadConfig({ env: {}, overrides: { http: { port: 8080 }, metrics: { enabled: false, port: 8080 } } }).metrics.enabled, false);
});
