import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import type { Config, DeepPartial } from '../../src/config/load.js';
import { startTestService, type TestService } from './service.js';
import { freePort } from './sipp.js';
import { launchBrowser, writeSineWav } from './browser.js';

/** The service, a port for the sipp trunk, and a Chromium whose fake microphone plays 440 Hz. */
export interface BrowserRig {
  service: TestService;
  browser: Browser;
  sippPort: number;
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
    async close() {
      await browser.close();
      await service.stop();
    },
  };
}
