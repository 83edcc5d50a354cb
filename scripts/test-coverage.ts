/**
 * Prints the test run's coverage of src/, lines and branches per folder, from the V8 coverage that tap
 * (@tapjs/processinfo) recorded in the test processes and in the node processes they spawned.
 *
 *   node --import tsx scripts/test-coverage.ts RUNNER_DIR…
 *
 * Each RUNNER_DIR holds one runner's `.tap/coverage` (scripts/test.sh gives each of its two runners its
 * own, so neither runner's start-up clean-up or closing report reads or deletes the other's files while it
 * writes them). They are gathered into this checkout's `.tap/coverage`, so `npx tap report html` shows the
 * same run afterwards, and summed by `tap report json-summary`. Coverage never fails the run: when it
 * cannot be reported, this says why and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

interface Count { total: number; covered: number }
interface FileSummary { lines: Count; branches: Count }
interface SourceMapEntry { data?: { sourcesContent?: unknown[] } }
interface V8Coverage { 'source-map-cache'?: Record<string, SourceMapEntry> }

const root = process.cwd();
const gathered = join(root, '.tap', 'coverage');
const reportDir = join(root, '.tap', 'report');

/**
 * tsx's source maps reach processinfo with `sourcesContent: [null]`; v8-to-istanbul then takes null for
 * the original text and reports each file as one line. Without the field it reads the file from disk.
 */
function dropEmptySourcesContent(cov: V8Coverage): void {
  for (const entry of Object.values(cov['source-map-cache'] ?? {})) {
    const content = entry.data?.sourcesContent;
    if (entry.data && Array.isArray(content) && content.every((c) => c === null || c === undefined)) {
      delete entry.data.sourcesContent;
    }
  }
}

function gather(dirs: string[]): { files: number; unreadable: number } {
  rmSync(gathered, { recursive: true, force: true });
  rmSync(reportDir, { recursive: true, force: true });
  mkdirSync(gathered, { recursive: true });
  let files = 0;
  let unreadable = 0;
  for (const dir of dirs) {
    const from = join(dir, '.tap', 'coverage');
    if (!existsSync(from)) continue;
    for (const name of readdirSync(from).filter((n) => n.endsWith('.json'))) {
      let cov: V8Coverage;
      try {
        cov = JSON.parse(readFileSync(join(from, name), 'utf8')) as V8Coverage;
      } catch {
        // A process killed while writing its coverage (a timed-out file) leaves half a file.
        unreadable += 1;
        continue;
      }
      dropEmptySourcesContent(cov);
      writeFileSync(join(gathered, name), JSON.stringify(cov));
      files += 1;
    }
  }
  return { files, unreadable };
}

/** src/<folder>/… → folder; files right under src/ → `src/*`; anything outside src/ → undefined. */
function folderOf(file: string): string | undefined {
  const rel = relative(root, file).split(sep);
  if (rel[0] !== 'src' || rel.length < 2) return undefined;
  return rel.length === 2 ? 'src/*' : rel[1];
}

function pct(c: Count): string {
  if (c.total === 0) return '     -';
  return `${((100 * c.covered) / c.total).toFixed(1).padStart(5)}%`;
}

function cell(c: Count): string {
  return `${pct(c)} ${`${c.covered}/${c.total}`.padStart(11)}`;
}

function main(): void {
  const dirs = process.argv.slice(2);
  const { files, unreadable } = gather(dirs);
  if (files === 0) {
    console.log('coverage: none recorded');
    return;
  }
  const r = spawnSync('npx', ['--no-install', 'tap', 'report', 'json-summary'], { cwd: root, encoding: 'utf8' });
  const summaryFile = join(reportDir, 'coverage-summary.json');
  if (r.status !== 0 || !existsSync(summaryFile)) {
    console.log(`coverage: tap report failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    return;
  }
  const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as Record<string, FileSummary>;
  const folders = new Map<string, { lines: Count; branches: Count; files: number }>();
  const all = { lines: { total: 0, covered: 0 }, branches: { total: 0, covered: 0 }, files: 0 };
  for (const [file, s] of Object.entries(summary)) {
    if (file === 'total') continue;
    const folder = folderOf(file);
    if (!folder) continue;
    const f = folders.get(folder) ?? { lines: { total: 0, covered: 0 }, branches: { total: 0, covered: 0 }, files: 0 };
    for (const acc of [f, all]) {
      acc.lines.total += s.lines.total; acc.lines.covered += s.lines.covered;
      acc.branches.total += s.branches.total; acc.branches.covered += s.branches.covered;
      acc.files += 1;
    }
    folders.set(folder, f);
  }
  const width = Math.max(12, ...[...folders.keys()].map((k) => k.length));
  console.log(`coverage of src/ (tap, V8; ${files} process${files === 1 ? '' : 'es'}${unreadable ? `, ${unreadable} unreadable` : ''}; files no test loaded are not listed)`);
  console.log(`${'folder'.padEnd(width)}  files  ${'lines'.padEnd(18)}  branches`);
  for (const [name, f] of [...folders.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`${name.padEnd(width)}  ${String(f.files).padStart(5)}  ${cell(f.lines)}  ${cell(f.branches)}`);
  }
  console.log(`${'src/ total'.padEnd(width)}  ${String(all.files).padStart(5)}  ${cell(all.lines)}  ${cell(all.branches)}`);
  console.log(`(per file: npx tap report text; as a page: npx tap report html --no-browser)`);
}

main();
