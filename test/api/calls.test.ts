import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startApiRig, type ApiRig, type SeededOwner } from './fixture.js';
import { newId } from '../../src/ids.js';

interface CallItem {
  id: string;
  direction: string;
  counterpart: string;
  createdAt: string;
  ringingAt: string | null;
  answeredAt: string | null;
  endedAt: string | null;
  billableSeconds: number | null;
  endReason: string | null;
  recordingNote: string | null;
  recordingId: string | null;
  earning: { amountMicros: number; state: string } | null;
}
interface CallPage {
  items: CallItem[];
  nextCursor: string | null;
}

/** A 404 as the client sees it: status, every header but the date, and the body bytes. */
async function shape(res: Response): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== 'date') headers[k] = v;
  });
  return { status: res.status, headers, body: await res.text() };
}

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`GET /v1/calls on ${database}`, () => {
    let rig: ApiRig;
    let alice: SeededOwner;
    let bob: SeededOwner;
    /** Alice's calls, newest first, as the API must list them. */
    let expected: string[];
    const t0 = Date.now() - 3_600_000;
    const known = { unanswered: newId('call'), live: newId('call'), settled: newId('call') };
    const tied = [newId('call'), newId('call'), newId('call')];

    before(async () => {
      rig = await startApiRig({ database });
      alice = await rig.seedOwner('+15551110001', { calls: 3, seconds: 1 });
      bob = await rig.seedOwner('+15551110002', { calls: 2, seconds: 1 });
      const { records } = rig.service;
      // A missed call, a live one, one settled by the real settler, and three created in the same millisecond
      // (the keyset's tie-break on the id).
      await records.create({ id: known.unanswered, userId: alice.id, direction: 'inbound', counterpart: '+15559990001', createdAt: t0 });
      await records.update(known.unanswered, { ringingAt: t0 + 500, endedAt: t0 + 20_000, endReason: 'no-answer' });
      await records.create({ id: known.live, userId: alice.id, direction: 'outbound', counterpart: '+15559990002', createdAt: t0 + 1000 });
      await records.update(known.live, { ringingAt: t0 + 1500, answeredAt: t0 + 2000 });
      await records.create({ id: known.settled, userId: alice.id, direction: 'outbound', counterpart: '+15559990003', createdAt: t0 + 2000 });
      await records.update(known.settled, { ringingAt: t0 + 2100, answeredAt: t0 + 3000, endedAt: t0 + 3000 + 125_400, endReason: 'local-hangup' });
      const row = await rig.service.db.db.selectFrom('calls').select('counterpart_hash').where('id', '=', known.settled).executeTakeFirstOrThrow();
      await rig.service.settler.settle({ callId: known.settled, userId: alice.id, answeredAt: t0 + 3000, endedAt: t0 + 128_400, talkMs: 100_000, counterpartHash: row.counterpart_hash, counterpartEnrolled: false });
      for (const id of tied) await records.create({ id, userId: alice.id, direction: 'outbound', counterpart: '+15559990004', createdAt: t0 - 5000 });
      // Newest first: the seeded calls were made a minute apart counting back from now; ties by id, descending.
      expected = [...alice.calls, known.settled, known.live, known.unanswered, ...[...tied].sort().reverse()];
    });
    after(() => rig.close());

    const list = async (token: string, query: string): Promise<{ res: Response; page: CallPage }> => {
      const res = await rig.request('GET', `/v1/calls${query}`, { token });
      return { res, page: res.status === 200 ? ((await res.clone().json()) as CallPage) : { items: [], nextCursor: null } };
    };

    test('limit 1 and limit 2 walk every call exactly once, newest first; none of another user', async () => {
      for (const limit of [1, 2]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const { res, page } = await list(alice.token, `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          assert.equal(res.status, 200);
          assert.ok(page.items.length <= limit);
          seen.push(...page.items.map((c) => c.id));
          cursor = page.nextCursor;
          pages++;
          assert.ok(pages <= expected.length + 1, 'the walk ends');
        } while (cursor);
        assert.deepEqual(seen, expected, `limit ${limit}`);
        assert.equal(pages, Math.ceil(expected.length / limit), 'the last page has no next cursor');
      }
      const { page } = await list(alice.token, '');
      assert.deepEqual(page.items.map((c) => c.id), expected, 'default limit 20 holds them all');
      assert.equal(page.nextCursor, null);
      const bobs = await list(bob.token, '?limit=100');
      assert.deepEqual(bobs.page.items.map((c) => c.id), bob.calls);
      const text = JSON.stringify((await list(alice.token, '?limit=100')).page);
      for (const id of [...bob.calls, ...bob.recordings.map((r) => r.id)]) assert.ok(!text.includes(id), 'no id of another user');
    });

    test('each field: direction, counterpart, server timestamps, billable seconds, end reason, recording and earning', async () => {
      const get = async (id: string) => {
        const res = await rig.request('GET', `/v1/calls/${id}`, { token: alice.token });
        assert.equal(res.status, 200);
        return (await res.json()) as CallItem;
      };
      const seeded = await get(alice.calls[0]!);
      const record = await rig.service.records.get(alice.id, alice.calls[0]!);
      assert.ok(record && record.answeredAt !== null && record.endedAt !== null);
      assert.deepEqual(seeded, {
        id: alice.calls[0],
        direction: 'outbound',
        counterpart: record.counterpart,
        createdAt: new Date(record.createdAt).toISOString(),
        ringingAt: new Date(record.createdAt + 1000).toISOString(),
        answeredAt: new Date(record.createdAt + 2000).toISOString(),
        endedAt: new Date(record.createdAt + 32_000).toISOString(),
        billableSeconds: 30,
        endReason: 'remote-hangup',
        recordingNote: null,
        recordingId: alice.recordings[0]!.id,
        earning: { amountMicros: 4_000_000, state: 'credited' },
      });
      assert.match(seeded.counterpart, /^\+1555\d{7}$/, 'the number in the clear, to its owner');
      assert.equal((await get(alice.calls[1]!)).direction, 'inbound');

      assert.deepEqual(await get(known.unanswered), {
        id: known.unanswered,
        direction: 'inbound',
        counterpart: '+15559990001',
        createdAt: new Date(t0).toISOString(),
        ringingAt: new Date(t0 + 500).toISOString(),
        answeredAt: null,
        endedAt: new Date(t0 + 20_000).toISOString(),
        billableSeconds: 0,
        endReason: 'no-answer',
        recordingNote: null,
        recordingId: null,
        earning: null,
      });
      const live = await get(known.live);
      assert.equal(live.billableSeconds, null, 'a live call has no billable time yet');
      assert.equal(live.endedAt, null);

      const settled = await get(known.settled);
      const settlement = await rig.service.settler.get(known.settled);
      assert.ok(settlement);
      assert.equal(settled.billableSeconds, settlement.billableS);
      assert.equal(settled.billableSeconds, 125);
      assert.deepEqual(settled.earning, { amountMicros: settlement.amountMicros, state: settlement.state });
      assert.ok(settlement.amountMicros > 0, 'a paid call');

      // A recording shredded (its key gone, marked deleted) is no longer named. (The state `deleted` needs
      // the shred migration's CHECK; deleted_at is what the shred sets first either way.)
      const gone = alice.recordings[2]!;
      await rig.service.db.db.updateTable('recordings').set({ deleted_at: Date.now(), wrapped_key: null }).where('id', '=', gone.id).execute();
      assert.equal((await get(gone.callId)).recordingId, null);
    });

    test("another user's call id answers the same 404 as a random id and a malformed one; a bad cursor is 400", async () => {
      const foreign = await shape(await rig.request('GET', `/v1/calls/${alice.calls[0]}`, { token: bob.token }));
      const random = await shape(await rig.request('GET', `/v1/calls/call_${randomBytes(16).toString('base64url')}`, { token: bob.token }));
      const malformed = await shape(await rig.request('GET', '/v1/calls/call_not*an*id', { token: bob.token }));
      const otherPrefix = await shape(await rig.request('GET', `/v1/calls/rec_${randomBytes(16).toString('base64url')}`, { token: bob.token }));
      assert.equal(foreign.status, 404);
      assert.deepEqual(JSON.parse(foreign.body), { code: 'NOT_FOUND', message: 'no such resource' });
      assert.deepEqual(random, foreign);
      assert.deepEqual(malformed, foreign);
      assert.deepEqual(otherPrefix, foreign);
      // The owner still reads it: the 404 above was the ownership filter.
      assert.equal((await rig.request('GET', `/v1/calls/${alice.calls[0]}`, { token: alice.token })).status, 200);

      for (const cursor of ['garbage', Buffer.from('[1,2,3]').toString('base64url'), Buffer.from('{"at":1}').toString('base64url'), Buffer.from('["x","y"]').toString('base64url')]) {
        const res = await rig.request('GET', `/v1/calls?cursor=${cursor}`, { token: alice.token });
        assert.equal(res.status, 400, cursor);
        assert.equal(((await res.json()) as { code: string }).code, 'BAD_CURSOR');
      }
      for (const q of ['?limit=0', '?limit=101', '?limit=two', '?userId=' + alice.id]) {
        const res = await rig.request('GET', `/v1/calls${q}`, { token: bob.token });
        assert.equal(res.status, 400, q);
        assert.equal(((await res.json()) as { code: string }).code, 'BAD_REQUEST', q);
      }
      assert.equal((await rig.request('GET', '/v1/calls')).status, 401);
    });
  });
}
