import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percentiles, Tally } from '../../scripts/load/stats.js';
import { parseScrape, recorderCounters } from '../../scripts/load/metrics.js';
import { cpuReport, recorderReport } from '../../scripts/load/report.js';
import { growth } from '../../scripts/load/soak.js';
import { failureReason, spread } from '../../scripts/load/calls.js';
import { childNamed, processCpuMs, rssBytes, selfCpuMs } from '../../scripts/load/cpu.js';

test('percentiles by nearest rank; empty sample gives nulls', () => {
  const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.deepEqual(p, { count: 100, p50: 50, p95: 95, p99: 99, max: 100 });
  assert.deepEqual(percentiles([]), { count: 0, p50: null, p95: null, p99: null, max: null });
  assert.equal(percentiles([7.25]).p99, 7.3);
});

test('failures tally by reason', () => {
  const t = new Tally();
  t.add('timeout:answer');
  t.add('DAILY_LIMIT', 2);
  assert.equal(t.total, 3);
  assert.deepEqual(t.toJSON(), { DAILY_LIMIT: 2, 'timeout:answer': 1 });
});

test('Prometheus text: samples summed across labels, filtered by label, # lines skipped (the service\'s own reader)', () => {
  const s = parseScrape(
    [
      '# HELP monologue_call_setups_total setups',
      '# TYPE monologue_call_setups_total counter',
      'monologue_call_setups_total{direction="outbound",result="answered"} 40',
      'monologue_call_setups_total{direction="inbound",result="answered"} 2',
      'monologue_call_setups_total{direction="outbound",result="failed"} 1',
      'monologue_call_ends_total{reason="hangup \\"local\\""} 3',
      'process_cpu_seconds_total 12.5',
      'monologue_recorder_packets_received_total 1000',
      'monologue_recorder_packets_lost_total 2',
      'nonsense line',
    ].join('\n'),
  );
  assert.equal(s.sum('monologue_call_setups_total'), 43);
  assert.equal(s.sum('monologue_call_setups_total', { result: 'answered' }), 42);
  assert.equal(s.sum('process_cpu_seconds_total'), 12.5);
  assert.equal(s.sum('absent_metric'), undefined);
  assert.deepEqual(recorderCounters(s), { received: 1000, lost: 2, late: 0 });
  assert.equal(recorderCounters(parseScrape('process_cpu_seconds_total 1')), undefined, 'a build without recorder metrics');
});

test('recorder figures per recorded call from two scrapes; null without metrics', () => {
  assert.deepEqual(recorderReport({ received: 100, lost: 0, late: 0 }, { received: 2100, lost: 2, late: 4 }, 4), {
    recordedCalls: 4,
    packetsReceivedPerCall: 500,
    lostPerCall: 0.5,
    latePerCall: 1,
    lossPct: 0.1,
  });
  assert.equal(recorderReport(undefined, { received: 1, lost: 0, late: 0 }, 1), null);
});

test('CPU per live call is % of a core over the window divided by the calls; per setup is ms per call', () => {
  const r = cpuReport('hold', { wallMs: 10_000, cpuMs: { service: 500, rtpengine: null } }, { liveCalls: 20, setups: 250 });
  assert.deepEqual(r.processes.service, { cpuMs: 500, pctOfCore: 5, perLiveCallPct: 0.25, perSetupMs: 2 });
  assert.deepEqual(r.processes.rtpengine, { cpuMs: null, pctOfCore: null, perLiveCallPct: null, perSetupMs: null });
  assert.equal(r.wallS, 10);
});

test('per-call CPU above idle subtracts the idle rate over the window', () => {
  const idle = { wallMs: 2000, cpuMs: { service: 20 } }; // 1% of a core
  const r = cpuReport('run', { wallMs: 10_000, cpuMs: { service: 600 } }, { liveCalls: 10, setups: 100 }, idle);
  assert.equal(r.processes.service!.idlePctOfCore, 1);
  assert.equal(r.processes.service!.perSetupMs, 6);
  assert.equal(r.processes.service!.perSetupMsAboveIdle, 5);
  assert.equal(r.processes.service!.perLiveCallPctAboveIdle, 0.5);
});

test('soak growth compares the medians of the first and last minute after the warm-up; the slope shows a steady leak', () => {
  const flat = (t: number, rss: number, handles = 91) => ({ t, live: 40, rssBytes: rss, eventLoopP99Ms: 2, handles });
  // A GC trough right at the end of the warm-up (145) in an otherwise flat 165-171 line: not growth.
  const sawtooth = [flat(0, 50, 5), flat(110, 160), flat(120, 145), flat(130, 166), flat(140, 168), flat(150, 167), flat(160, 169), flat(170, 166), flat(180, 168)];
  for (let t = 190; t <= 1800; t += 10) sawtooth.push(flat(t, 166 + (t % 30 === 0 ? 5 : 2)));
  sawtooth.push({ t: 1801, live: 0, rssBytes: 169, eventLoopP99Ms: 9, handles: 51 });
  const g = growth(sawtooth, 120);
  assert.equal(g.windowS, 60);
  assert.equal(g.rssAfterWarmupBytes, 167, 'median of 120..180: the trough does not set it');
  assert.ok(g.rssGrowthPct !== null && Math.abs(g.rssGrowthPct) < 2, `flat: ${g.rssGrowthPct}%`);
  assert.ok(g.rssSlopeMbPerHour !== null && Math.abs(g.rssSlopeMbPerHour) < 2, `flat slope ${g.rssSlopeMbPerHour}`);
  assert.equal(g.handlesAfterWarmup, 91);
  assert.equal(g.handlesEndWindow, 91);
  assert.equal(g.handlesEnd, 51, 'the last sample, after the hangups');
  assert.equal(g.eventLoopP99MaxMs, 9);

  // A leak of 10 units an hour from 100: +5% over 30 minutes, and the slope says 10 an hour (1e6 bytes = 1 MB).
  const leak = Array.from({ length: 181 }, (_, i) => ({ t: i * 10, live: 40, rssBytes: (100 + (i * 10 * 10) / 3600) * 1e6, eventLoopP99Ms: 1, handles: 20 + Math.floor(i / 60) }));
  const l = growth(leak, 0);
  assert.equal(l.rssSlopeMbPerHour, 10);
  assert.ok(l.rssGrowthPct !== null && l.rssGrowthPct > 4 && l.rssGrowthPct < 5.5, `${l.rssGrowthPct}%`);
  assert.equal(l.handlesAfterWarmup, 20);
  assert.ok(l.handlesEndWindow !== null && l.handlesEndWindow > 21, 'handles that keep growing show');

  assert.equal(growth([{ t: 0, live: 0, rssBytes: null, eventLoopP99Ms: null, handles: null }], 0).rssGrowthPct, null);
  assert.equal(growth([{ t: 0, live: 0, rssBytes: 5, eventLoopP99Ms: null, handles: null }], 60).rssSlopeMbPerHour, null, 'a run shorter than its warm-up');
});

test('--mix spreads inbound calls evenly; failure reasons are short and stable', () => {
  assert.deepEqual(spread(4, { outbound: 1, inbound: 1 }), ['outbound', 'inbound', 'outbound', 'inbound']);
  assert.equal(spread(8, { outbound: 3, inbound: 1 }).filter((d) => d === 'inbound').length, 2);
  assert.deepEqual(spread(3, { outbound: 1, inbound: 0 }), ['outbound', 'outbound', 'outbound']);
  assert.equal(failureReason(new Error('call.start failed: DAILY_LIMIT at most 200 calls a day')), 'DAILY_LIMIT');
  assert.equal(failureReason(new Error('call ended before answer: busy')), 'busy');
  assert.equal(failureReason(new Error('timed out after 15000 ms waiting for call.answered for +1555')), 'timeout:call.answered');
  assert.equal(failureReason(new Error('connection failed')), 'media-failed');
  assert.equal(failureReason(new Error('signaling socket closed')), 'socket-closed');
});

test('/proc CPU of a process counts its own threads; a gone process reads undefined', () => {
  const own = processCpuMs(process.pid);
  assert.ok(own !== undefined && own >= 0);
  // Burn 100 ms of CPU (however long that takes on a busy machine): /proc agrees with process.cpuUsage() to a few ticks.
  const before = { proc: own, self: selfCpuMs() };
  const limit = performance.now() + 10_000;
  while (selfCpuMs() - before.self < 100 && performance.now() < limit);
  const self = selfCpuMs() - before.self;
  const proc = processCpuMs(process.pid)! - before.proc;
  assert.ok(self >= 100, `burnt ${self} ms`);
  assert.ok(Math.abs(proc - self) <= 40, `/proc says ${proc} ms, cpuUsage ${self} ms`);
  assert.ok(rssBytes(process.pid)! > 10_000_000);
  assert.equal(processCpuMs(2 ** 22 + 1), undefined);
  assert.equal(childNamed(process.pid, 'rtpengine'), undefined);
});
