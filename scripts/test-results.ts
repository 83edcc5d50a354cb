/**
 * Reads one tap runner's raw TAP (`tap -R tap`, one file at a time) on stdin, prints it for people
 * (a line per test, failures with their details) and counts the individual node:test tests.
 *
 *   npx tap -R tap FILE… | node --import tsx scripts/test-results.ts COUNTS_FILE
 *
 * COUNTS_FILE gets `PASSED FAILED` on its first line and one failed test per following line.
 * The counts are node:test's own per-file totals (`# pass`, `# fail`, `# cancelled`), so they mean what
 * `node --test` counted before tap ran the files; a file that crashed, was killed or timed out without a
 * failing test of its own counts one failure. tap's own counts (assertions, suites) are left out: they
 * count other things and would contradict the closing line.
 */
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

interface FileResult {
  pass: number;
  fail: number;
  cancelled: number;
  skipped: number;
  /** undefined until tap reports the file's end. */
  ok: boolean | undefined;
  why: string;
}

const countsFile = process.argv[2];
if (!countsFile) {
  console.error('usage: tap -R tap FILE… | node --import tsx scripts/test-results.ts COUNTS_FILE');
  process.exit(2);
}

const files = new Map<string, FileResult>();
const failures: string[] = [];
let current: FileResult | undefined;
let currentName = '';
/** `# Subtest:` names by depth: the path of a failing test. */
const subtests: string[] = [];
/** A `# Subtest:` line is printed only when children follow it (a suite), not before a leaf test. */
let pendingSubtest: { depth: number; name: string } | undefined;
/** An ok/not ok line waiting for its YAML block. */
let pendingResult: { depth: number; ok: boolean; name: string; directive: string } | undefined;
let yaml: string[] | undefined;

const out = (line: string): void => { process.stdout.write(line + '\n'); };
const pad = (depth: number): string => '  '.repeat(depth);

function depthOf(line: string): number {
  const spaces = line.length - line.trimStart().length;
  return Math.floor(spaces / 4);
}

function yamlValue(block: string[], key: string): string | undefined {
  const re = new RegExp(`^\\s*${key}: (.*)$`);
  for (const l of block) {
    const m = re.exec(l);
    if (m?.[1] !== undefined) return m[1].replace(/^'(.*)'$/, '$1');
  }
  return undefined;
}

function ms(v: string | undefined): string {
  if (v === undefined) return '';
  const n = Number(v);
  return Number.isFinite(n) ? ` (${n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${n.toFixed(0)} ms`})` : '';
}

function flushSubtest(nextDepth: number): void {
  if (pendingSubtest && nextDepth > pendingSubtest.depth) out(`${pad(pendingSubtest.depth)}▶ ${pendingSubtest.name}`);
  pendingSubtest = undefined;
}

/** A test file's end, as tap saw it: its exit, a signal or a timeout. */
function fileEnded(ok: boolean, directive: string, block: string[]): void {
  if (!current) return;
  current.ok = ok;
  if (!ok) {
    const expired = yamlValue(block, 'expired');
    const signal = yamlValue(block, 'signal');
    const code = yamlValue(block, 'exitCode');
    current.why = expired ? 'timed out (tap\'s per-file timeout)'
      : signal && signal !== 'null' ? `killed by ${signal}`
        : code && code !== 'null' && code !== '0' ? `exit code ${code}` : 'failed';
  }
  const c = current;
  const counts = `${c.pass} passed, ${c.fail + c.cancelled} failed${c.skipped ? `, ${c.skipped} skipped` : ''}`;
  const time = ms(/# time=([\d.]+)ms/.exec(directive)?.[1]);
  out(ok ? `✔ ${currentName}: ${counts}${time}` : `✖ ${currentName}: ${counts}${time}; ${c.why}`);
  out('');
}

/** A node:test test's end: one line, and the details when it failed. */
function testEnded(r: NonNullable<typeof pendingResult>, block: string[]): void {
  const dur = ms(yamlValue(block, 'duration_ms'));
  const skip = /#\s*(SKIP|TODO)/i.test(r.directive);
  const mark = skip ? '﹣' : r.ok ? '✔' : '✖';
  out(`${pad(r.depth)}${mark} ${r.name}${r.directive}${dur}`);
  const failureType = yamlValue(block, 'failureType');
  // A suite whose children failed is not a failure of its own: its children are listed.
  if (r.ok || failureType === 'subtestsFailed') return;
  const base = r.depth * 4 + 2;
  for (const l of block) if (!/^\s*duration_ms:/.test(l) && l.trim() !== '...') out(`${pad(r.depth + 1)}${l.slice(base)}`);
  failures.push([currentName, ...subtests.slice(1, r.depth), r.name].join(' > '));
}

function finishResult(block: string[]): void {
  const r = pendingResult;
  pendingResult = undefined;
  yaml = undefined;
  if (!r) return;
  if (r.depth === 0) fileEnded(r.ok, r.directive, block);
  else testEnded(r, block);
}

function onLine(raw: string): void {
  const line = raw.replace(/\s+$/, '');
  const depth = depthOf(line);
  const text = line.trimStart();

  if (yaml && pendingResult) {
    yaml.push(line);
    if (text === '...' && depth === pendingResult.depth) finishResult(yaml);
    return;
  }
  if (pendingResult) {
    if (text === '---' && depth === pendingResult.depth) { yaml = []; return; }
    finishResult([]);
  }
  if (text === '') return;
  flushSubtest(depth);

  const subtest = /^# Subtest: (.*)$/.exec(text);
  if (subtest) {
    const name = subtest[1] ?? '';
    subtests.length = depth;
    subtests[depth] = name;
    if (depth === 0) {
      currentName = name;
      current = { pass: 0, fail: 0, cancelled: 0, skipped: 0, ok: undefined, why: '' };
      files.set(name, current);
      out(`▶ ${name}`);
    } else {
      pendingSubtest = { depth, name };
    }
    return;
  }
  const result = /^(not )?ok \d+(?: - (.*?))?( # .*)?$/.exec(text);
  if (result) {
    pendingResult = { depth, ok: !result[1], name: result[2] ?? '', directive: result[3] ?? '' };
    return;
  }
  if (/^1\.\.\d+/.test(text) || /^TAP version/.test(text)) return;
  if (depth === 1 && current) {
    const total = /^# (pass|fail|cancelled|skipped) (\d+)$/.exec(text);
    if (total) {
      const n = Number(total[2]);
      if (total[1] === 'pass') current.pass += n;
      else if (total[1] === 'fail') current.fail += n;
      else if (total[1] === 'cancelled') current.cancelled += n;
      else current.skipped += n;
      return;
    }
    if (/^# (tests|suites|todo|duration_ms) /.test(text)) return;
  }
  // The runner's own closing comments (its counts, its coverage note, its time): not ours to print.
  if (depth === 0 && text.startsWith('#')) return;
  out(line);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', onLine);
rl.on('close', () => {
  if (pendingResult) finishResult(yaml ?? []);
  let passed = 0;
  let failed = 0;
  for (const [name, f] of files) {
    passed += f.pass;
    const own = f.fail + f.cancelled;
    failed += own;
    if (f.ok === undefined) {
      // The runner stopped before this file ended.
      failed += 1;
      failures.push(`${name}: did not finish`);
    } else if (!f.ok && own === 0) {
      failed += 1;
      failures.push(`${name}: ${f.why}`);
    }
  }
  writeFileSync(countsFile, [`${passed} ${failed}`, ...failures].join('\n') + '\n');
});
