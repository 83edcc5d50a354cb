import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../helpers/load-cli.js';
import { audioPassed, cleanRun, cpuMeasured, recorderFigures } from './scenarios-check.js';

/** `monologue-load calls` in local mode: its own service, rtpengine and sipp trunk, real libwebrtc dialers. */

test('calls: 2 recorded calls (one outbound, one inbound) held 3 s, both hear the other side, CPU per live call measured', async () => {
  const r = cleanRun(await runLoad(['calls', '--calls', '2', '--hold', '3', '--mix', '1:1', '--rate', '10']), 2);
  assert.equal(r.scenario, 'calls');
  assert.equal(r.mode, 'local');
  assert.equal(r.calls.recorded, 2, 'enrolled users with consent are recorded');
  assert.equal(r.setupMs.count, 1);
  assert.equal(r.setupInboundMs?.count, 1);
  assert.ok(r.setupMs.p50! > 0 && r.setupMs.p50! < 5000);
  assert.equal(r.cpu.window, 'hold');
  assert.equal(r.cpu.liveCalls, 2);
  assert.ok(r.cpu.wallS >= 2.9);
  cpuMeasured(r, ['service', 'rtpengine', 'client'], 'perLiveCallPct');
  assert.ok(r.rss.serviceStartBytes! > 10_000_000 && r.rss.serviceEndBytes! > 10_000_000);
  audioPassed(r, 2);
  recorderFigures(r, 2, 3);
});

test('calls --no-record: users not enrolled, nothing recorded, audio still checked', async () => {
  const r = cleanRun(await runLoad(['calls', '--calls', '1', '--hold', '2', '--no-record']), 1);
  assert.equal(r.calls.recorded, 0);
  audioPassed(r, 1);
});
