import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../helpers/load-cli.js';
import { cleanRun, cpuMeasured } from './scenarios-check.js';

/** `monologue-load cps` in local mode: setup and immediate teardown, no media, closed and open loop. */

test('cps closed loop: 20 calls over 4 sockets, all answered, CPU per setup measured', async () => {
  const r = cleanRun(await runLoad(['cps', '--max-calls', '20', '--sockets', '4']), 20);
  assert.equal(r.scenario, 'cps');
  assert.equal((r.options as { loop: string }).loop, 'closed');
  assert.equal(r.setupMs.count, 20);
  assert.ok(r.setupMs.p50! > 0 && r.setupMs.p99! >= r.setupMs.p50!);
  assert.equal(r.cpu.setups, 20);
  cpuMeasured(r, ['service', 'rtpengine', 'client'], 'perSetupMs');
  assert.equal(r.audio, null, 'no media in cps');
});

test('cps open loop: 20 calls/s for 1 s', async () => {
  const r = cleanRun(await runLoad(['cps', '--rate', '20', '--duration', '1s', '--sockets', '4']), (n) => n >= 18 && n <= 21);
  assert.equal((r.options as { loop: string }).loop, 'open');
  cpuMeasured(r, ['service'], 'perSetupMs');
});
