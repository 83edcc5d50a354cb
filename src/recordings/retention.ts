import type { Db } from '../db/database.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { Shredder } from './shred.js';

const DAY_MS = 86_400_000;
/** Recordings shredded per query round; rounds repeat until none is left. */
const BATCH = 500;

export interface RetentionOptions {
  /** `recording.retentionDays`: recordings created more than this many days ago are shredded; 0 keeps them. */
  retentionDays: number;
  /** `recording.retentionSweepMinutes`: how often the sweeper runs. */
  sweepMinutes: number;
}

export interface SweepReport {
  /** Recordings shredded by age in this sweep. */
  shredded: number;
  /** Owed object removals of earlier shreds that succeeded now / failed again. */
  purged: number;
  purgeFailed: number;
  /** The age cutoff applied (ISO), or null when retention is off (retentionDays 0). */
  cutoff: string | null;
}

export interface Retention {
  /** Run a sweep now (after any sweep in progress): for tests, the CLI and operators. */
  sweep(): Promise<SweepReport>;
  /** Sweep every `sweepMinutes`, starting now. */
  start(): void;
  /** Stop the timer and wait for a sweep in progress. */
  close(): Promise<void>;
}

/**
 * The retention sweeper (issue 9 item 8): shreds recordings older than `retentionDays` by the server
 * clock, each audited `recording.retention-shred` by `system:retention`, and retries the object removal
 * owed by earlier shreds (store down at the time, or shredded while live). The removal retry runs even
 * with retention off: a user's delete must still reach the store.
 */
export function createRetention(deps: { db: Db; shredder: Shredder; log: Logger; now: () => number }, opts: RetentionOptions): Retention {
  const log = deps.log.child({ mod: 'retention' });
  let chain: Promise<unknown> = Promise.resolve();
  let running = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const run = async (): Promise<SweepReport> => {
    const report: SweepReport = { shredded: 0, purged: 0, purgeFailed: 0, cutoff: null };
    if (opts.retentionDays > 0) {
      const cutoff = deps.now() - opts.retentionDays * DAY_MS;
      report.cutoff = new Date(cutoff).toISOString();
      for (;;) {
        const rows = await deps.db
          .selectFrom('recordings')
          .select('id')
          .where('created_at', '<', cutoff)
          .where('state', 'in', ['complete', 'incomplete', 'failed'])
          .orderBy('created_at')
          .limit(BATCH)
          .execute();
        let round = 0;
        // One at a time: each is its own statement and audit entry, and a concurrent delete of the same
        // recording simply wins (expired() then reports false).
        for (const { id } of rows) if (await deps.shredder.expired(id, cutoff)) round++;
        report.shredded += round;
        if (rows.length < BATCH || round === 0) break;
      }
    }
    const owed = await deps.shredder.purgeOwed();
    report.purged = owed.purged;
    report.purgeFailed = owed.failed;
    if (report.shredded > 0 || report.purged > 0 || report.purgeFailed > 0) log.info(report, 'retention sweep');
    return report;
  };

  const sweep = (): Promise<SweepReport> => {
    running++;
    const p = chain.then(run);
    chain = p.catch(() => undefined).finally(() => running--);
    return p;
  };

  return {
    sweep,
    start() {
      if (timer || closed) return;
      const tick = () => {
        // A timer sweep never queues behind another one: the next tick comes soon enough.
        if (running > 0 || closed) return;
        sweep().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'retention sweep failed; retrying at the next interval'));
      };
      timer = setInterval(tick, opts.sweepMinutes * 60_000);
      timer.unref();
      // At start too: a node that was down past a cutoff catches up now, not an interval later.
      setImmediate(tick).unref();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await chain;
    },
  };
}
