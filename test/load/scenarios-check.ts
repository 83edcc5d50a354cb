/** Assertions every scenario's report must pass (shared by the test/load scenario files). */
import assert from 'node:assert/strict';
import type { LoadRun } from '../helpers/load-cli.js';
import type { Report } from '../../scripts/load/report.js';

/** The run ended normally with one JSON report, every call answered, none failed. */
export function cleanRun(run: LoadRun, answered: number | ((n: number) => boolean)): Report {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr.slice(-2000)}`);
  const r = run.report;
  assert.ok(r, `no JSON line on stdout: ${run.stdout.slice(-500)}`);
  assert.equal(run.stdout.trim().split('\n').length, 1, 'stdout holds the JSON line only');
  assert.deepEqual(r.calls.failed, {}, `failures: ${JSON.stringify(r.calls.failed)}`);
  assert.equal(r.calls.failedTotal, 0);
  if (typeof answered === 'number') assert.equal(r.calls.answered, answered);
  else assert.ok(answered(r.calls.answered), `answered ${r.calls.answered}`);
  assert.equal(r.calls.attempted, r.calls.answered);
  return r;
}

/** CPU was measured for every process in the picture, and each did some work. */
export function cpuMeasured(r: Report, names: readonly string[], field: 'perLiveCallPct' | 'perSetupMs'): void {
  for (const name of names) {
    const p = r.cpu.processes[name];
    assert.ok(p && p.cpuMs !== null && p.cpuMs > 0, `${name} CPU: ${JSON.stringify(p)}`);
    assert.ok(p[field] !== null && p[field]! > 0, `${name} ${field}: ${JSON.stringify(p)}`);
    assert.ok(p.pctOfCore! < 200 * 2, `${name} cannot use more than the machine's cores`);
  }
}

/** Every call heard the other side's tone, both ways. */
export function audioPassed(r: Report, calls: number): void {
  assert.ok(r.audio);
  assert.equal(r.audio.dialerHeardTrunk.checked, calls);
  assert.equal(r.audio.dialerHeardTrunk.passed, calls, 'each dialer heard the trunk tone');
  assert.equal(r.audio.trunkHeardDialer.passed, r.audio.trunkHeardDialer.checked, 'the trunk heard each dialer tone');
  assert.ok(r.audio.trunkHeardDialer.checked >= calls, 'each call held long enough (2 s) to be judged at the trunk');
}

/** With a metrics endpoint, the recorder figures are there and plausible; without one, null with a note. */
export function recorderFigures(r: Report, recordedCalls: number, holdS: number): void {
  if (!r.metrics) {
    assert.equal(r.recorder, null);
    assert.ok(r.notes.some((n) => /metrics/.test(n)), 'the report says why the recorder figures are missing');
    return;
  }
  assert.ok(r.recorder, 'recorder figures from /metrics');
  assert.equal(r.recorder.recordedCalls, recordedCalls);
  // 50 packets/s per recorded call while held (some slack for start-up and teardown).
  assert.ok(r.recorder.packetsReceivedPerCall! > holdS * 50 * 0.5, `received ${r.recorder.packetsReceivedPerCall} per call`);
  assert.ok((r.recorder.lossPct ?? 0) < 1, `loss ${r.recorder.lossPct}%`);
}
