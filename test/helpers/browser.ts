// Headless Chromium (Debian's /usr/bin/chromium via playwright-core) driving the reference web dialer.
// The fake microphone plays a WAV file (see wav.ts), so each browser sends one known tone.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export { writeSineWav, sineWav } from './wav.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export type DialerState = 'idle' | 'calling' | 'ringing' | 'active' | 'incoming' | 'ended';

export interface LaunchOptions {
  /** WAV file the fake microphone plays in a loop (48 kHz 16-bit mono works; see writeSineWav). */
  fakeAudioWav: string;
}

/** The flags every test browser runs with (DESIGN.md §8). */
export function chromiumArgs(fakeAudioWav: string): string[] {
  return [
    '--no-sandbox',
    '--headless',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required',
    `--use-file-for-fake-audio-capture=${fakeAudioWav}`,
    '--disable-quic',
  ];
}

export async function launchBrowser({ fakeAudioWav }: LaunchOptions): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: chromiumArgs(fakeAudioWav),
  });
}

export interface EndedInfo {
  callId: string | null;
  reason: string;
}

/** One dialer page. Selectors and `window.monologueDebug` are the page's test contract (src/web/dialer.ts). */
export class DialerDriver {
  private constructor(
    readonly page: Page,
    private readonly context: BrowserContext,
  ) {}

  /** Open the dialer served at `baseUrl` (e.g. http://127.0.0.1:PORT/) in a fresh browser context. */
  static async open(browser: Browser, baseUrl: string): Promise<DialerDriver> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(baseUrl);
    await page.waitForSelector('#state[data-state="idle"]');
    return new DialerDriver(page, context);
  }

  /** Authenticate with `token` and wait until the server says `ready`. */
  async connect(token: string, timeoutMs = 10_000): Promise<void> {
    await this.page.fill('#token', token);
    await this.page.click('#connect');
    await this.page.waitForSelector('#status[data-status="ready"]', { timeout: timeoutMs });
  }

  /** Dial `number` (E.164); resolves once the call is being placed, not when it is answered. */
  async call(number: string): Promise<void> {
    await this.page.fill('#number', number);
    await this.page.click('#call');
  }

  async hangup(): Promise<void> {
    await this.page.click('#hangup');
  }

  async answer(): Promise<void> {
    await this.page.click('#answer');
  }

  async reject(): Promise<void> {
    await this.page.click('#reject');
  }

  async waitState(state: DialerState, timeoutMs = 10_000): Promise<void> {
    await this.page.waitForSelector(`#state[data-state="${state}"]`, { timeout: timeoutMs, state: 'attached' });
  }

  async state(): Promise<DialerState> {
    return (await this.page.getAttribute('#state', 'data-state')) as DialerState;
  }

  async errorText(): Promise<string | null> {
    const hidden = await this.page.locator('#error').isHidden();
    return hidden ? null : this.page.textContent('#error');
  }

  async callId(): Promise<string | null> {
    return this.page.evaluate(() => (globalThis as any).monologueDebug.callId as string | null);
  }

  async lastEnded(): Promise<EndedInfo | null> {
    return this.page.evaluate(() => (globalThis as any).monologueDebug.lastEnded as EndedInfo | null);
  }

  /**
   * Average level in dB (AnalyserNode, fftSize 8192, peak of the 3 bins around each frequency) of
   * `window.monologueDebug.remoteStream` over `ms`. Silence reads about -200. Compare frequencies
   * against each other (e.g. 1000 Hz ≫ 440 Hz), not against absolute levels.
   */
  async measureRemoteTone(freqs: number[], ms: number): Promise<Record<number, number>> {
    return this.page.evaluate(measureInPage, { freqs, ms });
  }

  async screenshot(path: string): Promise<void> {
    await this.page.screenshot({ path, fullPage: true });
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/** Runs inside the page (serialized by Playwright): no closures over Node-side values. */
async function measureInPage({ freqs, ms }: { freqs: number[]; ms: number }): Promise<Record<number, number>> {
  const g = globalThis as any;
  const stream = g.monologueDebug?.remoteStream;
  if (!stream || stream.getAudioTracks().length === 0) throw new Error('no remote audio stream');
  // Chromium feeds a remote WebRTC track into WebAudio only while a media element plays it (without
  // one the analyser reads -Infinity everywhere, measured on Chromium 156): keep it on a muted element.
  // The silent path to the destination keeps the graph pulling.
  const element = new g.Audio();
  element.muted = true;
  element.srcObject = stream;
  await element.play().catch(() => undefined);
  const ctx = new g.AudioContext();
  await ctx.resume();
  try {
    const source = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    const silent = ctx.createGain();
    silent.gain.value = 0;
    source.connect(analyser);
    analyser.connect(silent);
    silent.connect(ctx.destination);
    const binHz = ctx.sampleRate / analyser.fftSize;
    const bins = new Float32Array(analyser.frequencyBinCount);
    const power = freqs.map(() => 0);
    let frames = 0;
    const end = performance.now() + ms;
    // Each read covers fftSize / sampleRate ≈ 170 ms; reading every 100 ms overlaps a little.
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      analyser.getFloatFrequencyData(bins);
      freqs.forEach((freq, i) => {
        const centre = Math.round(freq / binHz);
        let peak = -Infinity;
        for (let b = Math.max(0, centre - 1); b <= Math.min(bins.length - 1, centre + 1); b++) {
          peak = Math.max(peak, bins[b]!);
        }
        power[i]! += Number.isFinite(peak) ? 10 ** (peak / 10) : 0;
      });
      frames++;
    } while (performance.now() < end);
    const result: Record<number, number> = {};
    freqs.forEach((freq, i) => {
      const mean = power[i]! / frames;
      result[freq] = mean > 0 ? Math.max(-200, 10 * Math.log10(mean)) : -200;
    });
    source.disconnect();
    return result;
  } finally {
    element.srcObject = null;
    await ctx.close();
  }
}
