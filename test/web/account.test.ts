// The account pages of the reference web app against the whole service (real recordings sealed in the
// object store, real grants), in headless Chromium at a phone's size.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, writeSineWav } from '../helpers/browser.js';
import { startApiRig, type ApiRig, type SeededOwner } from '../api/fixture.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TABS = ['dial', 'calls', 'recordings', 'earnings', 'privacy'] as const;
const PHONE = { width: 390, height: 844 };

describe('account pages', () => {
  let rig: ApiRig;
  let browser: Browser;
  let alice: SeededOwner;
  let bob: SeededOwner;
  const contexts: BrowserContext[] = [];
  const shots = mkdtempSync(join(tmpdir(), 'monologue-pages-'));

  before(async () => {
    // Always rebuild: the page under test must be this checkout's.
    execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'src/web/tsconfig.json')]);
    rig = await startApiRig();
    alice = await rig.seedOwner('+15550107001', { calls: 2 });
    bob = await rig.seedOwner('+15550107002', { calls: 1 });
    browser = await launchBrowser({ fakeAudioWav: writeSineWav({ freq: 440, seconds: 3 }) });
    console.log(`# screenshots: ${shots}`);
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await rig?.close();
  });

  async function signedIn(owner: SeededOwner): Promise<Page> {
    const context = await browser.newContext({ viewport: PHONE });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(rig.url);
    await page.fill('#token', owner.token);
    await page.click('#connect');
    await page.waitForSelector('#tabs:not([hidden])');
    return page;
  }

  async function openTab(page: Page, tab: (typeof TABS)[number]): Promise<void> {
    await page.click(`#tab-${tab}`);
    await page.waitForSelector(`#panel-${tab}:not([hidden])`);
  }

  const ids = (page: Page, list: string, attr: string) =>
    page.$$eval(`#${list} > li`, (lis, a) => lis.map((li) => li.getAttribute(a)), attr);

  async function waitCount(page: Page, selector: string, n: number): Promise<void> {
    await page.waitForFunction(([s, k]) => (globalThis as any).document.querySelectorAll(s as string).length === k, [selector, n] as const);
  }

  test('a user sees both recorded calls, plays one through a grant, deletes one; another user sees none of it', async () => {
    const page = await signedIn(alice);
    // The token stays in memory: not in the URL, not in storage (remember is not ticked).
    assert.ok(!page.url().includes(alice.token));
    assert.equal(await page.evaluate(() => (globalThis as any).localStorage.length), 0);

    // Keyboard: the tabs are real buttons; arrows move between them.
    await page.focus('#tab-dial');
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('#tab-calls[aria-selected="true"]');
    assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'tab-calls');

    await openTab(page, 'calls');
    await waitCount(page, '#calls-list > li', 2);
    assert.deepEqual((await ids(page, 'calls-list', 'data-call-id')).sort(), [...alice.calls].sort());
    const callsText = await page.textContent('#calls-list');
    assert.match(callsText!, /\+1555\d{7}/, 'counterpart number shown');
    assert.match(callsText!, /the other party hung up/, 'end reason shown');
    assert.match(callsText!, /\$4\.00/, 'earning shown');
    assert.match(callsText!, /0:30/, 'duration shown');

    await openTab(page, 'recordings');
    await waitCount(page, '#recordings-list > li', 2);
    assert.deepEqual((await ids(page, 'recordings-list', 'data-recording-id')).sort(), alice.recordings.map((r) => r.id).sort());

    // Play: the page's <audio> plays the grant URL; an analyser on that element hears the recording's tone.
    const [played, other] = [alice.recordings[0]!, alice.recordings[1]!];
    await page.evaluate(() => {
      const g = globalThis as any;
      const ctx = new g.AudioContext();
      const source = ctx.createMediaElementSource((globalThis as any).document.getElementById('player'));
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      source.connect(analyser);
      analyser.connect(ctx.destination);
      g.playerTap = { ctx, analyser };
    });
    await page.click(`#recordings-list > li[data-recording-id="${played.id}"] button.play`);
    await page.waitForFunction(() => {
      const p = (globalThis as any).document.getElementById('player') as any;
      return !p.paused && p.currentTime > 0.2;
    });
    const grantUrl = await page.$eval('#player', (p) => (p as any).src);
    assert.match(grantUrl, /\/v1\/media\/mlg_/);
    const t0 = await page.$eval('#player', (p) => (p as any).currentTime);
    const levels = await page.evaluate(async ({ freqs, ms }) => {
      const { ctx, analyser } = (globalThis as any).playerTap;
      await ctx.resume();
      const bins = new Float32Array(analyser.frequencyBinCount);
      const binHz = ctx.sampleRate / analyser.fftSize;
      const power = freqs.map(() => 0);
      let frames = 0;
      const end = performance.now() + ms;
      do {
        await new Promise((r) => setTimeout(r, 100));
        analyser.getFloatFrequencyData(bins);
        freqs.forEach((f: number, i: number) => {
          const c = Math.round(f / binHz);
          let peak = -Infinity;
          for (let b = c - 1; b <= c + 1; b++) peak = Math.max(peak, bins[b]!);
          power[i]! += Number.isFinite(peak) ? 10 ** (peak / 10) : 0;
        });
        frames++;
      } while (performance.now() < end);
      return power.map((p: number) => (p > 0 ? Math.max(-200, 10 * Math.log10(p / frames)) : -200));
    }, { freqs: [played.toneHz, other.toneHz], ms: 1000 });
    const t1 = await page.$eval('#player', (p) => (p as any).currentTime);
    assert.ok(t1 - t0 >= 0.5, `currentTime advances: ${t0} → ${t1}`);
    assert.ok(levels[0]! - levels[1]! >= 20, `the ${played.toneHz} Hz tone dominates ${other.toneHz} Hz: ${levels.join(' / ')} dB`);

    // Screenshots of every tab at phone and desktop width, and no horizontal scrolling at 320 px.
    for (const width of [390, 1280, 320]) {
      await page.setViewportSize({ width, height: 844 });
      for (const tab of TABS) {
        await openTab(page, tab);
        if (tab === 'calls') await waitCount(page, '#calls-list > li', 2);
        if (tab === 'recordings') await waitCount(page, '#recordings-list > li', 2);
        if (tab === 'earnings') await page.waitForSelector('#balance dd');
        if (tab === 'privacy') await page.waitForSelector('#consent-state[data-consent]');
        const { scroll, client } = await page.evaluate(() => ({ scroll: (globalThis as any).document.documentElement.scrollWidth, client: (globalThis as any).document.documentElement.clientWidth }));
        assert.ok(scroll <= client, `${tab} at ${width} px: scrollWidth ${scroll} > clientWidth ${client}`);
        if (width !== 320) await page.screenshot({ path: join(shots, `${tab}-${width}.png`), fullPage: true });
      }
    }
    await page.setViewportSize(PHONE);

    // Privacy shows the consent with its version; Earnings shows the balance and takes a withdrawal.
    await openTab(page, 'privacy');
    assert.match((await page.textContent('#consent-state'))!, /version v1/);
    await openTab(page, 'earnings');
    assert.match((await page.textContent('#balance'))!, /\$8\.00/);
    await page.fill('#withdraw-amount', '5.00');
    await page.click('#withdraw-submit');
    await page.waitForFunction(() => /requested/.test((globalThis as any).document.getElementById('withdraw-result')!.textContent ?? ''));
    const payouts = (await (await rig.request('GET', '/v1/payouts', { token: alice.token })).json()) as { items: { amountMicros: number }[] };
    assert.deepEqual(payouts.items.map((p) => p.amountMicros), [5_000_000]);

    // Delete (with confirmation): the row goes, the API no longer lists it, its grant URL is dead.
    await openTab(page, 'recordings');
    await waitCount(page, '#recordings-list > li', 2);
    const row = `#recordings-list > li[data-recording-id="${played.id}"]`;
    await page.click(`${row} button.delete`);
    await page.waitForSelector(`${row} .confirm:not([hidden])`);
    assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.className), 'delete-yes danger', 'focus moves to the confirmation');
    await page.click(`${row} button.delete-yes`);
    await waitCount(page, '#recordings-list > li', 1);
    assert.deepEqual(await ids(page, 'recordings-list', 'data-recording-id'), [other.id]);
    assert.equal(await page.$eval('#player', (p) => p.getAttribute('src')), null);
    assert.equal((await fetch(grantUrl)).status, 404, 'the grant URL is dead after the deletion');
    const left = (await (await rig.request('GET', '/v1/recordings', { token: alice.token })).json()) as { items: { id: string }[] };
    assert.deepEqual(left.items.map((r) => r.id), [other.id]);

    // Bob, in another browser context, sees his own items and none of Alice's.
    const bobPage = await signedIn(bob);
    await openTab(bobPage, 'calls');
    await waitCount(bobPage, '#calls-list > li', 1);
    assert.deepEqual(await ids(bobPage, 'calls-list', 'data-call-id'), bob.calls);
    await openTab(bobPage, 'recordings');
    await waitCount(bobPage, '#recordings-list > li', 1);
    assert.deepEqual(await ids(bobPage, 'recordings-list', 'data-recording-id'), [bob.recordings[0]!.id]);
    const bobHtml = await bobPage.content();
    for (const id of [...alice.calls, ...alice.recordings.map((r) => r.id), alice.id, alice.phone]) assert.ok(!bobHtml.includes(id), `bob's page holds ${id}`);
  });

  test('download saves the recording; privacy: withdraw and give consent, export, delete the account (confirmed)', async () => {
    const carol = await rig.seedOwner('+15550107003', { calls: 1 });
    const page = await signedIn(carol);
    await openTab(page, 'recordings');
    await waitCount(page, '#recordings-list > li', 1);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#recordings-list button.download')]);
    const saved = await readFile((await download.path())!);
    assert.ok(saved.equals(carol.recordings[0]!.ogg), 'the downloaded file is the recording');

    await openTab(page, 'privacy');
    await page.waitForSelector('#consent-state[data-consent="given"]');
    await page.click('#consent-withdraw');
    await page.waitForSelector('#consent-state[data-consent="none"]');
    assert.equal(((await (await rig.request('GET', '/v1/me', { token: carol.token })).json()) as { consent: unknown }).consent, null);
    await page.click('#consent-give');
    await page.waitForSelector('#consent-state[data-consent="given"]');
    assert.match((await page.textContent('#consent-state'))!, /version v1/);

    const [exported] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const doc = JSON.parse(await readFile((await exported.path())!, 'utf8')) as Record<string, unknown>;
    assert.ok(JSON.stringify(doc).includes(carol.recordings[0]!.id), 'the export holds the user\'s recording');

    await page.click('#delete-account');
    await page.waitForSelector('#delete-confirm:not([hidden])');
    assert.equal((await rig.request('GET', '/v1/me', { token: carol.token })).status, 200, 'nothing is deleted before the confirmation');
    await page.click('#delete-account-no');
    await page.waitForSelector('#delete-confirm[hidden]', { state: 'attached' });
    await page.click('#delete-account');
    await page.click('#delete-account-yes');
    await page.waitForSelector('#tabs[hidden]', { state: 'attached' });
    assert.equal((await rig.request('GET', '/v1/me', { token: carol.token })).status, 401, 'the account is gone');
  });

  test('Calls and Recordings page with nextCursor: Load more fetches the rest, then goes away', async () => {
    const dave = await rig.seedOwner('+15550107004', { calls: 21, seconds: 1 });
    const page = await signedIn(dave);
    for (const [tab, list, more, attr, all] of [
      ['calls', 'calls-list', 'calls-more', 'data-call-id', dave.calls],
      ['recordings', 'recordings-list', 'recordings-more', 'data-recording-id', dave.recordings.map((r) => r.id)],
    ] as const) {
      await openTab(page, tab);
      await waitCount(page, `#${list} > li`, 20);
      assert.equal(await page.isVisible(`#${more}`), true, `${tab}: Load more is offered`);
      await page.click(`#${more}`);
      await waitCount(page, `#${list} > li`, 21);
      await page.waitForSelector(`#${more}[hidden]`, { state: 'attached' });
      const shown = await ids(page, list, attr);
      assert.equal(new Set(shown).size, 21, `${tab}: no item twice`);
      assert.deepEqual([...shown].sort(), [...all].sort());
    }
  });

  test('"remember on this device" keeps the token in localStorage across a reload, sign-out forgets it', async () => {
    const context = await browser.newContext({ viewport: PHONE });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(rig.url);
    await page.fill('#token', bob.token);
    await page.check('#remember');
    await page.click('#connect');
    await page.waitForSelector('#tabs:not([hidden])');
    assert.equal(await page.evaluate(() => (globalThis as any).localStorage.getItem('monologue.token')), bob.token);
    await page.reload();
    await page.waitForSelector('#tabs:not([hidden])');
    await openTab(page, 'calls');
    await waitCount(page, '#calls-list > li', 1);
    await page.click('#signout');
    await page.waitForSelector('#tabs[hidden]', { state: 'attached' });
    assert.equal(await page.evaluate(() => (globalThis as any).localStorage.length), 0);
    assert.equal(await page.inputValue('#token'), '');
  });
});
