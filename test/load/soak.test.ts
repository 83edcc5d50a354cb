import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../helpers/load-cli.js';
import { audioPassed, cleanRun, cpuMeasured } from './scenarios-check.js';

/** `monologue-load soak`, short: 2 slots whose calls last 5 s, for 15 s, sampled every 5 s. */

test('soak: calls replaced as they end, samples every 5 s, growth after the warm-up', async () => {
  const r = cleanRun(await runLoad(['soak', '--calls', '2', '--duration', '15s', '--sample', '5s', '--hold', '5s']), (n) => n >= 4);
  assert.equal(r.scenario, 'soak');
  const soak = r.soak as { warmupS: number; sampleCount: number; rssGrowthPct: number | null; samples: Array<{ t: number; rssBytes: number | null; handles: number | null }> };
  assert.equal(soak.warmupS, 5);
  assert.ok(soak.sampleCount >= 3 && soak.sampleCount <= 5, `${soak.sampleCount} samples`);
  assert.ok(soak.samples.every((s) => s.rssBytes !== null && s.rssBytes > 10_000_000), 'RSS sampled (from /proc in local mode)');
  assert.ok(soak.rssGrowthPct !== null && Math.abs(soak.rssGrowthPct) < 50, `RSS growth ${soak.rssGrowthPct}%`);
  if (r.metrics) assert.ok(soak.samples.every((s) => s.handles !== null && s.handles > 0), 'open handles from /metrics');
  assert.equal(r.cpu.window, 'steady');
  cpuMeasured(r, ['service', 'rtpengine', 'client'], 'perLiveCallPct');
  audioPassed(r, r.calls.answered);
});
