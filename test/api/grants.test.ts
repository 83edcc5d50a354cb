/**
 * Recordings metadata and media grants through the real service (SQLite and PostgreSQL): a grant serves
 * its own recording's bytes and nothing else; every way a grant or a recording id can be wrong is one
 * 404, byte for byte; grants expire by the server's clock, run out of requests, are stored hashed, never
 * reach the log, and leave one `recording.grant` and (after the sweep) one `recording.read` audit entry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { newId } from '../../src/ids.js';
import { filesBelow } from '../helpers/recording.js';
import { startApiRig, type ApiRig, type SeededOwner } from './fixture.js';

const MAX_REQUESTS = 4;
const GRANTS_PER_MINUTE = 12;

/** Status, headers (but date) and body: what must be identical between two 404s. */
async function snap(res: Response): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== 'date') headers[k] = v;
  });
  return { status: res.status, headers, body: await res.text() };
}

const randomGrant = () => `mlg_${randomBytes(32).toString('base64url')}`;
const randomRecId = () => newId('rec');

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`recordings and grants (${database})`, () => {
    let rig: ApiRig;
    let alice: SeededOwner;
    let bob: SeededOwner;
    const logLines: string[] = [];

    before(async () => {
      const logDestination = new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(chunk.toString('utf8'));
          cb();
        },
      });
      rig = await startApiRig({ database, logDestination, overrides: { log: { level: 'info' }, api: { grantMaxRequests: MAX_REQUESTS, grantRateLimitPerMinute: GRANTS_PER_MINUTE } } });
      alice = await rig.seedOwner('+15550100001', { calls: 3, seconds: 2 });
      bob = await rig.seedOwner('+15550100002', { calls: 1, seconds: 2 });
    });
    after(async () => rig?.close());

    const grant = async (owner: SeededOwner, recordingId: string, purpose: 'play' | 'download' = 'play') =>
      rig.request('POST', `/v1/recordings/${recordingId}/grants`, { token: owner.token, body: { purpose } });
    const issue = async (owner: SeededOwner, recordingId: string, purpose: 'play' | 'download' = 'play') => {
      const res = await grant(owner, recordingId, purpose);
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()) as { url: string; expiresAt: string };
    };
    const media = (url: string, headers?: Record<string, string>) => rig.request('GET', url, headers ? { headers } : {});

    test('GET /v1/recordings: the caller’s own, newest first, paged by cursor, metadata only', async () => {
      const first = await rig.request('GET', '/v1/recordings?limit=2', { token: alice.token });
      assert.equal(first.status, 200);
      const p1 = (await first.json()) as { items: Array<Record<string, unknown>>; nextCursor: string | null };
      assert.equal(p1.items.length, 2);
      assert.ok(p1.nextCursor);
      const p2 = (await (await rig.request('GET', `/v1/recordings?limit=2&cursor=${p1.nextCursor}`, { token: alice.token })).json()) as typeof p1;
      assert.equal(p2.nextCursor, null);
      const all = [...p1.items, ...p2.items];
      assert.deepEqual(new Set(all.map((r) => r.id)), new Set(alice.recordings.map((r) => r.id)), 'exactly Alice’s recordings');
      const times = all.map((r) => Date.parse(r.createdAt as string));
      assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
      for (const r of all) {
        assert.deepEqual(Object.keys(r).sort(), ['callId', 'createdAt', 'durationMs', 'endedAt', 'id', 'state', 'talkMs']);
        const seeded = alice.recordings.find((s) => s.id === r.id)!;
        assert.equal(r.callId, seeded.callId);
        assert.equal(r.state, 'complete');
        assert.equal(r.durationMs, seeded.seconds * 1000);
        assert.equal(r.talkMs, seeded.seconds * 1000);
      }
      const bad = await rig.request('GET', '/v1/recordings?cursor=not-a-cursor', { token: alice.token });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { code: string }).code, 'BAD_CURSOR');
    });

    test('GET /v1/recordings/{id}: the owner’s; another user’s id is the same 404 as a random or malformed one', async () => {
      const rec = alice.recordings[0]!;
      const own = await rig.request('GET', `/v1/recordings/${rec.id}`, { token: alice.token });
      assert.equal(own.status, 200);
      const body = (await own.json()) as Record<string, unknown>;
      assert.equal(body.id, rec.id);
      assert.ok(!JSON.stringify(body).includes('kek_'), 'no KEK id');
      const foreign = await snap(await rig.request('GET', `/v1/recordings/${rec.id}`, { token: bob.token }));
      assert.equal(foreign.status, 404);
      assert.deepEqual(await snap(await rig.request('GET', `/v1/recordings/${randomRecId()}`, { token: bob.token })), foreign);
      assert.deepEqual(await snap(await rig.request('GET', '/v1/recordings/rec_x', { token: bob.token })), foreign);
      assert.deepEqual(await snap(await rig.request('GET', `/v1/recordings/${bob.calls[0]}`, { token: bob.token })), foreign, 'a call id is not a recording id');
    });

    test('a grant serves its recording whole, with the headers a player and a download need', async () => {
      const rec = alice.recordings[0]!;
      const g = await issue(alice, rec.id, 'play');
      assert.match(g.url, /^\/v1\/media\/mlg_[A-Za-z0-9_-]{43}$/, 'a relative URL on this API, no storage URL');
      const ttl = rig.service.config.api.grantTtlSeconds * 1000;
      assert.ok(Math.abs(Date.parse(g.expiresAt) - (Date.now() + ttl)) < 5000, `expires in ~${ttl} ms: ${g.expiresAt}`);
      const res = await media(g.url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'audio/ogg; codecs=opus');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('accept-ranges'), 'bytes');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('content-disposition'), `inline; filename="${rec.id}.opus"`);
      assert.equal(res.headers.get('content-length'), String(rec.ogg.length));
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), rec.ogg);

      const d = await issue(alice, rec.id, 'download');
      const dl = await media(d.url);
      assert.equal(dl.headers.get('content-disposition'), `attachment; filename="${rec.id}.opus"`);
      assert.deepEqual(Buffer.from(await dl.arrayBuffer()), rec.ogg);

      const head = await rig.request('HEAD', d.url);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(rec.ogg.length));
      assert.equal(head.headers.get('content-type'), 'audio/ogg; codecs=opus');
      assert.equal((await head.arrayBuffer()).byteLength, 0);
    });

    test('a grant only ever serves its own recording: A’s grant gives A’s bytes whatever else the URL says', async () => {
      const [a, b] = alice.recordings as [typeof alice.recordings[0], typeof alice.recordings[0]];
      const g = await issue(alice, a.id);
      const bodies = [];
      for (const url of [g.url, `${g.url}?recordingId=${b.id}`, `${g.url}?rec=${b.id}&id=${b.id}`]) {
        const res = await media(url);
        assert.equal(res.status, 200, url);
        bodies.push(Buffer.from(await res.arrayBuffer()));
      }
      for (const body of bodies) {
        assert.deepEqual(body, a.ogg);
        assert.notDeepEqual(body, b.ogg);
      }
      // A path naming B after the grant is no route at all, and serves nothing.
      const extra = await media(`${g.url}/${b.id}`);
      assert.ok(extra.status >= 400, `${extra.status}`);
      assert.equal(Buffer.from(await extra.arrayBuffer()).indexOf('OggS'), -1);
    });

    test('another user cannot issue a grant for A: the same 404 as a random or malformed id; a body with extra fields is 400', async () => {
      const a = alice.recordings[0]!;
      const foreign = await snap(await grant(bob, a.id));
      assert.equal(foreign.status, 404);
      assert.equal(JSON.parse(foreign.body).code, 'NOT_FOUND');
      assert.deepEqual(await snap(await grant(bob, randomRecId())), foreign);
      assert.deepEqual(await snap(await grant(bob, 'rec_%2e%2e')), foreign);
      assert.deepEqual(await snap(await grant(bob, bob.calls[0]!)), foreign);
      for (const body of [{ purpose: 'play', recordingId: bob.recordings[0]!.id }, { purpose: 'play', userId: alice.id }, { purpose: 'stream' }, {}]) {
        const res = await rig.request('POST', `/v1/recordings/${bob.recordings[0]!.id}/grants`, { token: bob.token, body });
        assert.equal(res.status, 400, JSON.stringify(body));
      }
      const none = await rig.request('POST', `/v1/recordings/${a.id}/grants`, { body: { purpose: 'play' } });
      assert.equal(none.status, 401);
    });

    test('expired, used up, swept, deleted or malformed: each the 404 of an unknown grant, byte for byte', async () => {
      const unknown = await snap(await media(`/v1/media/${randomGrant()}`));
      assert.equal(unknown.status, 404);
      assert.deepEqual(JSON.parse(unknown.body), { code: 'NOT_FOUND', message: 'no such resource' });
      const same = async (url: string, what: string) => assert.deepEqual(await snap(await media(url)), unknown, what);

      for (const bad of ['mlg_short', 'mlt_' + 'a'.repeat(43), randomGrant().slice(0, -1) + '!', 'x'.repeat(90), '']) await same(`/v1/media/${bad}`, `malformed ${bad}`);

      const rec = alice.recordings[1]!;
      const usedUp = await issue(alice, rec.id);
      for (let i = 0; i < MAX_REQUESTS; i++) assert.equal((await media(usedUp.url)).status, 200, `request ${i + 1} of ${MAX_REQUESTS}`);
      await same(usedUp.url, 'used up');

      const expired = await issue(alice, rec.id);
      assert.equal((await media(expired.url, { range: 'bytes=0-0' })).status, 206);
      rig.clock.offsetMs = rig.service.config.api.grantTtlSeconds * 1000 + 1;
      try {
        await same(expired.url, 'expired by the server clock');
      } finally {
        rig.clock.offsetMs = 0;
      }

      const swept = await issue(alice, rec.id);
      rig.clock.offsetMs = rig.service.config.api.grantTtlSeconds * 1000 + 1;
      await rig.service.grants.sweep();
      rig.clock.offsetMs = 0;
      await same(swept.url, 'closed by the sweep');
    });

    test('a recording deleted after its grant was issued: the grant is the same 404 (the route re-checks the row)', async () => {
      const owner = await rig.seedOwner('+15550100003', { calls: 1, seconds: 1 });
      const rec = owner.recordings[0]!;
      const g = await issue(owner, rec.id);
      const unknown = await snap(await media(`/v1/media/${randomGrant()}`));
      // As the shred does it (key destroyed first), minus closing the grants: the route must not rely on
      // that. The state stays: 0001's CHECK on recordings.state does not admit 'deleted' yet.
      await rig.service.db.db.updateTable('recordings').set({ wrapped_key: null, kek_id: null, deleted_at: Date.now() }).where('id', '=', rec.id).execute();
      assert.deepEqual(await snap(await media(g.url)), unknown);
      assert.deepEqual(await snap(await grant(owner, rec.id)), await snap(await grant(owner, randomRecId())), 'no new grant either');
      assert.equal((await rig.request('GET', `/v1/recordings/${rec.id}`, { token: owner.token })).status, 404);
      const list = (await (await rig.request('GET', '/v1/recordings', { token: owner.token })).json()) as { items: unknown[] };
      assert.equal(list.items.length, 0, 'a deleted recording is not listed');
    });

    test('a live recording: 409 RECORDING_LIVE to its owner, the one 404 to anyone else; failed and empty ones are 404', async () => {
      const owner = await rig.seedOwner('+15550100004', { calls: 0 });
      const call = async () => {
        const id = newId('call');
        await rig.service.records.create({ id, userId: owner.id, direction: 'outbound', counterpart: '+15552000999', createdAt: Date.now() });
        return id;
      };
      const live = newId('rec');
      const wrapped = { wrappedKey: 'AAAA', kekId: 'kek_00000000' };
      await rig.service.catalog.create({ id: live, callId: await call(), userId: owner.id, ...wrapped });
      const res = await grant(owner, live);
      assert.equal(res.status, 409);
      assert.equal(((await res.json()) as { code: string }).code, 'RECORDING_LIVE');
      assert.deepEqual(await snap(await grant(bob, live)), await snap(await grant(bob, randomRecId())));

      const failed = newId('rec');
      await rig.service.catalog.create({ id: failed, callId: await call(), userId: owner.id, ...wrapped });
      await rig.service.catalog.finish(failed, { state: 'failed', chunkCount: 0, durationMs: 0, talkMs: 0, failure: 'test' });
      const empty = newId('rec');
      await rig.service.catalog.create({ id: empty, callId: await call(), userId: owner.id, ...wrapped });
      await rig.service.catalog.finish(empty, { state: 'incomplete', chunkCount: 0, durationMs: 0, talkMs: 0 });
      const missing = await snap(await grant(owner, randomRecId()));
      assert.deepEqual(await snap(await grant(owner, failed)), missing, 'failed');
      assert.deepEqual(await snap(await grant(owner, empty)), missing, 'incomplete without audio');
      assert.equal((await rig.request('GET', `/v1/recordings/${failed}`, { token: owner.token })).status, 200, 'still listed as metadata');
    });

    test('the grant token is stored only as a hash: it is nowhere in the database, the data folder or the log', async () => {
      const g = await issue(alice, alice.recordings[2]!.id);
      const token = g.url.slice('/v1/media/'.length);
      assert.equal((await media(g.url)).status, 200);
      const rows = await rig.service.db.db.selectFrom('grants').selectAll().execute();
      assert.ok(rows.length > 0);
      assert.ok(!JSON.stringify(rows).includes(token), 'no grants column holds the token');
      const audit = await rig.service.db.db.selectFrom('audit_log').selectAll().execute();
      assert.ok(!JSON.stringify(audit).includes(token), 'no audit entry holds the token');
      const tokenBytes = Buffer.from(token.slice(4));
      for (const f of filesBelow(rig.service.config.dataDir)) assert.equal(f.bytes.indexOf(tokenBytes), -1, `${f.path} holds the token`);
      const log = logLines.join('');
      assert.ok(logLines.some((l) => l.includes('request completed')), 'the service logged the requests (at info)');
      assert.ok(!log.includes(token.slice(4)), 'the grant is in no log line');
    });

    test('audit: one recording.grant per grant and, after the sweep, one recording.read with the bytes served', async () => {
      const owner = await rig.seedOwner('+15550100005', { calls: 1, seconds: 2 });
      const rec = owner.recordings[0]!;
      const g1 = await issue(owner, rec.id);
      const g2 = await issue(owner, rec.id, 'download');
      const whole = await media(g1.url);
      assert.equal((await whole.arrayBuffer()).byteLength, rec.ogg.length);
      const part = await media(g1.url, { range: 'bytes=100-1099' });
      assert.equal((await part.arrayBuffer()).byteLength, 1000);
      await (await rig.request('HEAD', g1.url)).arrayBuffer();
      const tail = await media(g2.url, { range: 'bytes=-10' });
      assert.equal((await tail.arrayBuffer()).byteLength, 10);

      const entries = async () => (await rig.service.audit.forUser(owner.id, { limit: 100 })).filter((e) => e.recordingId === rec.id);
      const grants = (await entries()).filter((e) => e.action === 'recording.grant');
      assert.equal(grants.length, 2, 'one entry per grant issued');
      assert.ok(grants.every((e) => e.actor === `user:${owner.id}`));
      assert.equal((await entries()).filter((e) => e.action === 'recording.read').length, 0, 'reads are audited when the grant closes');

      await rig.service.grants.sweep();
      assert.equal((await entries()).filter((e) => e.action === 'recording.read').length, 0, 'live grants are not closed early');
      rig.clock.offsetMs = rig.service.config.api.grantTtlSeconds * 1000 + 1;
      try {
        await rig.service.grants.sweep();
      } finally {
        rig.clock.offsetMs = 0;
      }
      await rig.service.grants.sweep();
      const reads = (await entries()).filter((e) => e.action === 'recording.read');
      assert.equal(reads.length, 2, 'one read entry per grant, however many requests and sweeps');
      const byGrant = (p: string) => reads.find((e) => e.detail?.includes(`(${p})`))?.detail ?? '';
      assert.match(byGrant('play'), new RegExp(`: 3 requests, ${rec.ogg.length + 1000} bytes$`));
      assert.match(byGrant('download'), /: 1 requests, 10 bytes$/);
      assert.equal((await entries()).filter((e) => e.action === 'recording.grant').length, 2);
      assert.deepEqual(await rig.service.audit.verify(), { ok: true, entries: (await rig.service.db.db.selectFrom('audit_log').select('seq').execute()).length });
    });

    test('OpenAPI documents the routes: media is by grant (no bearer) and answers audio/ogg', async () => {
      const doc = (await (await rig.request('GET', '/openapi.json')).json()) as { paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, { content?: Record<string, unknown> }> }>> };
      for (const p of ['/v1/recordings', '/v1/recordings/{recordingId}', '/v1/recordings/{recordingId}/grants', '/v1/media/{grant}']) assert.ok(doc.paths[p], p);
      const get = doc.paths['/v1/media/{grant}']!.get!;
      assert.deepEqual(get.security, []);
      assert.ok(get.responses['200']?.content?.['audio/ogg']);
      assert.ok(get.responses['206']?.content?.['audio/ogg']);
      assert.ok(doc.paths['/v1/recordings/{recordingId}/grants']!.post!.responses['201']);
    });

    test(`grant issuance has its own, stricter limit per token: ${GRANTS_PER_MINUTE} a minute, then 429 with Retry-After`, async () => {
      const owner = await rig.seedOwner('+15550100006', { calls: 1, seconds: 1 });
      const rec = owner.recordings[0]!;
      for (let i = 0; i < GRANTS_PER_MINUTE; i++) assert.equal((await grant(owner, rec.id)).status, 201, `grant ${i + 1}`);
      const refused = await grant(owner, rec.id);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.equal(((await refused.json()) as { code: string }).code, 'RATE_LIMITED');
      assert.equal((await rig.request('GET', '/v1/recordings', { token: owner.token })).status, 200, 'other routes keep the general limit');
      assert.equal((await grant(bob, bob.recordings[0]!.id)).status, 201, 'the limit is per token');
    });
  });
}
