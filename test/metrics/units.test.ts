import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { RtpIntake } from '../../src/recorder/intake.js';
import { createMetrics, parseExposition, processCpuSeconds, sampleValue } from '../../src/metrics/index.js';
import { rtp } from '../recorder/ogg-reader.js';

const opus20ms = (i: number) => Buffer.from([0xf8, i & 0xff]);

test('the intake counts each filled timestamp gap once (loss and DTX), not each silent packet', () => {
  const intake = new RtpIntake({ payloadType: 111, onPacket: () => undefined });
  const send = (seq: number, ts: number, at: number) => intake.push(rtp(seq, ts, opus20ms(seq)), at);
  for (let i = 0; i < 5; i++) send(100 + i, 5000 + i * 960, i * 20);
  assert.equal(intake.stats.gaps, 0, 'contiguous: no gap');
  // DTX: the sequence goes on, the timestamp jumps 400 ms: one gap, filled with several silent packets.
  send(105, 5000 + 25 * 960, 500);
  assert.equal(intake.stats.gaps, 1);
  assert.ok(intake.stats.insertedSamples >= 19 * 960, `filled ${intake.stats.insertedSamples} samples`);
  // Loss: one sequence number (and its 20 ms) missing, released once the window gives up.
  for (let i = 7; i < 15; i++) send(100 + i, 5000 + (i + 20) * 960, 500 + (i - 5) * 20);
  intake.flush();
  assert.equal(intake.stats.lost, 1);
  assert.equal(intake.stats.gaps, 2);
});

test('scrape-time readers: live values are read when scraped, the recorder counters summed once per scrape', async () => {
  const metrics = createMetrics();
  let live = 3;
  let reads = 0;
  metrics.readFrom({
    callsLive: () => live,
    recorder: () => {
      reads++;
      return { received: 1000, lost: 7, late: 2, gaps: 5, foreignDropped: 1 };
    },
  });
  let samples = parseExposition(await metrics.text());
  assert.equal(sampleValue(samples, 'monologue_calls_live'), 3);
  assert.equal(sampleValue(samples, 'monologue_recorder_packets_received_total'), 1000);
  assert.equal(sampleValue(samples, 'monologue_recorder_packets_lost_total'), 7);
  assert.equal(sampleValue(samples, 'monologue_recorder_packets_late_total'), 2);
  assert.equal(sampleValue(samples, 'monologue_recorder_gaps_total'), 5);
  assert.equal(sampleValue(samples, 'monologue_recorder_foreign_dropped_total'), 1);
  assert.equal(reads, 1, 'five counters, one pass over the recorders');
  live = 0;
  await new Promise((r) => setImmediate(r));
  samples = parseExposition(await metrics.text());
  assert.equal(sampleValue(samples, 'monologue_calls_live'), 0);
  assert.equal(reads, 2, 'the next scrape reads again');
  // Two metrics objects never share a registry.
  assert.equal(sampleValue(parseExposition(await createMetrics().text()), 'monologue_recorder_packets_received_total'), 0);
});

test('exposition reader: labels (escaped quotes included), +Inf, sums over the labels not asked for', () => {
  const text = [
    '# HELP x_total a counter',
    '# TYPE x_total counter',
    'x_total{reason="a",dir="in"} 2',
    'x_total{reason="a \\"quoted\\"",dir="out"} 3',
    'h_bucket{le="+Inf"} 4',
    'g 1.5e-3',
  ].join('\n');
  const s = parseExposition(text);
  assert.equal(sampleValue(s, 'x_total'), 5);
  assert.equal(sampleValue(s, 'x_total', { dir: 'out' }), 3);
  assert.equal(s[1]?.labels.reason, 'a "quoted"');
  assert.equal(sampleValue(s, 'h_bucket', { le: '+Inf' }), 4);
  assert.equal(sampleValue(s, 'g'), 0.0015);
  assert.equal(sampleValue(s, 'missing'), undefined);
});

test('processCpuSeconds reads a process\'s own CPU time from /proc, as process.cpuUsage sees it for this one', async () => {
  // A shell that spins for ~0.3 s of CPU itself.
  const child = spawn('sh', ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5'], { stdio: 'ignore' });
  try {
    const pid = child.pid!;
    let cpu = 0;
    for (let i = 0; i < 100 && cpu < 0.1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      cpu = processCpuSeconds(pid) ?? 0;
    }
    assert.ok(cpu >= 0.1, `the spinning shell spent ${cpu} s`);
    // This process runs that shell: its own figure is its own threads' time, as Node counts it, without the child's.
    const self = processCpuSeconds(process.pid)!;
    const usage = process.cpuUsage();
    assert.ok(Math.abs(self - (usage.user + usage.system) / 1e6) < 0.1, `own ${self} s vs process.cpuUsage`);
    assert.equal(processCpuSeconds(2 ** 22 + 12345), undefined, 'no such process');
  } finally {
    child.kill();
  }
});
