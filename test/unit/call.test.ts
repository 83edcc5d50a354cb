import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';
import { Call } from '../../src/calls/call.js';
import { FakeChannel, FakeInboundLeg, FakeRecords, FakeSession, FakeUsers, settle } from '../helpers/call-fakes.js';

/** A Call's own rules: admitted before it has a record, closed once, tells only a dialer that knows it. */
function newCall(direction: 'inbound' | 'outbound', channel?: FakeChannel) {
  const records = new FakeRecords();
  const media = new FakeSession('call_1');
  const call = new Call({ id: 'call_1', direction, counterpart: '+15550002222', channel, media, records, log: createLogger('silent'), maxLengthMs: 60_000 });
  const events: string[] = [];
  call.on('ended', (r) => events.push(`ended:${r}`));
  call.on('close', (r) => events.push(`close:${r}`));
  return { call, records, media, events };
}

test('a call never admitted writes no record and tells no dialer; it still closes once', async () => {
  const channel = new FakeChannel('user-1');
  const { call, records, media, events } = newCall('outbound', channel);
  call.record({ ringingAt: 1 });
  call.close('dialer-disconnected');
  call.close('local-hangup');
  await settle();
  assert.equal(records.rows.size, 0);
  assert.equal(records.patches.length, 0);
  assert.deepEqual(channel.sent, []);
  assert.deepEqual(events, ['ended:dialer-disconnected', 'close:dialer-disconnected']);
  assert.equal(media.closes, 1);
  assert.equal(call.admit(new FakeUsers().add('+15550001111')), false, 'a closed call is not admitted');
});

test('admitted and announced: one record, one end, one call.ended after the media is released', async () => {
  const users = new FakeUsers();
  const owner = users.add('+15550001111');
  const channel = new FakeChannel(owner.id);
  const { call, records, events } = newCall('outbound', channel);
  assert.equal(call.admit(owner), true);
  assert.equal(call.admit(owner), false, 'once');
  call.markAnnounced();
  call.close('remote-hangup', 200);
  assert.deepEqual(events, ['ended:remote-hangup'], '`ended` is synchronous; `close` waits for the media');
  call.close('local-hangup');
  await settle();
  await call.flushed();
  assert.deepEqual(events, ['ended:remote-hangup', 'close:remote-hangup']);
  assert.deepEqual(channel.of('ended'), [{ type: 'ended', callId: 'call_1', reason: 'remote-hangup' }]);
  assert.equal(records.endings('call_1'), 1);
  assert.equal(records.rows.get('call_1')?.endReason, 'remote-hangup');
});

test("an inbound call binds only its owner's dialer, and stores the status its leg sent", async () => {
  const users = new FakeUsers();
  const owner = users.add('+15550001111');
  const { call, records } = newCall('inbound');
  const leg = new FakeInboundLeg();
  call.inboundLeg = leg;
  assert.equal(call.userId, '');
  assert.equal(call.bindDialer(new FakeChannel(owner.id)), false, 'not before the owner is known');
  call.admit(owner);
  assert.equal(call.bindDialer(new FakeChannel('someone-else')), false);
  const mine = new FakeChannel(owner.id);
  assert.equal(call.bindDialer(mine), true);
  assert.equal(call.channel, mine);
  call.close('rejected');
  await call.flushed();
  assert.deepEqual(leg.log, ['reject:603']);
  assert.equal(records.rows.get('call_1')?.sipStatus, 603);
});

test('the SIP Call-ID and the ringing time ride along with the next write: answer and end are two statements', async () => {
  const users = new FakeUsers();
  const owner = users.add('+15550001111');
  const channel = new FakeChannel(owner.id);
  const { call, records } = newCall('outbound', channel);
  call.admit(owner);
  call.record({ sipCallId: 'sip-1' }, 'with-next');
  call.markRinging();
  await call.flushed();
  assert.equal(records.patches.length, 0, 'nothing written while it only rings');
  assert.equal(records.rows.get('call_1')?.ringingAt, null);
  call.markAnswered();
  await call.flushed();
  assert.equal(records.patches.length, 1, 'one update at the answer');
  const answered = records.rows.get('call_1')!;
  assert.equal(answered.sipCallId, 'sip-1');
  assert.ok(answered.ringingAt !== null && answered.answeredAt !== null && answered.ringingAt <= answered.answeredAt);
  call.close('local-hangup');
  await settle();
  await call.flushed();
  assert.equal(records.patches.length, 2, 'one more at the end');
  assert.equal(records.rows.get('call_1')?.endReason, 'local-hangup');
});

test('a call that ends while it rings still stores its SIP Call-ID and ringing time, with its end', async () => {
  const users = new FakeUsers();
  const owner = users.add('+15550001111');
  const { call, records } = newCall('outbound', new FakeChannel(owner.id));
  call.admit(owner);
  call.record({ sipCallId: 'sip-2' }, 'with-next');
  call.markRinging();
  call.close('no-answer');
  call.record({ recordingNote: 'late' }, 'with-next');
  await settle();
  await call.flushed();
  const row = records.rows.get('call_1')!;
  assert.equal(row.sipCallId, 'sip-2');
  assert.ok(row.ringingAt !== null);
  assert.equal(row.endReason, 'no-answer');
  assert.equal(row.recordingNote, 'late', 'after the end nothing waits: it is written at once');
  assert.equal(records.patches.length, 2);
});
