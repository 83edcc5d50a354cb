import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApiRig, type ApiRig, type SeededOwner } from './fixture.js';
import { newId } from '../../src/ids.js';

interface ExportDoc {
  format: string;
  exportedAt: string;
  profile: { id: string; phone: string; consent: { version: string } | null };
  consentHistory: Array<{ id: string; version: string | null; at: string }>;
  sessions: Array<{ id: string; revokedAt: string | null }>;
  calls: Array<{ id: string; counterpart: string; recordingId: string | null }>;
  recordings: Array<{ id: string; callId: string; state: string; download: { url: string; expiresAt: string } | null }>;
  ledger: Array<{ id: string; callId: string | null; amountMicros: number }>;
  settlements: Array<{ callId: string; amountMicros: number }>;
  audit: Array<{ seq: number; action: string; actor: string; recordingId: string | null }>;
}

const ids = <T extends { id: string }>(xs: T[]) => xs.map((x) => x.id).sort();

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`GET /v1/me/export on ${database}`, () => {
    let rig: ApiRig;
    let alice: SeededOwner;
    let bob: SeededOwner;
    const aliceSettled = newId('call');
    const bobSettled = newId('call');
    /** Every identifier and number of Bob's that must never show in Alice's export. */
    const bobsSecrets: string[] = [];

    /** A call of the user's settled by the real settler (a settlement and its ledger credit). */
    async function settledCall(userId: string, callId: string, counterpart: string): Promise<void> {
      const t = Date.now() - 7_200_000;
      await rig.service.records.create({ id: callId, userId, direction: 'outbound', counterpart, createdAt: t });
      await rig.service.records.update(callId, { answeredAt: t + 1000, endedAt: t + 91_000, endReason: 'remote-hangup' });
      const { counterpart_hash } = await rig.service.db.db.selectFrom('calls').select('counterpart_hash').where('id', '=', callId).executeTakeFirstOrThrow();
      await rig.service.settler.settle({ callId, userId, answeredAt: t + 1000, endedAt: t + 91_000, talkMs: 80_000, counterpartHash: counterpart_hash, counterpartEnrolled: false });
    }

    before(async () => {
      rig = await startApiRig({ database, overrides: { recording: { consent: { version: 'v2' } } } });
      alice = await rig.seedOwner('+15554440001', { calls: 3, seconds: 2 });
      bob = await rig.seedOwner('+15554440002', { calls: 2, seconds: 2 });
      await settledCall(alice.id, aliceSettled, '+15554449001');
      await settledCall(bob.id, bobSettled, '+15554449002');
      assert.equal((await rig.request('PUT', '/v1/me/consent', { token: alice.token, body: { version: 'v2' } })).status, 200);
      assert.equal((await rig.request('PUT', '/v1/me/consent', { token: bob.token, body: { version: 'v2' } })).status, 200);
      // Audit entries about Bob's data.
      await rig.service.grants.issue(bob.id, bob.recordings[0]!.id, 'play');
      const bobCalls = [...bob.calls, bobSettled];
      const counterparts = await Promise.all(bobCalls.map(async (id) => (await rig.service.records.get(bob.id, id))!.counterpart));
      const bobLedger = await rig.service.ledger.entries(bob.id);
      bobsSecrets.push(bob.id, bob.phone, bob.phone.slice(1), bob.token, bob.sessionId, ...bobCalls, ...counterparts, ...bob.recordings.map((r) => r.id), ...bobLedger.map((e) => e.id));
    });
    after(() => rig.close());

    test('one JSON attachment with every object of the caller and nothing of another user', async () => {
      const res = await rig.request('GET', '/v1/me/export', { token: alice.token });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="monologue-export-\d{4}-\d{2}-\d{2}\.json"$/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const text = await res.text();
      const doc = JSON.parse(text) as ExportDoc;

      assert.equal(doc.format, 'monologue-export/1');
      assert.deepEqual(doc.profile, await (await rig.request('GET', '/v1/me', { token: alice.token })).json());
      assert.equal(doc.profile.phone, alice.phone);
      assert.deepEqual(doc.consentHistory.map((c) => c.version), ['v1', 'v2']);
      assert.ok(doc.sessions.some((s) => s.id === alice.sessionId && s.revokedAt === null));
      assert.deepEqual(ids(doc.calls), [...alice.calls, aliceSettled].sort(), 'every call');
      const listed = (await (await rig.request('GET', '/v1/calls?limit=100', { token: alice.token })).json()) as { items: unknown[] };
      assert.deepEqual(doc.calls, listed.items, 'each call as GET /v1/calls shows it');
      assert.deepEqual(ids(doc.recordings), alice.recordings.map((r) => r.id).sort(), 'every recording');
      for (const r of doc.recordings) assert.equal(r.callId, alice.recordings.find((s) => s.id === r.id)?.callId);
      const ledger = await rig.service.ledger.entries(alice.id);
      assert.deepEqual(ids(doc.ledger), ids(ledger), 'every ledger entry');
      for (const id of alice.ledger) assert.ok(doc.ledger.some((e) => e.id === id));
      assert.ok(doc.ledger.some((e) => e.callId === aliceSettled), 'the settled call’s credit');
      assert.deepEqual(doc.settlements.map((s) => s.callId), [aliceSettled]);
      assert.equal(doc.settlements[0]!.amountMicros, (await rig.service.settler.get(aliceSettled))!.amountMicros);

      const actions = doc.audit.map((a) => a.action);
      assert.ok(actions.includes('user.consent') && actions.includes('user.export'), actions.join(', '));
      assert.equal(doc.audit.filter((a) => a.action === 'recording.grant').length, doc.recordings.length, 'the grants this export issued, audited');
      assert.deepEqual([...doc.audit].sort((a, b) => b.seq - a.seq), doc.audit, 'newest first');
      const all = await rig.service.audit.forUser(alice.id, { limit: 1000 });
      assert.deepEqual(doc.audit.map((a) => a.seq), all.map((e) => e.seq), 'every audit entry about her data');

      for (const secret of bobsSecrets) assert.ok(!text.includes(secret), `another user's ${secret.slice(0, 8)}… is not in the export`);
      assert.ok(!text.includes(alice.token), 'no token');
      for (const word of ['wrapped', 'kek', 'token_hash', 'tokenHash', 'rec/']) assert.ok(!text.includes(word), `no ${word}`);

      // Bob's export, the other way round.
      const bobs = (await (await rig.request('GET', '/v1/me/export', { token: bob.token })).json()) as ExportDoc;
      assert.deepEqual(ids(bobs.calls), [...bob.calls, bobSettled].sort());
      const bobText = JSON.stringify(bobs);
      for (const id of [alice.id, alice.phone, ...alice.calls, aliceSettled, ...alice.recordings.map((r) => r.id), ...alice.ledger]) assert.ok(!bobText.includes(id));
    });

    test('each readable recording comes with a fresh download grant that serves it', async (t) => {
      const sentAt = Date.now();
      const doc = (await (await rig.request('GET', '/v1/me/export', { token: alice.token })).json()) as ExportDoc;
      const receivedAt = Date.now();
      const ttlMs = rig.service.config.api.grantTtlSeconds * 1000;
      assert.equal(doc.recordings.length, alice.recordings.length);
      for (const r of doc.recordings) {
        assert.ok(r.download, `${r.id} is readable`);
        assert.match(r.download.url, /^\/v1\/media\/mlg_[A-Za-z0-9_-]{43}$/);
        const expires = Date.parse(r.download.expiresAt);
        assert.ok(expires >= sentAt + ttlMs - 1 && expires <= receivedAt + ttlMs, 'issued now, for the configured time');
        const use = await rig.service.grants.use(r.download.url.slice('/v1/media/'.length));
        assert.deepEqual(use && { userId: use.userId, recordingId: use.recordingId, purpose: use.purpose }, { userId: alice.id, recordingId: r.id, purpose: 'download' }, 'bound to her and that recording');
      }
      for (const r of doc.recordings) {
        const res = await fetch(new URL(r.download!.url.slice(1), rig.url));
        assert.equal(res.status, 200, r.id);
        const bytes = Buffer.from(await res.arrayBuffer());
        assert.ok(bytes.equals(alice.recordings.find((s) => s.id === r.id)!.ogg), `${r.id}: the recording's own audio`);
      }
    });

    test('401 without a token; more than 5 exports a minute answer 429 with Retry-After', async () => {
      assert.equal((await rig.request('GET', '/v1/me/export')).status, 401);
      const carol = await rig.seedOwner('+15554440003', { calls: 0 });
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 6; i++) {
        const res = await rig.request('GET', '/v1/me/export', { token: carol.token });
        statuses.push(res.status);
        if (res.status === 429) limited = res;
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
      assert.ok(Number(limited!.headers.get('retry-after')) > 0);
      assert.equal(((await limited!.json()) as { code: string }).code, 'RATE_LIMITED');
      assert.equal((await rig.request('GET', '/v1/me', { token: carol.token })).status, 200, 'other routes are not held back');
    });
  });
}
