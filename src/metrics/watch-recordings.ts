import type { Recorder, RecorderSummary } from '../recorder/recorder.js';
import type { Recordings } from '../recordings/recordings.js';
import type { Metrics, RecorderTotals } from './metrics.js';

/**
 * Recordings, watched through their observer. Packet counters are never moved per packet: the recorders
 * already count them (RtpIntake stats), so a scrape sums the live recorders' counters and adds the totals
 * of the finished ones, kept here when each ends.
 */
export function watchRecordings(metrics: Metrics, recordings: Recordings): void {
  const live = new Set<Recorder>();
  const finished: RecorderTotals = { received: 0, lost: 0, late: 0, gaps: 0, foreignDropped: 0 };
  metrics.readFrom({
    recordingsLive: () => live.size,
    recorder: () => {
      const sum = { ...finished };
      for (const r of live) add(sum, r.summary());
      return sum;
    },
  });
  const o = recordings.observer;
  o.on('started', (recorder) => {
    live.add(recorder);
    metrics.recordingsStarted.inc();
  });
  o.on('ended', (recorder, state) => {
    // The recorder is stopped: its summary is final, and moves from the live sum to the finished one at once.
    if (live.delete(recorder)) add(finished, recorder.summary());
    metrics.recordingsEnded.inc({ state });
  });
  o.on('notStarted', () => metrics.recordingsEnded.inc({ state: 'not-started' }));
  o.on('chunkSealed', () => metrics.chunksSealed.inc());
  o.on('chunkSpooled', () => metrics.chunksSpooled.inc());
}

function add(sum: RecorderTotals, s: RecorderSummary): void {
  sum.received += s.received;
  sum.lost += s.lost;
  sum.late += s.late;
  sum.gaps += s.gaps;
  sum.foreignDropped += s.foreignSource + s.foreignSsrc;
}
