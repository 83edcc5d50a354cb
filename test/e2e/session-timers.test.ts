/**
 * RFC 4028 session timers at their real minimum (Session-Expires: 90 from the trunk), through the
 * whole service with real rtpengine, libwebrtc dialers and RTP peers as the trunk's media. Every case
 * runs concurrently: the file takes about as long as its longest case (three 45 s refreshes).
 *
 * The trunk is the refresher in each case; without a refresh our side would BYE at 90 − 30 = 60 s,
 * so a call still up after three intervals shows each refresh was taken, and RTP still reaching the
 * trunk's peer after them shows the media was not touched.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import { startSipp } from '../helpers/sipp.js';
import { until } from '../helpers/until.js';
import { startWrtcRig, type WrtcRig } from '../helpers/wrtc-rig.js';
import type { WrtcDialer } from '../helpers/wrtc-dialer.js';

const REFRESH_MS = 45_000;
const rigs: WrtcRig[] = [];
const peers: RtpPeer[] = [];

before(async () => {
  // The expiry case's trunk peer sends no RTP: with the default media timeout (60 s) the media watch and
  // the session timer (60 s after the 200) would race to end that call. Here only the session timer may.
  const media = { timeoutSeconds: 300 };
  rigs.push(await startWrtcRig({ media }), await startWrtcRig({ media }));
});
after(async () => {
  for (const p of peers) await p.close();
  for (const r of rigs) await r.close();
});

async function rtpPeer(): Promise<RtpPeer> {
  const p = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  peers.push(p);
  return p;
}

/** RTP from the dialer keeps reaching the trunk's peer: another second of packets arrives. */
async function mediaFlows(peer: RtpPeer, what: string): Promise<void> {
  const seen = peer.packetsReceived;
  await until(`${what}: RTP still reaches the trunk`, () => peer.packetsReceived >= seen + 50, 10_000);
}

async function outboundCase(rig: WrtcRig, phone: string, byInvite: boolean): Promise<void> {
  const peer = await rtpPeer();
  const sipp = startSipp({
    scenario: 'uas-refreshes', port: rig.service.config.sip.trunk.port,
    keys: { rtp_port: String(peer.port), se: '90', refresh_every_ms: String(REFRESH_MS), refresh_invite: byInvite ? '1' : '0' },
    timeoutMs: 4 * REFRESH_MS,
  });
  await sipp.ready;
  const { dialer, userId } = await rig.dialer(phone);
  const call = await dialer.call('+15550002222');
  await dialer.waitConnected(call.callId);
  peer.start();
  await checkThroughRefreshes(rig, dialer, userId, call.callId, peer, `outbound ${byInvite ? 're-INVITE' : 'UPDATE'}`);
  const res = await sipp.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
}

async function inboundCase(rig: WrtcRig, phone: string, byInvite: boolean): Promise<void> {
  const peer = await rtpPeer();
  const { dialer, userId } = await rig.dialer(phone);
  const sipp = startSipp({
    scenario: 'uac-refreshes', port: await freeSippPort(), remote: `127.0.0.1:${rig.service.sipPort}`, service: phone,
    keys: { rtp_port: String(peer.port), se: '90', refresh_every_ms: String(REFRESH_MS), refresh_invite: byInvite ? '1' : '0' },
    timeoutMs: 4 * REFRESH_MS,
  });
  const incoming = await dialer.waitIncoming(15_000);
  await dialer.accept(incoming.callId);
  await dialer.waitConnected(incoming.callId);
  peer.start();
  await checkThroughRefreshes(rig, dialer, userId, incoming.callId, peer, `inbound ${byInvite ? 're-INVITE' : 'UPDATE'}`);
  const res = await sipp.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
}

/** Media at the start, after the second refresh (past the 60 s a missing refresh would allow), and the trunk's BYE after the third. */
async function checkThroughRefreshes(rig: WrtcRig, dialer: WrtcDialer, userId: string, callId: string, peer: RtpPeer, what: string): Promise<void> {
  await mediaFlows(peer, `${what}, at answer`);
  const started = Date.now();
  await until(`${what}: past the second refresh`, () => Date.now() - started > 2 * REFRESH_MS + 5_000, 3 * REFRESH_MS, 1000);
  assert.ok(dialer.live(callId), `${what}: the call is still up after two refreshes`);
  await mediaFlows(peer, `${what}, after two refreshes`);
  const reason = await dialer.waitEnded(callId, 2 * REFRESH_MS);
  assert.equal(reason, 'remote-hangup', `${what}: ended by the trunk's BYE after its third refresh`);
  assert.ok(Date.now() - started > 3 * REFRESH_MS - 5_000, `${what}: lived through three refresh intervals`);
  const rec = await rig.service.records.get(userId, callId);
  assert.equal(rec?.endReason, 'remote-hangup');
}

/** The trunk claims the refresher role and never refreshes: we BYE before expiry; the dialer and the call record say `session-expired`. */
async function expiryCase(rig: WrtcRig, phone: string): Promise<void> {
  const peer = await rtpPeer();
  const { dialer, userId } = await rig.dialer(phone);
  const sipp = startSipp({
    scenario: 'uac-no-refresh', port: await freeSippPort(), remote: `127.0.0.1:${rig.service.sipPort}`, service: phone,
    keys: { rtp_port: String(peer.port), se: '90' }, timeoutMs: 3 * REFRESH_MS,
  });
  const incoming = await dialer.waitIncoming(15_000);
  await dialer.accept(incoming.callId);
  await dialer.waitConnected(incoming.callId);
  const answered = Date.now();
  const reason = await dialer.waitEnded(incoming.callId, 2 * REFRESH_MS);
  const ms = Date.now() - answered;
  assert.equal(reason, 'session-expired');
  // 90 − min(32, 90/3) = 60 s after the 200.
  assert.ok(ms > 55_000 && ms < 65_000, `ended ${ms} ms after answer`);
  const rec = await rig.service.records.get(userId, incoming.callId);
  assert.equal(rec?.endReason, 'session-expired');
  const res = await sipp.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
}

let nextSippPort = 0;
async function freeSippPort(): Promise<number> {
  const { freePort } = await import('../helpers/sipp.js');
  let p = await freePort();
  while (p === nextSippPort) p = await freePort();
  nextSippPort = p;
  return p;
}

test('Session-Expires: 90 from the trunk, refreshed by UPDATE and by re-INVITE, outbound and inbound: alive after three intervals, audio flowing; no refresh → session-expired', async () => {
  const [a, b] = rigs as [WrtcRig, WrtcRig];
  await Promise.all([
    outboundCase(a, '+15550001001', false),
    outboundCase(b, '+15550001002', true),
    inboundCase(a, '+15550001003', true),
    inboundCase(b, '+15550001004', false),
    expiryCase(a, '+15550001005'),
  ]);
});
