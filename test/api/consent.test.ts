import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApiRig } from './fixture.js';
import { consentHistory } from '../../src/accounts/consent.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Me {
  id: string;
  phone: string;
  enrolled: boolean;
  consent: { version: string; at: string } | null;
  createdAt: string;
}

test('PUT and DELETE /v1/me/consent change GET /v1/me, keep the history and audit each change; extra fields change nothing', async () => {
  // The deployment's consent text is at v2: users seeded with v1 are on an outdated version.
  const rig = await startApiRig({ overrides: { recording: { consent: { version: 'v2', text: 'You agree to be recorded (test text).', publishedAt: '2026-06-01T12:00:00Z' } } } });
  try {
    const alice = await rig.seedOwner('+15552220001', { calls: 0 });
    const bob = await rig.seedOwner('+15552220002', { calls: 0 });
    const me = async (token: string) => (await (await rig.request('GET', '/v1/me', { token })).json()) as Me;
    const history = async (userId: string) => (await consentHistory(rig.service.db.db, userId)).map((e) => e.version);
    const consentAudit = async (userId: string) => (await rig.service.audit.forUser(userId, { limit: 100 })).filter((e) => e.action === 'user.consent').map((e) => [e.actor, e.detail]);

    const start = await me(alice.token);
    assert.equal(start.consent?.version, 'v1');
    assert.deepEqual(await history(alice.id), ['v1'], 'consent given at sign-up opens the history');

    // A later consent: the server's clock stamps it (the test moves that clock to tell it from the first).
    rig.clock.offsetMs = 86_400_000;
    const put = await rig.request('PUT', '/v1/me/consent', { token: alice.token, body: { version: 'v2' } });
    assert.equal(put.status, 200);
    const afterPut = (await put.json()) as Me;
    assert.equal(afterPut.consent?.version, 'v2');
    assert.ok(Date.parse(afterPut.consent!.at) - Date.now() > 86_000_000, 'stamped by the server clock');
    assert.deepEqual(await me(alice.token), afterPut, 'GET /v1/me says the same');
    assert.deepEqual({ ...afterPut, consent: null }, { ...start, consent: null }, 'nothing else changed');

    // The same version again is no change: no second history entry, no audit entry.
    assert.deepEqual(await (await rig.request('PUT', '/v1/me/consent', { token: alice.token, body: { version: 'v2' } })).json(), afterPut);

    const del = await rig.request('DELETE', '/v1/me/consent', { token: alice.token });
    assert.equal(del.status, 200);
    assert.equal(((await del.json()) as Me).consent, null);
    assert.equal((await me(alice.token)).consent, null);
    assert.equal((await rig.request('DELETE', '/v1/me/consent', { token: alice.token })).status, 200, 'withdrawing twice is fine');
    // Changes in the same millisecond still read back in order.
    for (const method of ['PUT', 'DELETE', 'PUT'] as const) assert.equal((await rig.request(method, '/v1/me/consent', { token: alice.token, ...(method === 'PUT' && { body: { version: 'v2' } }) })).status, 200);

    // Only the current text can be accepted: an older or unknown version is refused and changes nothing.
    for (const version of ['v1', 'v3']) {
      const res = await rig.request('PUT', '/v1/me/consent', { token: alice.token, body: { version } });
      assert.equal(res.status, 409, version);
      const body = (await res.json()) as { code: string; message: string };
      assert.equal(body.code, 'CONSENT_VERSION_OUTDATED');
      assert.match(body.message, /accept version v2/);
    }

    assert.deepEqual(await history(alice.id), ['v1', 'v2', null, 'v2', null, 'v2']);
    const times = (await consentHistory(rig.service.db.db, alice.id)).map((e) => e.at);
    assert.deepEqual([...times].sort((a, b) => a - b), times);
    assert.equal(new Set(times).size, times.length, 'strictly increasing');
    assert.deepEqual(await consentAudit(alice.id), [
      [`user:${alice.id}`, 'version v2'],
      [`user:${alice.id}`, 'withdrawn'],
      [`user:${alice.id}`, 'version v2'],
      [`user:${alice.id}`, 'withdrawn'],
      [`user:${alice.id}`, 'version v2'],
    ]);

    // Mass assignment: a field the body must not carry refuses the whole request.
    const before = { me: await me(alice.token), history: await history(alice.id), bob: await me(bob.token) };
    const bad: unknown[] = [
      { version: 'v9', userId: bob.id },
      { version: 'v9', enrolled: false },
      { version: 'v9', consent: null },
      {},
      { version: '' },
      { version: 'has space' },
      { version: 'x'.repeat(65) },
      ['v9'],
    ];
    for (const body of bad) {
      const res = await rig.request('PUT', '/v1/me/consent', { token: alice.token, body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(((await res.json()) as { code: string }).code, 'BAD_REQUEST');
    }
    const text = await fetch(new URL('v1/me/consent', rig.url), { method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'text/plain' }, body: 'v9' });
    assert.equal(text.status, 400, 'not a JSON object');
    assert.deepEqual({ me: await me(alice.token), history: await history(alice.id), bob: await me(bob.token) }, before, 'nothing changed');
    assert.deepEqual(await history(bob.id), ['v1'], "the other user's consent was never touched");
    assert.deepEqual(await consentAudit(bob.id), []);

    for (const [method, body] of [['PUT', { version: 'v5' }], ['DELETE', undefined]] as const) {
      const res = await rig.request(method, '/v1/me/consent', { body });
      assert.equal(res.status, 401, method);
    }
    assert.equal((await me(alice.token)).consent?.version, 'v2');
  } finally {
    await rig.close();
  }
});

test('GET /v1/consent/current: the configured text and version, the same with or without a token; the text can come from a file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'consent-'));
  const file = join(dir, 'consent.txt');
  writeFileSync(file, 'Version three of the consent text.\n');
  const rig = await startApiRig({ overrides: { recording: { consent: { version: 'v3', text: '', textFile: file, publishedAt: '2026-07-01T00:00:00Z' } } } });
  try {
    const anonymous = await rig.request('GET', '/v1/consent/current');
    assert.equal(anonymous.status, 200);
    const body = await anonymous.json();
    assert.deepEqual(body, { version: 'v3', text: 'Version three of the consent text.\n', publishedAt: '2026-07-01T00:00:00.000Z' });
    const alice = await rig.seedOwner('+15552220003', { calls: 0 });
    assert.deepEqual(await (await rig.request('GET', '/v1/consent/current', { token: alice.token })).json(), body, 'not personal: the same for a user');
    assert.equal((await rig.request('PUT', '/v1/me/consent', { token: alice.token, body: { version: 'v3' } })).status, 200, 'the current version is accepted');
  } finally {
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
