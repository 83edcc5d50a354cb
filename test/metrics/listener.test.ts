import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { startTestService } from '../helpers/service.js';
import { freeTcpPort } from '../helpers/ports.js';
import { scrape } from '../helpers/metrics.js';

/**
 * The metrics listener: its own socket (never the public one), the Prometheus text format, the service's
 * own registry, gone with the service and absent when off. Starts a real service (and its rtpengine).
 */
const SECRET = 'metrics-test-generic-secret';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function genericWebhook(httpPort: number, body: object, secret = SECRET): Promise<Response> {
  const raw = JSON.stringify(body);
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex');
  return fetch(`http://127.0.0.1:${httpPort}/v1/webhooks/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-monologue-timestamp': ts, 'x-monologue-signature': sig },
    body: raw,
  });
}

test('GET /metrics answers on its own port; the public listener has no /metrics; webhooks are counted by verdict', async () => {
  const service = await startTestService({ trunkPort: 5999, overrides: { webhooks: { generic: { secret: SECRET } } } });
  try {
    assert.ok(service.metricsUrl, 'enabled by default');
    const url = new URL(service.metricsUrl);
    assert.equal(url.hostname, '127.0.0.1');
    assert.notEqual(Number(url.port), service.httpPort, 'not the public port');
    assert.equal(url.pathname, '/metrics');

    const res = await fetch(service.metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# HELP monologue_calls_live /m);
    assert.match(text, /^# TYPE monologue_call_setups_total counter$/m);
    assert.match(text, /^# TYPE monologue_call_setup_seconds histogram$/m);

    const m = await scrape(service.metricsUrl);
    assert.equal(m.value('monologue_calls_live'), 0);
    assert.equal(m.value('monologue_recordings_live'), 0);
    assert.equal(m.value('monologue_spool_depth'), 0);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_active_handles_total', 'monologue_rtpengine_cpu_seconds_total', 'monologue_recorder_packets_received_total']) {
      assert.ok(m.has(name), `${name} is exported`);
    }
    assert.ok(m.value('process_resident_memory_bytes') > 10e6, 'the defaults measure this process');

    // The public listener: no /metrics there, and the metrics listener serves nothing else.
    assert.equal((await fetch(`http://127.0.0.1:${service.httpPort}/metrics`)).status, 404);
    assert.equal((await fetch(new URL('/v1/me', service.metricsUrl))).status, 404);
    assert.equal((await fetch(new URL('/', service.metricsUrl))).status, 404);
    assert.equal((await fetch(service.metricsUrl, { method: 'POST' })).status, 405);

    // Webhooks: a good signature counts verified, a bad one rejected, each under its provider.
    const ok = await genericWebhook(service.httpPort, { id: 'evt-metrics-1', type: 'call.completed', callRef: 'call_unknown' });
    assert.equal(ok.status, 200, await ok.text());
    const bad = await genericWebhook(service.httpPort, { id: 'evt-metrics-2', type: 'call.completed' }, 'not-the-secret');
    assert.equal(bad.status, 401);
    const stale = await fetch(`http://127.0.0.1:${service.httpPort}/v1/webhooks/generic`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(stale.status, 401, 'unsigned');
    // An unconfigured provider is refused before any signature check: no verdict to count.
    assert.equal((await fetch(`http://127.0.0.1:${service.httpPort}/v1/webhooks/twilio`, { method: 'POST', body: 'x' })).status, 404);
    const after = await scrape(service.metricsUrl);
    assert.equal(after.value('monologue_webhooks_total', { provider: 'generic', result: 'verified' }), 1);
    assert.equal(after.value('monologue_webhooks_total', { provider: 'generic', result: 'rejected' }), 2);
    assert.equal(after.value('monologue_webhooks_total', { provider: 'twilio' }), 0);

    // The service's own registry: a second service in this process counts from zero.
    const other = await startTestService({ trunkPort: 5998 });
    try {
      assert.ok(other.metricsUrl && other.metricsUrl !== service.metricsUrl);
      assert.equal((await scrape(other.metricsUrl)).value('monologue_webhooks_total'), 0);
    } finally {
      await other.stop();
    }

    const port = Number(url.port);
    await service.stop();
    assert.ok(await refused(port), 'the metrics listener closes with the service');
  } finally {
    await service.stop();
  }
});

test('metrics.enabled false: no listener, no URL; the counters still exist in process', async () => {
  const port = await freeTcpPort();
  const service = await startTestService({ trunkPort: 5999, overrides: { metrics: { enabled: false, port } } });
  try {
    assert.equal(service.metricsUrl, undefined);
    assert.ok(await refused(port), `nothing listens on metrics.port ${port}`);
    assert.match(await service.metrics.text(), /^monologue_calls_live 0$/m);
  } finally {
    await service.stop();
  }
});

test('a metrics port already taken fails the start with a clear error', async () => {
  const first = await startTestService({ trunkPort: 5999 });
  try {
    const taken = Number(new URL(first.metricsUrl!).port);
    await assert.rejects(startTestService({ trunkPort: 5999, overrides: { metrics: { port: taken } } }), {
      code: 'METRICS_LISTEN_FAILED',
      message: new RegExp(`metrics listener cannot listen on 127\\.0\\.0\\.1:${taken} \\(EADDRINUSE\\)`),
    });
  } finally {
    await first.stop();
  }
});
