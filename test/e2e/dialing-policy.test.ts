import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestService } from '../helpers/service.js';
import { startWrtcRig, type WrtcRig } from '../helpers/wrtc-rig.js';
import { signalClient, isError, webrtcOffer } from '../helpers/signal-client.js';
import { startSilentTrunk } from '../helpers/silent-trunk.js';
import { until } from '../helpers/until.js';

/**
 * The paid-dialing policy through the whole service: denied destinations never reach the trunk, an
 * answered call ends at its maximum length, and the daily caps, counted from the call records, refuse
 * the next call. Short limits here: 5 s calls, 3 attempts and 1 minute a day.
 */
const MAX_CALL_SECONDS = 5;
let rig: WrtcRig;
let service: TestService;
let trunkPort: number;
let sdp: string;

before(async () => {
  rig = await startWrtcRig({ calls: { maxCallSeconds: MAX_CALL_SECONDS, dailyMaxCallAttempts: 3, dailyMaxMinutes: 1 } });
  service = rig.service;
  trunkPort = service.config.sip.trunk.port;
  sdp = await webrtcOffer();
});

after(async () => rig?.close());

test(`an answered call ends max-duration after calls.maxCallSeconds (${MAX_CALL_SECONDS} s)`, async () => {
  const { dialer, userId } = await rig.dialer('+15550003333');
  const callId = await rig.call(dialer);
  assert.equal(await dialer.waitEnded(callId, 15_000), 'max-duration');
  const rec = await service.records.get(userId, callId);
  const length = rec!.endedAt! - rec!.answeredAt!;
  assert.equal(rec?.endReason, 'max-duration');
  assert.ok(length >= MAX_CALL_SECONDS * 1000 && length < MAX_CALL_SECONDS * 1000 + 1500, `answered for ${length} ms`);
});

test('the daily attempts cap counts the call records (seeded and real) and refuses the next call with DAILY_LIMIT', async () => {
  const { dialer, userId } = await rig.dialer('+15550004444');
  // Two attempts earlier today, as another node or an earlier process would have left them.
  const now = Date.now();
  for (const id of ['call_seed_a1', 'call_seed_a2']) {
    await service.records.create({ id, userId, direction: 'outbound', counterpart: '+15550002222', createdAt: now });
    await service.records.update(id, { endedAt: now, endReason: 'busy', sipStatus: 486 });
  }
  const callId = await rig.call(dialer); // the third and last one today
  await rig.hangup(dialer, callId);
  const refusedBefore = service.switchboard.refusedStarts.DAILY_LIMIT ?? 0;
  await assert.rejects(dialer.call('+15550002222'), /DAILY_LIMIT at most 3 calls a day/);
  assert.equal((service.switchboard.refusedStarts.DAILY_LIMIT ?? 0) - refusedBefore, 1);
  assert.equal((await service.records.outboundTally(userId, 0, { now: Date.now(), maxCallMs: 0 })).attempts, 3);
});

test('the daily minutes cap refuses the next call with DAILY_LIMIT once a minute was dialled today', async () => {
  const { dialer, userId } = await rig.dialer('+15550005555');
  const now = Date.now();
  await service.records.create({ id: 'call_seed_m1', userId, direction: 'outbound', counterpart: '+15550002222', createdAt: now });
  await service.records.update('call_seed_m1', { answeredAt: now, endedAt: now + 60_000, endReason: 'remote-hangup' });
  await assert.rejects(dialer.call('+15550002222'), /DAILY_LIMIT at most 1 minutes of calls a day/);
});

test('a call ends max-duration when the day\'s minutes run out, before its maximum length', async () => {
  const { dialer, userId } = await rig.dialer('+15550006666');
  const now = Date.now();
  await service.records.create({ id: 'call_seed_m2', userId, direction: 'outbound', counterpart: '+15550002222', createdAt: now });
  await service.records.update('call_seed_m2', { answeredAt: now, endedAt: now + 57_000, endReason: 'remote-hangup' });
  const callId = await rig.call(dialer);
  assert.equal(await dialer.waitEnded(callId, 15_000), 'max-duration');
  const rec = await service.records.get(userId, callId);
  const length = rec!.endedAt! - rec!.answeredAt!;
  assert.ok(length >= 2900 && length < 4500, `3 s of the day's minute were left (the maximum length is 5 s); the call lasted ${length} ms`);
});

// Last: the silent trunk leaves our INVITE and CANCEL retransmitting at the trunk's port, where sipp listens in the others.
test('each denied class is refused DESTINATION_NOT_ALLOWED, counted, and never reaches the trunk', async () => {
  await rig.stopTrunk(); // the earlier tests' sipps listen on the trunk's port until they exit
  const trunk = await startSilentTrunk(trunkPort);
  const { id, token } = await service.addUser('+15550001111');
  const c = await signalClient(service.httpPort);
  try {
    await c.auth(token);
    const refusedBefore = service.switchboard.refusedStarts.DESTINATION_NOT_ALLOWED ?? 0;
    const denied: Array<[ref: string, to: string, message: RegExp]> = [
      ['country', '+447700900123', /country codes \+1\b/],
      ['satellite', '+881612345678', /country codes \+1\b/],
      ['premium', '+19005550100', /starting \+1900 /],
      ['caribbean', '+18765550100', /starting \+1876 /],
      ['own', '+1 (555) 000-1111', /your own number/],
    ];
    for (const [ref, to, message] of denied) {
      c.send({ type: 'call.start', ref, to, sdp });
      assert.match((await c.next(isError('DESTINATION_NOT_ALLOWED', ref))).message, message);
    }
    // An allowed call afterwards is the barrier: once its INVITE arrived, any earlier one would have too.
    c.send({ type: 'call.start', ref: 'allowed', to: '+15550002222', sdp });
    const created = await c.next((m) => m.type === 'call.created' && m.ref === 'allowed');
    await until('the allowed INVITE reaches the trunk', () => trunk.invites().length > 0, 10_000);
    const invites = trunk.invites();
    assert.equal(invites.length, 1, `the trunk saw only the allowed call: ${JSON.stringify(invites)}`);
    assert.match(invites[0]!, /^INVITE sip:\+15550002222@/);
    assert.equal((service.switchboard.refusedStarts.DESTINATION_NOT_ALLOWED ?? 0) - refusedBefore, denied.length);
    const recorded = async () => (await service.records.outboundTally(id, 0, { now: Date.now(), maxCallMs: 0 })).attempts;
    await until('the allowed call is recorded', async () => (await recorded()) >= 1, 5000);
    assert.equal(await recorded(), 1, 'refused starts leave no call record');

    const callId = created.type === 'call.created' ? created.callId : '';
    c.send({ type: 'call.hangup', callId });
    await c.next((m) => m.type === 'call.ended' && m.callId === callId);
    assert.deepEqual(await service.media.listCalls(), []);
  } finally {
    c.close();
    await trunk.close();
  }
});
