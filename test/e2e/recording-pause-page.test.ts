import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowserRig } from '../helpers/browser-rig.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { readManifest, waitForRecording } from '../helpers/recording.js';
import type { Manifest } from '../../src/recordings/recordings.js';

/** The dialer page's Pause/Resume button (Chromium): shown while recorded, it pauses and resumes for real. */
test('the page pauses and resumes the recording with its button; the manifest lists the span', { timeout: 90_000 }, async () => {
  const rig = await startBrowserRig({ recording: { chunkSeconds: 1 } });
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  try {
    const user = await rig.service.users.create({ phone: '+15554440021', enrolled: true, consentVersion: 'v1' });
    const { token } = await rig.service.tokens.issue(user.id, 3_600_000);
    const { dialer, sipp } = await rig.dialTrunk(token, peer);
    try {
      const page = dialer.page;
      const button = page.locator('#pause-recording');
      await page.waitForSelector('#note[data-kind="recording"]', { timeout: 10_000 });
      await button.waitFor({ state: 'visible', timeout: 5000 });
      assert.equal(await button.textContent(), 'Pause recording');
      await button.click();
      await page.waitForSelector('#note[data-kind="paused"]', { timeout: 5000 });
      assert.equal(await button.textContent(), 'Resume recording');
      assert.equal(await button.getAttribute('aria-pressed'), 'true');
      await page.waitForTimeout(1000); // the pause's length is what the manifest measures
      await button.click();
      await page.waitForSelector('#note[data-kind="recording"]', { timeout: 5000 });
      assert.equal(await button.textContent(), 'Pause recording');
      const callId = (await dialer.callId())!;
      await dialer.hangup();
      await dialer.waitState('ended', 10_000);
      assert.equal(await button.isHidden(), true, 'no button once the call ended');
      const row = await waitForRecording(rig.service, callId);
      const manifest = await readManifest(rig.service, row.id);
      assert.equal(manifest.pausedSpans?.length, 1, JSON.stringify(manifest.pausedSpans));
      // ~1 s paused; the browser may deliver its audio late under load, so only most of it is asserted.
      assert.ok(manifest.pausedSpans![0]!.pausedMs >= 600, JSON.stringify(manifest.pausedSpans));
    } finally {
      sipp.kill();
      await dialer.close();
    }
  } finally {
    await peer.close();
    await rig.close();
  }
});
