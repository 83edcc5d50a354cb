import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApiRig } from '../api/fixture.js';

/** `GET /v1/me/audit`: the events about the caller's data, newest first, paged by seq; nobody else's. */
test('GET /v1/me/audit lists the events about the caller’s data, newest first, page by page, actors as the caller may see them', async () => {
  const rig = await startApiRig();
  try {
    const a = await rig.seedOwner('+15559200001', { calls: 1 });
    const b = await rig.seedOwner('+15559200002', { calls: 1 });
    const audit = rig.service.audit;
    const recA = a.recordings[0]!.id;
    const recB = b.recordings[0]!.id;
    await audit.append({ actor: `user:${a.id}`, action: 'recording.grant', userId: a.id, recordingId: recA, detail: 'grant grt_1 (play)' });
    await audit.append({ actor: `user:${b.id}`, action: 'recording.grant', userId: b.id, recordingId: recB, detail: 'b’s own' });
    await audit.append({ actor: 'operator:ops', action: 'recording.decrypt', userId: a.id, recordingId: recA, detail: null });
    await audit.append({ actor: 'system:retention', action: 'recording.retention-shred', userId: a.id, recordingId: recA });
    await audit.append({ actor: 'admin', action: 'admin.token-issue', userId: a.id });
    // An entry about A's data made by another user (none of today's routes writes one): B's id stays hidden.
    await audit.append({ actor: `user:${b.id}`, action: 'user.export', userId: a.id, detail: 'about a' });
    await audit.append({ actor: 'operator:ops', action: 'recording.verify', userId: b.id, recordingId: recB });

    const seen: Array<Record<string, unknown>> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await rig.request('GET', `/v1/me/audit?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: a.token });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { items: Array<Record<string, unknown>>; nextCursor: string | null };
      assert.ok(body.items.length <= 2);
      seen.push(...body.items);
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(pages, 3, '5 events in pages of 2');
    assert.deepEqual(
      seen.map((e) => [e.seq, e.actor, e.action, e.recordingId, e.detail]),
      [
        [6, 'user', 'user.export', null, 'about a'],
        [5, 'admin', 'admin.token-issue', null, null],
        [4, 'system:retention', 'recording.retention-shred', recA, null],
        [3, 'operator:ops', 'recording.decrypt', recA, null],
        [1, 'you', 'recording.grant', recA, 'grant grt_1 (play)'],
      ],
    );
    for (const e of seen) {
      assert.deepEqual(Object.keys(e).sort(), ['action', 'actor', 'at', 'detail', 'recordingId', 'seq']);
      assert.match(String(e.at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    assert.ok(!JSON.stringify(seen).includes(b.id), "another user's id never shows");

    const bs = (await (await rig.request('GET', '/v1/me/audit', { token: b.token })).json()) as { items: Array<{ seq: number; actor: string }> };
    assert.deepEqual(bs.items.map((e) => [e.seq, e.actor]), [[7, 'operator:ops'], [2, 'you']]);

    for (const [q, code] of [['cursor=nonsense', 'BAD_CURSOR'], [`cursor=${Buffer.from('["audit",-1]').toString('base64url')}`, 'BAD_CURSOR'], ['limit=0', 'BAD_REQUEST'], ['limit=101', 'BAD_REQUEST'], ['userId=' + b.id, 'BAD_REQUEST']] as const) {
      const res = await rig.request('GET', `/v1/me/audit?${q}`, { token: a.token });
      assert.equal(res.status, 400, q);
      assert.equal(((await res.json()) as { code: string }).code, code, q);
    }
  } finally {
    await rig.close();
  }
});
