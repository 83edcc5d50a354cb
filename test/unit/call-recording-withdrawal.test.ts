import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';
import { Call, type RecordingHandle } from '../../src/calls/call.js';
import { Switchboard } from '../../src/calls/switchboard.js';
import { FakeChannel, FakeInboundLeg, FakeMedia, FakeRecords, FakeSession, FakeTrunk, FakeUsers, settle } from '../helpers/call-fakes.js';

/** A recording whose stop the test finishes by hand, recording every cause it was stopped with. */
function handle() {
  const causes: string[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  let stopping: Promise<void> | undefined;
  const h: RecordingHandle = {
    stop(cause = 'call-ended') {
      causes.push(cause);
      stopping ??= finished;
      return stopping;
    },
    pause: () => 'ok',
    resume: () => 'ok',
  };
  return { h, causes, finish };
}

function newCall() {
  const users = new FakeUsers();
  const owner = users.add('+15550001111');
  const call = new Call({ id: 'call_1', direction: 'outbound', counterpart: '+15550002222', channel: new FakeChannel(owner.id), media: new FakeSession('call_1'), records: new FakeRecords(), log: createLogger('silent'), maxLengthMs: 60_000 });
  call.admit(owner);
  return { call, owner };
}

test('a withdrawal that comes while the recording is still starting stops it as soon as it has started, and waits for that', async () => {
  const { call } = newCall();
  const rec = handle();
  let started!: (h: RecordingHandle) => void;
  call.attachRecording(new Promise<RecordingHandle>((r) => (started = r)));
  let done = false;
  const stopped = call.stopRecording('consent-revoked').then(() => (done = true));
  assert.equal(call.recordingWithdrawn, true, 'the hook sees it before starting another');
  await settle();
  assert.deepEqual(rec.causes, [], 'nothing to stop yet');
  started(rec.h);
  await settle();
  assert.deepEqual(rec.causes, ['consent-revoked']);
  assert.equal(done, false, 'the withdrawal answers once the recording is finished');
  rec.finish();
  await stopped;
  assert.equal(call.closed, false, 'the call goes on');
  call.close('local-hangup');
  await settle();
  assert.deepEqual(rec.causes, ['consent-revoked', 'call-ended'], 'the hangup asks again; the recording keeps its first cause');
});

test('a recording attached after the withdrawal stops at once; a call without one answers at once', async () => {
  const { call } = newCall();
  await call.stopRecording('consent-revoked');
  const rec = handle();
  call.attachRecording(rec.h);
  await settle();
  assert.deepEqual(rec.causes, ['consent-revoked']);
  const other = newCall().call;
  other.attachRecording(Promise.resolve(undefined));
  await other.stopRecording('consent-revoked');
});

test("Switchboard.callsOf: the user's live calls, from the first moment, and no one else's", async () => {
  const users = new FakeUsers();
  const media = new FakeMedia();
  const board = new Switchboard(
    { users, records: new FakeRecords(), media, log: createLogger('silent'), trunk: new FakeTrunk() },
    { ringTimeoutMs: 60_000, maxCallsPerUser: 3, drainMs: 0, allowedCountryCodes: ['1'], deniedPrefixes: [], maxCallSeconds: 3600, dailyMaxCallAttempts: 100, dailyMaxMinutes: 1000 },
  );
  const calls: Call[] = [];
  board.on('call', (c) => calls.push(c));
  const alice = users.add('+15550001111');
  const bob = users.add('+15550003333');
  const aliceDialer = new FakeChannel(alice.id);
  const bobDialer = new FakeChannel(bob.id);
  board.attachDialer(aliceDialer);
  board.attachDialer(bobDialer);

  void board.startCall(aliceDialer, 'a1', '+15550002222', 'v=0 dialer');
  const aliceCall = calls.at(-1)!;
  void board.startCall(bobDialer, 'b1', '+15550002222', 'v=0 dialer');
  const bobCall = calls.at(-1)!;
  assert.deepEqual(board.callsOf(alice.id), [aliceCall], 'before its owner is even looked up');
  assert.deepEqual(board.callsOf(bob.id), [bobCall]);

  // An INVITE for Alice's number whose lookup has not come back is nobody's yet.
  users.hold = true;
  board.incoming({ sipCallId: 'in-1', from: '+15550004444', to: alice.phone, sdp: 'v=0 trunk' }, new FakeInboundLeg());
  const inbound = calls.at(-1)!;
  assert.deepEqual(board.callsOf(alice.id), [aliceCall]);
  assert.deepEqual(board.callsOf(''), []);
  (await users.lookups.next()).resolve(alice);
  await settle();
  assert.deepEqual(board.callsOf(alice.id), [aliceCall, inbound], 'admitted: now hers');

  aliceCall.close('local-hangup');
  assert.deepEqual(board.callsOf(alice.id), [inbound], 'an ended call is not live');
  inbound.close('cancelled');
  bobCall.close('local-hangup');
  assert.deepEqual(board.callsOf(alice.id), []);
});
