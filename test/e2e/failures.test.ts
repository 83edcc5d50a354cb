import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { TestService } from '../helpers/service.js';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { startSipp, type SippOptions } from '../helpers/sipp.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { DialerDriver } from '../helpers/browser.js';
import type { CallRecord } from '../../src/calls/records.js';

/** Every way a call can fail ends with the right reason, a complete record and nothing left in rtpengine. */
let rig: BrowserRig;
let service: TestService;
let browser: Browser;
let sippPort: number;
let token: string;
let userId: string;

before(async () => {
  rig = await startBrowserRig({ sip: { inviteTimeoutMs: 3000 }, calls: { ringTimeoutMs: 3000 } });
  ({ service, browser, sippPort } = rig);
  ({ token, id: userId } = await service.addUser('+15550001111'));
});

after(async () => rig?.close());

interface Case {
  name: string;
  sipp: Omit<SippOptions, 'port'>;
  /** What the person does once the call is in `waitFor` state. */
  act?: (d: DialerDriver) => Promise<void>;
  waitFor?: 'calling' | 'ringing' | 'active' | 'incoming';
  direction: 'outbound' | 'inbound';
  reason: string;
  sipStatus?: number;
  answered: boolean;
}

const cases: Case[] = [
  { name: 'CANCEL before answer', direction: 'outbound', sipp: { scenario: 'uas-no-answer' }, waitFor: 'ringing', act: (d) => d.hangup(), reason: 'local-hangup', answered: false },
  { name: '486 busy', direction: 'outbound', sipp: { scenario: 'uas-busy' }, reason: 'busy', sipStatus: 486, answered: false },
  { name: '404 not found', direction: 'outbound', sipp: { scenario: 'uas-404' }, reason: 'not-found', sipStatus: 404, answered: false },
  { name: 'trunk never answers', direction: 'outbound', sipp: { scenario: 'uas-no-answer' }, reason: 'no-answer', sipStatus: 408, answered: false },
  {
    name: 'dialer closes the socket mid-call',
    direction: 'outbound',
    sipp: { scenario: 'uas-401-answer' },
    waitFor: 'active',
    act: (d) => d.page.close(), // the tab goes away: its WebSocket closes
    reason: 'dialer-disconnected',
    answered: true,
  },
  { name: 'inbound: the trunk cancels while ringing', direction: 'inbound', sipp: { scenario: 'uac-cancel', service: '+15550001111' }, reason: 'cancelled', sipStatus: 487, answered: false },
  { name: 'inbound: the person rejects', direction: 'inbound', sipp: { scenario: 'uac-reject', service: '+15550001111' }, waitFor: 'incoming', act: (d) => d.reject(), reason: 'rejected', sipStatus: 603, answered: false },
  { name: 'inbound: nobody answers', direction: 'inbound', sipp: { scenario: 'uac-reject', service: '+15550001111' }, waitFor: 'incoming', reason: 'no-answer', answered: false },
];

for (const c of cases) {
  test(c.name, async () => {
    const peer = await createRtpPeer({ tone: 1000 });
    const dialer = await DialerDriver.open(browser, service.url);
    // An inbound call needs the dialer connected before sipp sends its INVITE.
    if (c.direction === 'inbound') await dialer.connect(token);
    const sipp = startSipp({ ...c.sipp, port: sippPort, remote: `127.0.0.1:${service.sipPort}`, keys: { rtp_port: String(peer.port), ...c.sipp.keys }, timeoutMs: 30_000 });
    try {
      await sipp.ready;
      if (c.direction === 'outbound') await dialer.connect(token);
      if (c.direction === 'outbound') await dialer.call('+15550002222');
      if (c.waitFor) await dialer.waitState(c.waitFor, 10_000);
      const callId = await waitCallId(dialer);
      if (c.act) await c.act(dialer);
      const result = await sipp.done;
      assert.equal(result.code, 0, `sipp: ${result.errors}\n${result.stderr.slice(-2000)}`);
      const rec = await waitForEnd(userId, callId);
      assert.equal(rec.endReason, c.reason);
      if (c.sipStatus !== undefined) assert.equal(rec.sipStatus, c.sipStatus);
      assert.equal(rec.answeredAt !== null, c.answered);
      assert.ok(rec.endedAt! >= rec.createdAt);
      if (c.reason !== 'dialer-disconnected') {
        await dialer.waitState('ended', 10_000);
        assert.equal((await dialer.lastEnded())?.reason, c.reason);
      }
      assert.deepEqual(await waitNoMedia(), [], 'rtpengine holds no call');
      assert.equal(service.switchboard.liveCalls, 0);
    } finally {
      sipp.kill();
      await dialer.close();
      await peer.close();
    }
  });
}

async function waitCallId(d: DialerDriver): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const id = (await d.callId()) ?? (await d.lastEnded())?.callId;
    if (id) return id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the dialer never learned a call id');
}

async function waitForEnd(user: string, callId: string): Promise<CallRecord> {
  for (let i = 0; i < 100; i++) {
    const rec = await service.records.get(user, callId);
    if (rec?.endedAt) return rec;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`call ${callId} never ended in its record`);
}

async function waitNoMedia(): Promise<string[]> {
  let calls: string[] = [];
  for (let i = 0; i < 20; i++) {
    calls = await service.media.listCalls();
    if (calls.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return calls;
}
