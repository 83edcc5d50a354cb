import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestService } from '../helpers/service.js';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { DialerDriver } from '../helpers/browser.js';
import { createRtpPeer, type DtmfEvent } from '../helpers/rtp-peer.js';
import { isError, signalClient } from '../helpers/signal-client.js';
import { startSipp } from '../helpers/sipp.js';
import { DTMF_TIMING } from '../../src/calls/ports.js';

/**
 * DTMF from the dialer page (Chromium) to the trunk (sipp, whose RTP is a real socket that decodes RFC 4733):
 * keys pressed on the page's keypad go as `call.dtmf` and arrive as telephone-event with their digits and
 * durations; the browser's own RTCDTMFSender (telephone-event/48000) arrives as telephone-event/8000 too.
 * Then what the server refuses: another user's or an unknown call, bad digits, too many, before answer.
 */
let rig: BrowserRig;
let service: TestService;
let token: string;

before(async () => {
  rig = await startBrowserRig();
  ({ service } = rig);
  ({ token } = await service.addUser('+15550001111'));
});

after(async () => rig?.close());

/** The telephone-event/8000 payload type Chromium offered: rtpengine keeps it towards the trunk, sipp echoes it. */
async function offeredTelephoneEventPt(dialer: DialerDriver): Promise<number> {
  const sdp = await dialer.page.evaluate(() => (globalThis as any).monologueDebug.pc.localDescription.sdp as string);
  const pt = /a=rtpmap:(\d+) telephone-event\/8000/.exec(sdp)?.[1];
  assert.ok(pt, 'Chromium offers telephone-event/8000');
  return Number(pt);
}

function assertEvents(events: DtmfEvent[], digits: string, minMs: number, maxMs: number): void {
  assert.equal(events.map((e) => e.digit).join(''), digits, `digits at the trunk: ${JSON.stringify(events)}`);
  for (const e of events) {
    assert.ok(e.ended, `event ${e.digit} has its end packet`);
    const ms = e.duration / 8; // 8 kHz timestamp units
    assert.ok(ms >= minMs && ms <= maxMs, `event ${e.digit} lasts ${ms} ms, expected ${minMs}-${maxMs}`);
  }
}

test('keypad digits and the browser\'s own RTCDTMFSender reach the trunk as RFC 4733 events; refusals', async () => {
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const { dialer, sipp } = await rig.dialTrunk(token, peer);
  const other = await signalClient(service.httpPort);
  try {
    peer.telephoneEventPt = await offeredTelephoneEventPt(dialer);
    await peer.waitForPackets(10, 10_000);

    // The keypad during the call: each press is one call.dtmf, played one after another.
    assert.equal(await dialer.page.getAttribute('#pad', 'data-mode'), 'dtmf');
    for (const key of '1#5*') await dialer.page.click(`#pad button[data-key="${key}"]`);
    const keyed = await peer.waitForDtmf(4, 10_000);
    assertEvents(keyed, '1#5*', DTMF_TIMING.toneMs, DTMF_TIMING.toneMs + 60);
    for (let i = 1; i < keyed.length; i++) {
      const apart = ((keyed[i]!.timestamp - keyed[i - 1]!.timestamp) >>> 0) / 8;
      assert.ok(apart >= DTMF_TIMING.toneMs + DTMF_TIMING.gapMs, `digit ${i} starts ${apart} ms after the one before`);
    }
    assert.equal(await dialer.page.textContent('#dtmf-sent'), '1#5*');

    // Refusals. Another user, and the same user's unknown id: the same CALL_NOT_FOUND.
    const callId = await dialer.callId();
    assert.ok(callId);
    const { token: otherToken } = await service.addUser('+15550003333');
    await other.auth(otherToken);
    other.send({ type: 'call.dtmf', callId, digits: '0' });
    await other.next(isError('CALL_NOT_FOUND'));
    other.send({ type: 'call.dtmf', callId: 'call_nope', digits: '0' });
    await other.next((m) => m.type === 'error' && m.code === 'CALL_NOT_FOUND' && other.msgs.filter(isError('CALL_NOT_FOUND')).length === 2);
    other.send({ type: 'call.dtmf', callId, digits: '0x' });
    await other.next(isError('BAD_MESSAGE'));

    // Too many at once from the call's own dialer: one full message is taken, more while it plays is not.
    // Both in one go, so the first has not started playing when the second arrives (the bound is on playout time).
    const batch = '0123456890*#ABCD0123456890*#ABCD'; // 32 digits, no 7
    const sent = await dialer.page.evaluate((b) => {
      const d = (globalThis as any).monologueDebug;
      return [d.sendDtmf(b), d.sendDtmf('77')];
    }, batch);
    assert.deepEqual(sent, [true, true]);
    await dialer.page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
    assert.match((await dialer.errorText()) ?? '', /too many digits/);
    const played = await peer.waitForDtmf(4 + batch.length, 20_000);
    assert.equal(played.slice(4).map((e) => e.digit).join(''), batch, 'the full message played, in order');
    assert.equal(played.filter((e) => e.digit === '7').length, 0, 'the refused digits were never played');
    assert.equal(await dialer.state(), 'active', 'a refused digit does not end the call');

    // The browser's own DTMF sender: telephone-event/48000 in, telephone-event/8000 out, 200 ms each. Last:
    // right after the browser's own events, rtpengine 10.5 drops or cuts the next injected digit (README, DTMF).
    const canInsert = await dialer.page.evaluate(() => {
      const sender = (globalThis as any).monologueDebug.pc.getSenders().find((s: any) => s.track?.kind === 'audio');
      if (!sender?.dtmf?.canInsertDTMF) return false;
      sender.dtmf.insertDTMF('90', 200, 100);
      return true;
    });
    assert.ok(canInsert, 'the browser negotiated telephone-event through the relay');
    const all = await peer.waitForDtmf(4 + batch.length + 2, 10_000);
    assertEvents(all.slice(4 + batch.length), '90', 180, 260);

    await dialer.hangup();
    await dialer.waitState('ended', 15_000);
    assert.equal((await sipp.done).code, 0);
  } finally {
    other.close();
    sipp.kill();
    await sipp.done; // the next test's sipp binds the same port
    await dialer.close();
    await peer.close();
  }
});

test('digits before the call has audio: DTMF_NOT_READY, and the call rings on', async () => {
  const { token } = await service.addUser('+15550004444'); // its own live-call slots, whatever the test before left
  const sipp = startSipp({ scenario: 'uas-no-answer', port: rig.sippPort, remote: `127.0.0.1:${service.sipPort}`, timeoutMs: 30_000 });
  const dialer = await DialerDriver.open(rig.browser, service.url);
  try {
    await sipp.ready;
    await dialer.connect(token);
    await dialer.call('+15550002222');
    await dialer.waitState('ringing', 15_000);
    await dialer.page.waitForFunction(() => (globalThis as any).monologueDebug.callId !== null);
    assert.ok(await dialer.page.evaluate(() => (globalThis as any).monologueDebug.sendDtmf('1')));
    await dialer.page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
    assert.match((await dialer.errorText()) ?? '', /once the call has audio/);
    assert.equal(await dialer.state(), 'ringing');
    await dialer.hangup();
    await dialer.waitState('ended', 15_000);
    assert.equal((await sipp.done).code, 0, 'sipp saw our CANCEL');
  } finally {
    sipp.kill();
    await sipp.done;
    await dialer.close();
  }
});
