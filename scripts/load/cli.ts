#!/usr/bin/env node
/**
 * monologue-load <calls|cps|soak> [options]: load scenarios against a Monologue deployment, started here
 * (local mode, the default) or already running (`--target URL`). A live line on stderr; one JSON line on
 * stdout at the end. Options: options.ts (USAGE) and docs/load-testing.md.
 */
import { runCliMain } from '../../src/cli-main.js';
import type { Deployment } from './deployment.js';
import { startHarness, type Harness } from './harness.js';
import { startLocalDeployment } from './local-deployment.js';
import { job, parse, USAGE, type Job } from './options.js';
import { emit, type Report } from './report.js';
import { targetDeployment } from './target.js';

async function run(j: Job, abort: AbortSignal): Promise<Report> {
  // Live calls the deployment must hold, trunk calls sipp takes, and how long sipp may live at most.
  const sizing =
    j.scenario === 'cps'
      ? { concurrency: Math.max(j.options.sockets, Math.ceil((j.options.rate ?? 0) / 2)), maxCalls: 10_000_000, maxS: j.options.durationS + 120 }
      : j.scenario === 'soak'
        ? { concurrency: j.options.calls, maxCalls: 10_000_000, maxS: j.options.durationS + 300 }
        : { concurrency: j.options.calls, maxCalls: j.options.calls, maxS: j.options.calls / j.options.rate + j.options.holdS + 300 };
  const deployment: Deployment = j.where.mode === 'local' ? await startLocalDeployment({ ...j.where.local, concurrency: sizing.concurrency }) : targetDeployment(j.where.target);
  try {
    const h = await startHarness(deployment, { maxCalls: sizing.maxCalls, maxMs: sizing.maxS * 1000 }, abort);
    try {
      const report = await scenario(j, h);
      return deployment.profileDir ? { ...report, profileDir: deployment.profileDir } : report;
    } finally {
      await h.trunk.close();
    }
  } finally {
    await deployment.close();
    if (deployment.profileDir) process.stderr.write(`CPU profile of the service: ${deployment.profileDir}\n`);
  }
}

async function scenario(j: Job, h: Harness): Promise<Report> {
  if (j.scenario === 'cps') return (await import('./cps.js')).runCps(h, j.options);
  if (j.scenario === 'soak') return (await import('./soak.js')).runSoak(h, j.options);
  return (await import('./calls.js')).runCalls(h, j.options);
}

async function main(argv: string[]): Promise<number> {
  const plan = parse(argv);
  if (plan === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const j = job(plan); // every option checked before anything starts
  // First Ctrl-C: stop placing calls, hang up, report. Second: leave now (exit hooks kill the children).
  const abort = new AbortController();
  process.on('SIGINT', () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('\ninterrupted: hanging up and reporting (Ctrl-C again to quit at once)\n');
    abort.abort();
  });
  emit(await run(j, abort.signal));
  return abort.signal.aborted ? 130 : 0;
}

runCliMain(main);
