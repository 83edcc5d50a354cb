// The dialer page during a real call (Chromium → service → rtpengine → sipp trunk): the call state and the
// recording indicator are visible, the keypad becomes the DTMF keypad, and nothing overflows at 320 px.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let rig: BrowserRig;

before(async () => {
  // The page under test must be this checkout's.
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'src/web/tsconfig.json')]);
  rig = await startBrowserRig();
});

after(async () => rig?.close());

test('in a call: state, recording indicator (recording, then not recorded and why), DTMF keypad, no overflow at 320 px', async () => {
  const user = await rig.service.users.create({ phone: '+15550108001', enrolled: true, consentVersion: 'v1' });
  const { token } = await rig.service.tokens.issue(user.id, 3_600_000);
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  const { dialer, sipp } = await rig.dialTrunk(token, peer);
  try {
    const page = dialer.page;
    await page.waitForSelector('#rec-indicator[data-rec="recording"]', { timeout: 10_000 });
    assert.equal(await page.textContent('#rec-indicator'), 'Recording');
    assert.match((await page.textContent('#state'))!, /In call with \+15550002222/);
    assert.equal(await page.getAttribute('#pad', 'data-mode'), 'dtmf');
    assert.equal(await page.isVisible('#timer'), true);
    // The place the Pause button goes is inside the recording bar (empty until pause/resume lands).
    assert.equal(await page.locator('.recording-bar #rec-controls').count(), 1);

    await page.click('#pad button[data-key="5"]');
    await page.waitForFunction(() => (globalThis as any).document.getElementById('dtmf-sent').textContent === '5');

    for (const width of [320, 390]) {
      await page.setViewportSize({ width, height: 844 });
      const { scroll, client } = await page.evaluate(() => {
        const d = (globalThis as any).document.documentElement;
        return { scroll: d.scrollWidth as number, client: d.clientWidth as number };
      });
      assert.ok(scroll <= client, `in a call at ${width} px: scrollWidth ${scroll} > clientWidth ${client}`);
    }

    // Withdrawing consent mid-call: the call goes on, the indicator says it is not recorded and why.
    const res = await fetch(new URL('v1/me/consent', rig.service.url), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    await page.waitForSelector('#rec-indicator[data-rec="off"]', { timeout: 10_000 });
    assert.equal(await page.textContent('#rec-indicator'), 'Not recorded: consent-revoked');
    assert.equal(await dialer.state(), 'active');

    await dialer.hangup();
    await dialer.waitState('ended');
    assert.equal(await page.getAttribute('#pad', 'data-mode'), 'dial');
  } finally {
    sipp.kill();
    await dialer.close();
    await peer.close();
  }
});
