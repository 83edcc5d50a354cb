import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import type { Config, DeepPartial } from '../../src/config/load.js';
import { startTestService, type TestService } from './service.js';
import { freePort, startSipp, type SippRun } from './sipp.js';
import { DialerDriver, launchBrowser, writeSineWav } from './browser.js';
import type { RtpPeer } from './rtp-peer.js';

/** The service, a port for the sipp trunk, and a Chromium whose fake microphone plays 440 Hz. */
export interface BrowserRig {
  service: TestService;
  browser: Browser;
  sippPort: number;
  /**
   * Chromium dials out with `token` through a sipp trunk that challenges (401) and answers with
   * `peer`'s RTP address; resolves once the page shows the call active and `peer` plays its tone.
   * `byeAfterMs` > 0: sipp hangs up that long after the answer. The caller closes both.
   */
  dialTrunk(token: string, peer: RtpPeer, opts?: { timeoutMs?: number; byeAfterMs?: number }): Promise<{ dialer: DialerDriver; sipp: SippRun }>;
  close(): Promise<void>;
}

export async function startBrowserRig(overrides: DeepPartial<Config> = {}, opts: { mediaPorts?: number } = {}): Promise<BrowserRig> {
  const sippPort = await freePort();
  const service = await startTestService({ trunkPort: sippPort, overrides, mediaPorts: opts.mediaPorts });
  const wav = writeSineWav({ freq: 440, seconds: 10 }, join(mkdtempSync(join(tmpdir(), 'wav-')), 'a440.wav'));
  const browser = await launchBrowser({ fakeAudioWav: wav });
  return {
    service,
    browser,
    sippPort,
    async dialTrunk(token, peer, { timeoutMs = 30_000, byeAfterMs = 0 } = {}) {
      const sipp = startSipp({
        scenario: 'uas-401-answer',
        port: sippPort,
        remote: `127.0.0.1:${service.sipPort}`,
        keys: { rtp_port: String(peer.port), bye_after: String(byeAfterMs) },
        timeoutMs,
      });
      const dialer = await DialerDriver.open(browser, service.url);
      try {
        await sipp.ready;
        await dialer.connect(token);
        await dialer.call('+15550002222');
        await dialer.waitState('active', 15_000);
        peer.start(); // symmetric RTP: answer whatever rtpengine sends from
        return { dialer, sipp };
      } catch (err) {
        sipp.kill();
        await dialer.close();
        throw err;
      }
    },
    async close() {
      await browser.close();
      await service.stop();
    },
  };
}
