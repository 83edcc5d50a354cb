import { test } from 'node:test';
import assert from 'node:assert/strict';
import { job, parse, type Job } from '../../scripts/load/options.js';
import { MonologueError } from '../../src/errors.js';
import { runLoad } from '../helpers/load-cli.js';

/** The checked job for argv (throws the USAGE error parse or job raised). */
function plan(...argv: string[]): Job {
  const p = parse(argv);
  assert.notEqual(p, 'help');
  return job(p as Exclude<typeof p, 'help'>);
}

function refused(argv: string[], message: RegExp): void {
  assert.throws(
    () => plan(...argv),
    (err: unknown) => err instanceof MonologueError && err.code === 'USAGE' && message.test(err.message),
    `${argv.join(' ')} should be refused with ${message}`,
  );
}

test('defaults: calls 10 at 5/s held 10 s, recorded, outbound only, local mode', () => {
  const j = plan('calls');
  assert.equal(j.scenario, 'calls');
  assert.deepEqual(j.scenario === 'calls' && j.options, { calls: 10, rate: 5, holdS: 10, mix: { outbound: 1, inbound: 0 }, record: true, to: '+15550002222' });
  assert.equal(j.where.mode, 'local');
});

test('durations take ms, s, m, h or plain seconds; soak warm-up defaults to a third of a short run', () => {
  const j = plan('soak', '--duration', '15s', '--sample', '500ms', '--hold', '2m', '--no-record', '--mix', '3:1');
  assert.equal(j.scenario, 'soak');
  if (j.scenario !== 'soak') return;
  assert.equal(j.options.durationS, 15);
  assert.equal(j.options.sampleS, 0.5);
  assert.equal(j.options.holdS, 120);
  assert.equal(j.options.warmupS, 5);
  assert.equal(j.options.record, false);
  assert.deepEqual(j.options.mix, { outbound: 3, inbound: 1 });
  const long = plan('soak');
  assert.ok(long.scenario === 'soak' && long.options.durationS === 1800 && long.options.warmupS === 120);
});

test('cps: closed loop by default, open loop with --rate', () => {
  const closed = plan('cps', '--sockets', '40');
  assert.ok(closed.scenario === 'cps' && closed.options.rate === undefined && closed.options.sockets === 40);
  const open = plan('cps', '--rate', '200', '--duration', '1m');
  assert.ok(open.scenario === 'cps' && open.options.rate === 200 && open.options.durationS === 60);
});

test('target mode: every address checked, accounts from --tokens or --admin', () => {
  const j = plan('calls', '--target', 'http://127.0.0.1:8080', '--tokens', 'tokens.txt', '--trunk', '127.0.0.1:5080', '--metrics', 'http://127.0.0.1:9464/metrics');
  assert.equal(j.where.mode, 'target');
  if (j.where.mode !== 'target') return;
  assert.equal(j.where.target.target.href, 'http://127.0.0.1:8080/');
  assert.deepEqual(j.where.target.trunk, { host: '127.0.0.1', port: 5080 });
  assert.equal(j.where.target.metrics?.href, 'http://127.0.0.1:9464/metrics');
  refused(['calls', '--target', 'http://127.0.0.1:8080', '--tokens', 't'], /--trunk HOST:PORT/);
  refused(['calls', '--target', 'http://127.0.0.1:8080', '--trunk', '127.0.0.1:5080'], /--tokens FILE, or --admin/);
  refused(['calls', '--target', 'http://127.0.0.1:8080', '--trunk', '127.0.0.1:5080', '--admin', 'http://127.0.0.1:9'], /--admin-key/);
  refused(['calls', '--target', 'http://127.0.0.1:8080', '--trunk', '127.0.0.1:5080', '--tokens', 't', '--mix', '1:1'], /--sip HOST:PORT/);
  refused(['calls', '--target', 'ftp://x', '--trunk', '127.0.0.1:5080', '--tokens', 't'], /--target must be an http/);
  refused(['calls', '--target', 'http://127.0.0.1:8080', '--trunk', '127.0.0.1', '--tokens', 't'], /--trunk must be HOST:PORT/);
  refused(['calls', '--target', 'http://127.0.0.1:8080', '--trunk', '127.0.0.1:5080', '--tokens', 't', '--profile'], /--profile works only in local mode/);
  refused(['calls', '--tokens', 't'], /--tokens needs --target/);
});

test('bad options are refused with what to fix', () => {
  refused([], /name a scenario/);
  refused(['dance'], /unknown scenario "dance"/);
  refused(['calls', '--bogus'], /Unknown option '--bogus'/);
  refused(['calls', '--sockets', '3'], /--sockets does not apply to calls/);
  refused(['cps', '--hold', '3'], /--hold does not apply to cps/);
  refused(['calls', '--calls', '0'], /--calls must be a whole number from 1 to 1000/);
  refused(['calls', '--calls', '2.5'], /--calls must be a whole number/);
  refused(['calls', '--rate', '0'], /--rate must be a number above 0/);
  refused(['cps', '--duration', '5x'], /--duration must be a duration such as/);
  refused(['calls', '--mix', '1-1'], /--mix must be OUTBOUND:INBOUND/);
  refused(['calls', '--mix', '0:0'], /--mix must be OUTBOUND:INBOUND/);
  refused(['calls', '--record', '--no-record'], /not both/);
  refused(['calls', '--to', '5550002222'], /--to must be an E.164 number/);
  refused(['soak', '--duration', '10s', '--warmup', '10s'], /--warmup must be shorter/);
  refused(['calls', '--log-level', 'loud'], /--log-level must be one of/);
});

test('the program exits 2 with a JSON error on stderr for a bad option, 0 with the usage for --help', async () => {
  const bad = await runLoad(['cps', '--sockets', 'many']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  const err = JSON.parse(bad.stderr) as { code: string; message: string };
  assert.equal(err.code, 'USAGE');
  assert.match(err.message, /--sockets must be a whole number/);
  const help = await runLoad(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: monologue-load <calls\|cps\|soak>/);
});
