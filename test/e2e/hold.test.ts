/**
 * The trunk changes the media of an answered call by re-INVITE, with Chromium as the dialer, for an
 * outbound call (sipp answers, then re-INVITEs) and an inbound one (sipp calls, then re-INVITEs):
 * hold (sendonly → our 200 says recvonly, sipp checks it; the page hears `call.held`; nothing goes to
 * the trunk while it holds), resume (`call.resumed`, audio both ways again), and a move of the trunk's
 * media to 127.0.0.3 (audio follows; the old address is neither heard nor sent to: strict source).
 * The browser is never asked to renegotiate.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { startSipp } from '../helpers/sipp.js';
import { createRtpPeer, type RtpPeer } from '../helpers/rtp-peer.js';
import { DialerDriver } from '../helpers/browser.js';
import { logServerMessages } from '../helpers/ws-log.js';
import { until } from '../helpers/until.js';

/** Between the re-INVITEs: room for a 1.5 s measurement after each event on a busy machine. */
const STEP_MS = 6000;
let rig: BrowserRig;

before(async () => {
  rig = await startBrowserRig();
});

after(async () => {
  await rig?.close();
});

/** Packets `peer` receives while the page measures the remote audio for `ms`, and what the page heard. */
async function window(dialer: DialerDriver, peer: RtpPeer, freqs: number[], ms = 1500): Promise<{ packets: number; heard: Record<number, number> }> {
  const start = peer.received.length;
  const heard = await dialer.measureRemoteTone(freqs, ms);
  return { packets: peer.received.length - start, heard };
}

const PHONES = { outbound: '+15550001131', inbound: '+15550001132' } as const;

for (const direction of ['outbound', 'inbound'] as const) {
  test(`re-INVITE: hold, resume, and a move of the trunk media, ${direction}`, async () => {
    const { service, browser, sippPort } = rig;
    const phone = PHONES[direction];
    const user = await service.users.create({ phone, enrolled: false });
    const { token } = await service.tokens.issue(user.id, 3_600_000);
    const peer = await createRtpPeer({ tone: 1000, host: '127.0.0.1' });
    const moved = await createRtpPeer({ tone: 1400, host: '127.0.0.3' });
    const keys = { rtp_port: String(peer.port), moved_rtp_ip: '127.0.0.3', moved_rtp_port: String(moved.port), step_ms: String(STEP_MS) };
    const dialer = await DialerDriver.open(browser, service.url);
    const log = logServerMessages(dialer.page);
    let sipp: ReturnType<typeof startSipp> | undefined;
    try {
      // Symmetric RTP: each peer answers whatever rtpengine sends it from.
      peer.start();
      moved.start();
      if (direction === 'outbound') {
        sipp = startSipp({ scenario: 'uas-reinvite', port: sippPort, remote: `127.0.0.1:${service.sipPort}`, keys, timeoutMs: 60_000 });
        await sipp.ready;
        await dialer.connect(token);
        await dialer.call('+15550002222');
      } else {
        await dialer.connect(token);
        sipp = startSipp({ scenario: 'uac-reinvite', port: sippPort, remote: `127.0.0.1:${service.sipPort}`, service: phone, keys, timeoutMs: 60_000 });
        await dialer.waitState('incoming', 10_000);
        await dialer.answer();
      }
      await dialer.waitState('active', 15_000);
      await peer.waitForPackets(25, 10_000);
      const talking = await window(dialer, peer, [1000, 440]);
      assert.ok(talking.packets >= 40, `before the hold the trunk gets the user (${talking.packets} packets in 1.5 s)`);

      await log.next('call.held', STEP_MS + 10_000);
      await dialer.page.waitForSelector('#state[data-hold="held"]', { timeout: 5000, state: 'attached' });
      await dialer.measureRemoteTone([1000], 300); // packets in flight when the hold took effect land first
      const held = await window(dialer, peer, [1000, 440]);
      assert.ok(held.packets <= 5, `the trunk got ${held.packets} packets while it held the call`);
      assert.ok(held.heard[1000]! - held.heard[440]! >= 15, 'the user still hears the held side (music on hold)');

      await log.next('call.resumed', STEP_MS + 10_000);
      const resumed = await window(dialer, peer, [1000, 440]);
      assert.ok(resumed.packets >= 40, `after resume the trunk gets the user again (${resumed.packets} packets in 1.5 s)`);
      assert.ok(resumed.heard[1000]! - resumed.heard[440]! >= 15, 'and the user hears the trunk');

      await until('the moved trunk address gets audio', () => moved.received.length >= 25, STEP_MS + 10_000);
      const oldBefore = peer.received.length;
      const afterMove = await window(dialer, moved, [1400, 1000]);
      assert.ok(afterMove.packets >= 40, `the new address gets the user (${afterMove.packets} packets in 1.5 s)`);
      assert.ok(afterMove.heard[1400]! - afterMove.heard[1000]! >= 15, `the user hears the new address, not the old one: ${JSON.stringify(afterMove.heard)}`);
      assert.ok(peer.received.length - oldBefore <= 5, `the old address got ${peer.received.length - oldBefore} packets after the move`);
      assert.equal(log.messages.filter((m) => m.msg.type === 'call.held').length, 1, 'one hold, told once');

      if (direction === 'outbound') await dialer.hangup(); // inbound: sipp sends BYE after its last step
      await dialer.waitState('ended', STEP_MS + 10_000);
      const result = await sipp.done;
      assert.equal(result.successful, 1, `sipp checked each 200's direction: ${result.errors}`);
    } finally {
      sipp?.kill();
      await dialer.close();
      await peer.close();
      await moved.close();
    }
  });
}
