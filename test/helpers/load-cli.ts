/**
 * Runs the built load script (`dist/scripts/load/cli.js`, so `npm run build` first) as the operator
 * would, and parses its one JSON line.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/load.js';
import type { Report } from '../../scripts/load/report.js';

export interface LoadRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last stdout line as JSON (undefined when there is none). */
  report: Report | undefined;
}

export function runLoad(args: string[], timeoutMs = 55_000): Promise<LoadRun> {
  const child = spawn(process.execPath, [join(packageRoot(), 'dist', 'scripts', 'load', 'cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').at(-1);
      let report: Report | undefined;
      try {
        report = last ? (JSON.parse(last) as Report) : undefined;
      } catch {
        report = undefined;
      }
      resolve({ code, stdout, stderr, report });
    });
  });
}
