import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';
import { Switchboard } from '../../src/calls/switchboard.js';
import type { Call } from '../../src/calls/call.js';
import type { InboundListener } from '../../src/calls/ports.js';
import { FakeChannel, FakeInboundLeg, FakeMedia, FakeRecords, FakeTrunk, FakeUsers, deferred, settle } from '../helpers/call-fakes.js';

/**
 * Setup races, made deterministic: every lookup and rtpengine step is a promise the test settles by
 * hand, so a CANCEL, a socket close, a second accept or a hangup lands exactly where the test says.
 */

const OWN = '+15550001111';
const CALLEE = '+15550002222';

function rig(opts: { maxCallsPerUser?: number } = {}) {
  const users = new FakeUsers();
  const records = new FakeRecords();
  const media = new FakeMedia();
  const trunk = new FakeTrunk();
  const board = new Switchboard(
    { users, records, media, log: createLogger('silent'), trunk },
    {
      ringTimeoutMs: 60_000,
      maxCallsPerUser: opts.maxCallsPerUser ?? 3,
      drainMs: 0,
      allowedCountryCodes: ['1'],
      deniedPrefixes: [],
      maxCallSeconds: 3600,
      dailyMaxCallAttempts: 100,
      dailyMaxMinutes: 1000,
    },
  );
  // What the recording hook subscribes to: a call that must not be recorded never emits `answered`.
  const events: Array<{ callId: string; event: string; reason?: string }> = [];
  const calls: Call[] = [];
  board.on('call', (call) => {
    calls.push(call);
    call.on('answered', () => events.push({ callId: call.id, event: 'answered' }));
    call.on('ended', (reason) => events.push({ callId: call.id, event: 'ended', reason }));
  });
  const user = users.add(OWN);
  const channel = new FakeChannel(user.id);
  const detach = board.attachDialer(channel);
  return { users, records, media, trunk, board, events, calls, user, channel, detach };
}

type Rig = ReturnType<typeof rig>;

/** An inbound INVITE for the user's number, as the SIP layer hands it over. */
function invite(r: Rig): { leg: FakeInboundLeg; listener: InboundListener; call: Call } {
  const leg = new FakeInboundLeg();
  const listener = r.board.incoming({ sipCallId: 'in-1', from: CALLEE, to: OWN, sdp: 'v=0 trunk' }, leg);
  const call = r.calls.at(-1)!;
  return { leg, listener, call };
}

/** The trunk's CANCEL as the SIP layer delivers it: 487 already sent, then the listener hears it. */
function cancel(leg: FakeInboundLeg, listener: InboundListener): void {
  leg.cancelledByTrunk();
  listener.cancelled();
}

/** An outbound call through to `answered` (media up), for the teardown races. */
async function answeredOutbound(r: Rig): Promise<{ call: Call; dialed: FakeTrunk['dialed'][number] }> {
  void r.board.startCall(r.channel, 'r1', CALLEE, 'v=0 dialer');
  const call = r.calls.at(-1)!;
  (await r.media.session(call.id).dialerOffers.next()).resolve('v=0 to-trunk');
  await settle();
  const dialed = r.trunk.dialed.at(-1)!;
  dialed.listener.ringing();
  dialed.listener.answered('v=0 trunk-answer');
  (await r.media.session(call.id).trunkAnswers.next()).resolve('v=0 to-dialer');
  await settle();
  assert.equal(call.state, 'answered');
  return { call, dialed };
}

test('inbound: a CANCEL while rtpengine answers the offer ends the call 487; the dialer never rings; nothing is answered', async () => {
  const r = rig();
  const { leg, listener, call } = invite(r);
  assert.equal(r.board.liveCalls, 1, 'the call exists from the INVITE on');
  const offer = await r.media.session(call.id).trunkOffers.next();
  cancel(leg, listener);
  offer.resolve('v=0 webrtc'); // rtpengine answers after the CANCEL
  await settle();
  listener.confirmed(); // a stray ACK-like event after the end changes nothing
  await settle();

  assert.deepEqual(r.channel.types(), [], 'no call.incoming, no call.ended for a call the dialer never saw');
  assert.deepEqual(leg.log, ['487'], 'no 180, no 200: the SIP layer answered the CANCEL and nothing else went out');
  const rec = r.records.rows.get(call.id)!;
  assert.equal(rec.endReason, 'cancelled');
  assert.equal(rec.sipStatus, 487);
  assert.equal(rec.answeredAt, null);
  assert.equal(rec.ringingAt, null);
  assert.deepEqual(r.events.filter((e) => e.event === 'answered'), [], 'never answered: never recorded or paid');
  assert.equal(r.media.session(call.id).closes, 1);
  assert.equal(r.board.liveCalls, 0);
});

test('inbound: a CANCEL while the number is looked up ends the call; no dialer rings and no record is left', async () => {
  const r = rig();
  r.users.hold = true;
  const { leg, listener, call } = invite(r);
  const lookup = await r.users.lookups.next();
  cancel(leg, listener);
  lookup.resolve(r.user);
  await settle();
  assert.equal(r.media.session(call.id).trunkOffers.count, 0, 'rtpengine never heard of it');
  assert.deepEqual(r.channel.types(), []);
  assert.equal(r.records.rows.size, 0, 'the owner was not known when it ended');
  assert.equal(call.reason, 'cancelled');
  assert.equal(r.board.liveCalls, 0);
});

test('inbound: a CANCEL while the dialer is being chosen ends the call before rtpengine hears of it', async () => {
  const r = rig();
  const auth = (r.channel.authorisedResult = deferred<boolean>());
  const { leg, listener, call } = invite(r);
  await settle();
  cancel(leg, listener);
  auth.resolve(true);
  await settle();
  assert.equal(r.media.session(call.id).trunkOffers.count, 0);
  assert.deepEqual(r.channel.types(), []);
  // The number was the user's: the missed attempt is in their records, as the trunk ended it.
  assert.equal(r.records.rows.get(call.id)?.endReason, 'cancelled');
  assert.equal(r.records.rows.get(call.id)?.sipStatus, 487);
});

test('inbound: a CANCEL after the dialer rang tells it call.ended cancelled', async () => {
  const r = rig();
  const { leg, listener, call } = invite(r);
  (await r.media.session(call.id).trunkOffers.next()).resolve('v=0 webrtc');
  await settle();
  assert.deepEqual(r.channel.types(), ['incoming']);
  assert.deepEqual(leg.log, ['ringing']);
  cancel(leg, listener);
  await settle();
  assert.deepEqual(r.channel.of('ended'), [{ type: 'ended', callId: call.id, reason: 'cancelled' }]);
  assert.equal(r.records.rows.get(call.id)?.sipStatus, 487);
});

test('inbound: unknown number, no dialer and busy are still refused with their reasons, and missed calls recorded', async () => {
  const r = rig({ maxCallsPerUser: 1 });
  const unknown = new FakeInboundLeg();
  r.board.incoming({ sipCallId: 'u', from: CALLEE, to: '+15559990000', sdp: 'v=0' }, unknown);
  await settle();
  assert.deepEqual(unknown.log, ['reject:404']);

  // Busy: one live call already holds the user's only slot.
  const first = invite(r);
  await r.media.session(first.call.id).trunkOffers.next();
  const busy = new FakeInboundLeg();
  r.board.incoming({ sipCallId: 'b', from: CALLEE, to: OWN, sdp: 'v=0' }, busy);
  await settle();
  assert.deepEqual(busy.log, ['reject:486']);
  const busyRec = [...r.records.rows.values()].find((x) => x.sipCallId === 'b');
  assert.equal(busyRec?.endReason, 'busy');
  assert.equal(busyRec?.sipStatus, 486);

  // No dialer: the only one goes away.
  r.detach();
  await settle();
  const nobody = new FakeInboundLeg();
  r.board.incoming({ sipCallId: 'n', from: CALLEE, to: OWN, sdp: 'v=0' }, nobody);
  await settle();
  assert.deepEqual(nobody.log, ['reject:480']);
  const missed = [...r.records.rows.values()].find((x) => x.sipCallId === 'n');
  assert.equal(missed?.endReason, 'no-answer');
  assert.equal(missed?.sipStatus, 480);
  assert.equal(r.records.rows.size, 3, 'the first call (ended by the detach), the busy one and the missed one');
  assert.equal(r.board.liveCalls, 0);
});

test('inbound: two INVITEs for a user with one free slot: the first to find a dialer rings, the other is busy', async () => {
  const r = rig({ maxCallsPerUser: 1 });
  const auth = (r.channel.authorisedResult = deferred<boolean>());
  const a = invite(r);
  const b = invite(r);
  await settle();
  auth.resolve(true);
  await settle();
  assert.deepEqual(a.leg.log, [], 'the first waits for rtpengine, not refused');
  assert.equal(r.media.session(a.call.id).trunkOffers.count, 1);
  assert.deepEqual(b.leg.log, ['reject:486']);
  assert.equal(r.records.rows.get(b.call.id)?.endReason, 'busy');
});

test('outbound: the socket closes during the user lookup: the trunk is never dialed and nothing is recorded', async () => {
  const r = rig();
  r.users.hold = true;
  const started = r.board.startCall(r.channel, 'r1', CALLEE, 'v=0 dialer');
  assert.equal(r.board.liveCalls, 1, 'the Call holds the slot from call.start on');
  const lookup = await r.users.lookups.next();
  r.channel.closed = true; // the socket is gone; the server has not detached it yet
  lookup.resolve(r.user);
  await started;
  await settle();
  assert.equal(r.trunk.dialed.length, 0);
  assert.equal(r.media.session(r.calls[0]!.id).dialerOffers.count, 0, 'rtpengine never heard of it');
  assert.deepEqual(r.channel.types(), []);
  assert.equal(r.records.rows.size, 0, 'an attempt never admitted leaves no record, as a refused one');
  assert.equal(r.calls[0]!.reason, 'dialer-disconnected');
  assert.equal(r.board.liveCalls, 0);
});

test('outbound: the dialer detaches while rtpengine answers the offer: no INVITE, the call ends dialer-disconnected', async () => {
  const r = rig();
  const started = r.board.startCall(r.channel, 'r1', CALLEE, 'v=0 dialer');
  const call = r.calls[0]!;
  const offer = await r.media.session(call.id).dialerOffers.next();
  r.channel.closed = true;
  r.detach();
  offer.resolve('v=0 to-trunk');
  await started;
  await settle();
  assert.equal(r.trunk.dialed.length, 0);
  assert.equal(r.records.rows.get(call.id)?.endReason, 'dialer-disconnected');
  assert.equal(r.records.endings(call.id), 1);
});

test('outbound: a hangup during the rtpengine offer never dials', async () => {
  const r = rig();
  const started = r.board.startCall(r.channel, 'r1', CALLEE, 'v=0 dialer');
  const call = r.calls[0]!;
  const offer = await r.media.session(call.id).dialerOffers.next();
  assert.deepEqual(r.channel.of('created'), [{ type: 'created', ref: 'r1', callId: call.id }]);
  r.board.hangup(r.channel, call.id);
  offer.resolve('v=0 to-trunk');
  await started;
  await settle();
  assert.equal(r.trunk.dialed.length, 0);
  assert.deepEqual(r.channel.of('ended'), [{ type: 'ended', callId: call.id, reason: 'local-hangup' }]);
  assert.equal(r.records.rows.get(call.id)?.endReason, 'local-hangup');
});

test('outbound: concurrent starts cannot share one free slot; a refused start leaves no record and no call', async () => {
  const r = rig({ maxCallsPerUser: 1 });
  r.users.hold = true;
  const a = r.board.startCall(r.channel, 'a', CALLEE, 'v=0');
  const b = r.board.startCall(r.channel, 'b', CALLEE, 'v=0');
  await b;
  assert.deepEqual(r.channel.of('error'), [{ type: 'error', code: 'TOO_MANY_CALLS', ref: 'b' }]);
  (await r.users.lookups.next()).resolve(r.user);
  await settle();
  assert.deepEqual(r.channel.of('created').map((m) => m.ref), ['a']);

  // Refused by the dialing policy: an error with its ref, no call.created, no record, slot free again.
  r.users.hold = false;
  r.board.hangup(r.channel, r.calls[0]!.id);
  (await r.media.session(r.calls[0]!.id).dialerOffers.next()).resolve('v=0 to-trunk');
  await a;
  await settle();
  await r.board.startCall(r.channel, 'c', '+33612345678', 'v=0');
  await settle();
  assert.deepEqual(r.channel.of('error').map((m) => m.code), ['TOO_MANY_CALLS', 'DESTINATION_NOT_ALLOWED']);
  assert.equal(r.records.rows.size, 1, 'only the first call has a record');
  assert.equal(r.board.liveCalls, 0);
});

test('inbound: call.accept twice (and again after answer) answers once and never ends the call', async () => {
  const r = rig();
  const { leg, listener, call } = invite(r);
  (await r.media.session(call.id).trunkOffers.next()).resolve('v=0 webrtc');
  await settle();
  r.board.accept(r.channel, call.id, 'v=0 browser-answer');
  r.board.accept(r.channel, call.id, 'v=0 browser-answer');
  const answer = await r.media.session(call.id).dialerAnswers.next();
  answer.resolve('v=0 to-trunk');
  await settle();
  assert.equal(r.media.session(call.id).dialerAnswers.count, 1, 'rtpengine is asked once');
  assert.deepEqual(leg.log, ['ringing', 'answer']);
  listener.confirmed();
  r.board.accept(r.channel, call.id, 'v=0 browser-answer');
  await settle();
  assert.equal(call.state, 'answered');
  assert.equal(call.closed, false);
  assert.deepEqual(r.channel.of('error'), [], 'a repeated accept is harmless, not an error');
  assert.deepEqual(r.events.map((e) => e.event), ['answered']);
  assert.equal(r.board.liveCalls, 1);
});

test('BYE and hangup together: one close, the first reason wins, one end written, one call.ended', async () => {
  const r = rig();
  const { call, dialed } = await answeredOutbound(r);
  dialed.listener.ended('remote-hangup');
  r.board.hangup(r.channel, call.id);
  dialed.listener.ended('remote-hangup');
  await settle();
  assert.equal(call.reason, 'remote-hangup');
  assert.deepEqual(r.events.filter((e) => e.event === 'ended'), [{ callId: call.id, event: 'ended', reason: 'remote-hangup' }]);
  assert.deepEqual(r.channel.of('ended'), [{ type: 'ended', callId: call.id, reason: 'remote-hangup' }]);
  assert.equal(r.records.endings(call.id), 1);
  assert.equal(dialed.ends, 1, 'the leg is ended once (a no-op after the far end hung up)');
  assert.equal(r.media.session(call.id).closes, 1);
  // A hangup that comes after the close finds no call: the same answer as for an unknown id.
  r.board.hangup(r.channel, call.id);
  assert.deepEqual(r.channel.of('error').map((m) => m.code), ['CALL_NOT_FOUND']);
});

test('hangup and BYE the other way round: the hangup wins', async () => {
  const r = rig();
  const { call, dialed } = await answeredOutbound(r);
  r.board.hangup(r.channel, call.id);
  dialed.listener.ended('remote-hangup');
  await settle();
  assert.equal(r.records.rows.get(call.id)?.endReason, 'local-hangup');
  assert.equal(r.records.endings(call.id), 1);
  assert.deepEqual(r.channel.of('ended').map((m) => m.reason), ['local-hangup']);
});

test('a throwing subscriber does not break the call or the other subscribers', async () => {
  const r = rig();
  r.board.on('call', (call) => {
    call.on('answered', () => {
      throw new Error('subscriber bug');
    });
  });
  const { call } = await answeredOutbound(r);
  r.board.hangup(r.channel, call.id);
  await settle();
  assert.deepEqual(r.events.map((e) => e.event), ['answered', 'ended']);
  assert.equal(r.board.liveCalls, 0);
});
