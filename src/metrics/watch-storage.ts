import { objectKeys } from '../recordings/catalog.js';
import type { Spool } from '../storage/spool.js';
import type { Metrics } from './metrics.js';

/** The spool, watched through its `uploaded` and `failed` events; its depth and age are read at scrape. */
export function watchSpool(metrics: Metrics, spool: Spool, now: () => number = Date.now): void {
  metrics.readFrom({
    spoolDepth: () => spool.pending,
    spoolOldestAgeSeconds: () => {
      const since = spool.oldestPendingSince;
      return since === undefined ? 0 : Math.max(0, now() - since) / 1000;
    },
  });
  spool.on('uploaded', (key) => {
    if (objectKeys.isChunk(key)) metrics.chunksUploaded.inc();
  });
  spool.on('failed', (key) => {
    if (objectKeys.isChunk(key)) metrics.chunkUploadRetries.inc();
  });
}
