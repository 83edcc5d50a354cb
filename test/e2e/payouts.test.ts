import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { startWrtcRig, type WrtcRig } from '../helpers/wrtc-rig.js';
import type { WrtcDialer } from '../helpers/wrtc-dialer.js';
import type { TestService } from '../helpers/service.js';

/**
 * Paying for talk time on the server's clock, exactly once: real calls through the service (libwebrtc
 * dialer, sipp trunk, rtpengine, recorder), signed provider webhooks racing the call's own end.
 */
const SECRET = 'generic-webhook-secret';
const overrides = {
  payouts: { minBillableSeconds: 1 },
  webhooks: { generic: { secret: SECRET } },
};

type Earned = { amountMicros: number; state: string };
async function earnings(d: WrtcDialer, callId: string): Promise<Earned> {
  for (let i = 0; i < 100; i++) {
    const m = d.messages.find((x) => x.type === 'earnings.updated' && x.callId === callId);
    if (m && m.type === 'earnings.updated') return m;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no earnings.updated for ${callId}`);
}

async function billableSeconds(service: TestService, callId: string): Promise<number> {
  const row = await service.db.db.selectFrom('calls').select(['answered_at', 'ended_at']).where('id', '=', callId).executeTakeFirstOrThrow();
  return Math.floor((Number(row.ended_at) - Number(row.answered_at)) / 1000);
}

function webhook(service: TestService, body: Record<string, unknown>): Promise<Response> {
  const raw = JSON.stringify(body);
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', SECRET).update(`${ts}.${raw}`).digest('hex');
  return fetch(`http://127.0.0.1:${service.httpPort}/v1/webhooks/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-monologue-timestamp': ts, 'x-monologue-signature': sig },
    body: raw,
  });
}

async function credits(service: TestService, callId: string) {
  return service.db.db.selectFrom('ledger_entries').selectAll().where('call_id', '=', callId).execute();
}

test('a talking call earns rate × seconds; a call to an enrolled user earns the higher rate; a silent one earns 0 and is held', async () => {
  const rig = await startWrtcRig(overrides);
  try {
    const { dialer, userId } = await rig.dialer('+15550001111');
    const talking = await rig.call(dialer);
    await new Promise((r) => setTimeout(r, 3500));
    await rig.hangup(dialer, talking);
    const paid = await earnings(dialer, talking);
    const secs = await billableSeconds(rig.service, talking);
    assert.ok(secs >= 3);
    assert.deepEqual(paid, { type: 'earnings.updated', callId: talking, amountMicros: Math.floor((150_000 * secs) / 60), state: 'credited' });
    assert.equal((await rig.service.ledger.balance(userId)).availableMicros, paid.amountMicros);

    await rig.dialer('+15550003333'); // the counterpart is an enrolled user
    const toEnrolled = await rig.call(dialer, '+15550003333');
    await new Promise((r) => setTimeout(r, 2500));
    await rig.hangup(dialer, toEnrolled);
    const higher = await earnings(dialer, toEnrolled);
    assert.equal(higher.amountMicros, Math.floor((300_000 * (await billableSeconds(rig.service, toEnrolled))) / 60));

    const silent = await rig.call(dialer, '+15550004444', { toneHz: 440, amplitude: 0 });
    await new Promise((r) => setTimeout(r, 3000));
    await rig.hangup(dialer, silent);
    assert.deepEqual(await earnings(dialer, silent), { type: 'earnings.updated', callId: silent, amountMicros: 0, state: 'held' });
    const held = await rig.service.settler.get(silent);
    assert.ok(held?.flags.includes('silent'), JSON.stringify(held));
    assert.deepEqual(await credits(rig.service, silent), [], 'nothing credited for silence');
  } finally {
    await rig.close();
  }
});

for (const database of ['sqlite', 'postgres'] as const) {
  test(`exactly once on ${database}: 50 concurrent duplicate webhooks and the call's own end credit the call once`, async () => {
    const rig: WrtcRig = await startWrtcRig(overrides, database);
    try {
      const { dialer, userId } = await rig.dialer('+15550001111');
      const callId = await rig.call(dialer);
      await new Promise((r) => setTimeout(r, 2500));
      const hangup = rig.hangup(dialer, callId);
      const event = { id: `evt-${callId}`, type: 'call.completed', callRef: callId, durationSeconds: 2 };
      const responses = await Promise.all(Array.from({ length: 50 }, () => webhook(rig.service, event)));
      await hangup;
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{ ok: boolean; duplicate?: boolean }>;
      assert.ok(responses.every((r) => r.status === 200));
      assert.equal(bodies.filter((b) => !b.duplicate).length, 1, 'one event processed, 49 duplicates');
      const earned = await earnings(dialer, callId);
      assert.equal(earned.state, 'credited');
      const entries = await credits(rig.service, callId);
      assert.equal(entries.length, 1, 'one credit');
      assert.equal(Number(entries[0]!.amount_micros), earned.amountMicros);
      const balance = await rig.service.ledger.balance(userId);
      assert.equal(balance.totalMicros, earned.amountMicros, 'balance is the sum of entries');
    } finally {
      await rig.close();
    }
  });
}

test('reconciliation: a provider duration 30 s longer than ours holds the call and does not pay the difference', async () => {
  const rig = await startWrtcRig(overrides);
  try {
    const { dialer, userId } = await rig.dialer('+15550001111');
    const callId = await rig.call(dialer);
    await new Promise((r) => setTimeout(r, 2500));
    await rig.hangup(dialer, callId);
    const earned = await earnings(dialer, callId);
    assert.equal(earned.state, 'credited');
    const ours = await billableSeconds(rig.service, callId);

    const res = await webhook(rig.service, { id: `late-${callId}`, type: 'call.completed', callRef: callId, durationSeconds: ours + 30 });
    assert.equal(res.status, 200);
    const settlement = await rig.service.settler.get(callId);
    assert.equal(settlement?.state, 'held');
    assert.ok(settlement?.flags.includes('duration-mismatch'));
    assert.equal(settlement?.amountMicros, earned.amountMicros, 'paid for our duration only');
    const [entry] = await credits(rig.service, callId);
    assert.equal(entry?.state, 'pending', 'the credit cannot be withdrawn while held');
    assert.equal(Number(entry?.amount_micros), Math.floor((150_000 * ours) / 60));

    const forged = await fetch(`http://127.0.0.1:${rig.service.httpPort}/v1/webhooks/generic`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-monologue-timestamp': String(Math.floor(Date.now() / 1000)), 'x-monologue-signature': '0'.repeat(64) },
      body: JSON.stringify({ id: 'forged', type: 'call.completed', callRef: callId, durationSeconds: 1 }),
    });
    assert.equal(forged.status, 401);

    // A reviewer releases it from the operator CLI; the earnings read model shows it.
    const env = { ...process.env, MONOLOGUE_DATA_DIR: rig.service.config.dataDir, DATABASE_URL: rig.service.config.database.url };
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    assert.deepEqual((cli('review', 'list').held as Array<{ callId: string }>).map((h) => h.callId), [callId]);
    assert.equal((cli('review', 'release', callId).settlement as { state: string }).state, 'released');
    const report = cli('earnings', '--user', userId) as { balance: { availableMicros: number }; calls: Array<{ callId: string; state: string }> };
    assert.equal(report.balance.availableMicros, earned.amountMicros);
    assert.deepEqual(report.calls.map((c) => [c.callId, c.state]), [[callId, 'released']]);
  } finally {
    await rig.close();
  }
});
