import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { databaseKinds } from '../helpers/db.js';
import { createOutbox } from '../../src/events/outbox.js';
import { startDelivery } from '../../src/events/delivery.js';
import { createLogger } from '../../src/log.js';
import { Receiver } from './receiver.js';
import { untilValue } from '../helpers/until.js';

const log = createLogger('silent');
const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const opts = (url: string, s: string) => ({ url, secret: s, maxRetryHours: 24, timeoutMs: 2000, minBackoffMs: 50, maxBackoffMs: 500, pollMs: 20 });

/** Polls every 20 ms until the probe yields a value. */
const waitFor = <T>(probe: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> => untilValue(what, probe, ms, 20);

for (const [name, fresh] of databaseKinds) {
  describe(`event outbox on ${name}`, () => {
    const withTwo = async (fn: (a: DatabaseHandle, b: DatabaseHandle) => Promise<void>) => {
      const target = await fresh();
      const a = await openDatabase(target.url);
      const b = await openDatabase(target.url);
      try {
        await fn(a, b);
      } finally {
        await a.close();
        await b.close();
        await target.drop();
      }
    };

    test('an event written in a transaction that rolls back does not exist', async () => {
      await withTwo(async (a) => {
        const outbox = createOutbox(a.db);
        await assert.rejects(
          a.db.transaction().execute(async (tx) => {
            await outbox.write(tx, 'payout.updated', { payoutId: 'led_x', userId: 'usr_x', amountMicros: 1, state: 'pending' });
            throw new Error('the change failed');
          }),
          /the change failed/,
        );
        await outbox.write(a.db, 'payout.updated', { payoutId: 'led_y', userId: 'usr_y', amountMicros: 2, state: 'pending' });
        const rows = await outbox.list();
        assert.deepEqual(rows.map((r) => r.data.payoutId), ['led_y']);
        assert.match(rows[0]?.id ?? '', /^evt_[A-Za-z0-9_-]{22}$/);
      });
    });

    test('two nodes claiming at once never take the same row', async () => {
      await withTwo(async (a, b) => {
        const oa = createOutbox(a.db);
        const ob = createOutbox(b.db);
        for (let i = 0; i < 60; i++) await oa.write(a.db, 'earnings.updated', { callId: `call_${i}`, userId: 'usr_a', amountMicros: i, state: 'credited' });
        const took = { a: [] as string[], b: [] as string[] };
        const drain = async (o: typeof oa, into: string[]) => {
          for (;;) {
            const got = await o.claim(7, 60_000);
            if (got.length === 0) return;
            into.push(...got.map((e) => e.id));
          }
        };
        await Promise.all([drain(oa, took.a), drain(ob, took.b)]);
        const both = took.a.filter((id) => took.b.includes(id));
        assert.deepEqual(both, []);
        assert.equal(new Set([...took.a, ...took.b]).size, 60);
        assert.equal(took.a.length + took.b.length, 60);
      });
    });

    test('two delivery workers on one outbox send each event once; give-up and redeliver', async () => {
      await withTwo(async (a, b) => {
        const s = secret();
        const receiver = new Receiver(s);
        await receiver.open();
        const oa = createOutbox(a.db);
        for (let i = 0; i < 40; i++) await oa.write(a.db, 'recording.completed', { recordingId: `rec_${i}`, callId: `call_${i}`, userId: 'usr_a', durationMs: 1000 });
        const w1 = startDelivery(oa, opts(receiver.url, s), log);
        const w2 = startDelivery(createOutbox(b.db), opts(receiver.url, s), log);
        try {
          await waitFor(async () => (await oa.list({ state: 'delivered' })).length === 40, 20_000, 'all delivered');
        } finally {
          await w1.stop();
          await w2.stop();
          await receiver.close();
        }
        assert.equal(receiver.rejected, 0);
        assert.equal(receiver.deliveries.length, 40, 'no event sent twice by the two workers');

        // Nothing listens: with maxRetryHours 0 the first failure is final; redeliver makes it due again.
        const dead = createServer();
        await new Promise<void>((r) => dead.listen(0, '127.0.0.2', () => r()));
        const port = (dead.address() as AddressInfo).port;
        await new Promise<void>((r) => dead.close(() => r()));
        await oa.write(a.db, 'call.ended', { callId: 'call_z', userId: 'usr_a', reason: 'remote-hangup', answered: true, durationMs: 5 });
        const w3 = startDelivery(oa, { ...opts(`http://127.0.0.2:${port}/`, s), maxRetryHours: 0 }, log);
        const [failed] = await waitFor(async () => {
          const f = await oa.list({ state: 'failed' });
          return f.length === 1 && f;
        }, 10_000, 'the event marked failed').finally(() => w3.stop());
        assert.equal(failed?.attempts, 1);
        assert.ok(failed?.lastError);
        assert.equal(await oa.redeliver(failed?.id ?? ''), true);
        assert.equal((await oa.get(failed?.id ?? ''))?.state, 'pending');
        assert.equal(await oa.redeliver('evt_missing'), false);
      });
    });
  });
}
