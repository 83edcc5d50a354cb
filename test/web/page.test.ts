// The reference dialer page and the dialer-side test helpers, without the real server:
// the page is served by a tiny static server, audio is looped back inside the page or between
// two wrtc peers in this process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { DialerDriver, launchBrowser } from '../helpers/browser.js';
import { writeSineWav } from '../helpers/wav.js';
import { connectDirect } from '../helpers/wrtc-dialer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FILES: Record<string, { path: string; type: string }> = {
  '/': { path: join(root, 'src/web/index.html'), type: 'text/html; charset=utf-8' },
  '/dialer.js': { path: join(root, 'dist/web/dialer.js'), type: 'text/javascript; charset=utf-8' },
  '/account.js': { path: join(root, 'dist/web/account.js'), type: 'text/javascript; charset=utf-8' },
  '/dialer.css': { path: join(root, 'src/web/dialer.css'), type: 'text/css; charset=utf-8' },
};

describe('web dialer page', () => {
  let server: Server;
  let browser: Browser;
  let dialer: DialerDriver;
  let baseUrl: string;

  before(async () => {
    if (!existsSync(FILES['/dialer.js']!.path)) {
      execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'src/web/tsconfig.json')]);
    }
    server = createServer((req, res) => {
      const file = FILES[new URL(req.url ?? '/', 'http://x').pathname];
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': file.type }).end(readFileSync(file.path));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await launchBrowser({ fakeAudioWav: writeSineWav({ freq: 440, seconds: 3 }) });
    dialer = await DialerDriver.open(browser, baseUrl);
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  test('renders the controls', async () => {
    const page = dialer.page;
    for (const id of ['token', 'connect', 'status', 'number', 'call', 'hangup', 'answer', 'reject', 'state', 'error', 'remote']) {
      assert.equal(await page.locator(`#${id}`).count(), 1, `#${id}`);
    }
    assert.equal(await page.getAttribute('#token', 'type'), 'password');
    assert.equal(await page.locator('#pad button[data-key]').count(), 13);
    assert.equal(await dialer.state(), 'idle');
    assert.equal(await page.isDisabled('#call'), true, 'Call is disabled until connected');
    assert.equal(await page.getAttribute('audio#remote', 'autoplay'), '');
    // the dial pad and backspace edit the number
    for (const key of ['+', '1', '5', '5', '5']) await page.click(`#pad button[data-key="${key}"]`);
    await page.click('#backspace');
    assert.equal(await page.inputValue('#number'), '+155');
    await dialer.screenshot('/tmp/dialer.png');
  });

  test('a connection failure is reported, not thrown', async () => {
    // The static server has no /v1/signal, so the WebSocket handshake fails.
    await dialer.page.fill('#token', 'secret');
    await dialer.page.click('#connect');
    await dialer.page.waitForSelector('#status[data-status="error"]');
    assert.equal(await dialer.page.isDisabled('#call'), true);
  });

  test('asks for the microphone with echo cancellation on', async () => {
    const settings = await dialer.page.evaluate(async () => {
      // Same constraints as the page (AUDIO_CONSTRAINTS in src/web/dialer.ts).
      const g = globalThis as any;
      const stream = await g.navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      const s = stream.getAudioTracks()[0].getSettings();
      for (const t of stream.getTracks()) t.stop();
      return { echoCancellation: s.echoCancellation, noiseSuppression: s.noiseSuppression };
    });
    assert.equal(settings.echoCancellation, true);
    const source = readFileSync(join(root, 'src/web/dialer.ts'), 'utf8');
    assert.match(source, /echoCancellation: true, noiseSuppression: true, autoGainControl: true/);
  });

  test('measureRemoteTone hears the 440 Hz fake microphone over an in-page loopback call', async () => {
    await dialer.page.evaluate(async () => {
      const g = globalThis as any;
      const mic = await g.navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
      const a = new g.RTCPeerConnection({ iceServers: [] });
      const b = new g.RTCPeerConnection({ iceServers: [] });
      a.onicecandidate = (e: any) => e.candidate && b.addIceCandidate(e.candidate);
      b.onicecandidate = (e: any) => e.candidate && a.addIceCandidate(e.candidate);
      const received = new g.MediaStream();
      b.ontrack = (e: any) => received.addTrack(e.track);
      for (const track of mic.getAudioTracks()) a.addTrack(track, mic);
      await a.setLocalDescription(await a.createOffer());
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription(await b.createAnswer());
      await a.setRemoteDescription(b.localDescription);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`loopback state ${b.connectionState}`)), 5000);
        b.onconnectionstatechange = () => b.connectionState === 'connected' && (clearTimeout(t), resolve());
      });
      g.monologueDebug.remoteStream = received;
      g.loopback = { a, b, mic };
    });
    const levels = await dialer.measureRemoteTone([440, 1000], 1500);
    assert.ok(levels[440]! - levels[1000]! >= 20, `440 Hz should dominate 1000 Hz: ${JSON.stringify(levels)}`);
    await dialer.page.evaluate(() => {
      const { a, b, mic } = (globalThis as any).loopback;
      a.close();
      b.close();
      for (const t of mic.getTracks()) t.stop();
    });
  });
});

describe('wrtc dialer helper', () => {
  test('two directly connected wrtc peers each hear the other tone', async () => {
    const { a, b, close } = await connectDirect({ freqA: 440, freqB: 1000 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const heardByB = { f440: b.meter.measure(440), f1000: b.meter.measure(1000) };
      const heardByA = { f440: a.meter.measure(440), f1000: a.meter.measure(1000) };
      assert.ok(heardByB.f440 - heardByB.f1000 >= 20, `B hears A's 440 Hz: ${JSON.stringify(heardByB)}`);
      assert.ok(heardByA.f1000 - heardByA.f440 >= 20, `A hears B's 1000 Hz: ${JSON.stringify(heardByA)}`);
    } finally {
      close();
    }
  });
});
