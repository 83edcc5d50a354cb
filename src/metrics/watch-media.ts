import { readFileSync } from 'node:fs';
import { Counter } from 'prom-client';
import type { NgClient, RtpengineProcess } from '../media/index.js';
import { METRIC, type Metrics } from './metrics.js';

/**
 * rtpengine ng requests, watched through the client's observer: latency by command, and failures
 * (refused or unanswered). A request cut short by our own shutdown (`MEDIA_CLOSED`) is no rtpengine fault.
 */
export function watchNg(metrics: Metrics, ng: NgClient): void {
  ng.observer.on('done', ({ command, seconds, error }) => {
    metrics.ngSeconds.observe({ command }, seconds);
    if (error !== undefined && error !== 'MEDIA_CLOSED') metrics.ngErrors.inc({ command });
  });
}

/**
 * The supervised rtpengine's CPU time, read at scrape from /proc/<pid>/stat (utime + stime: all its threads,
 * not its children). It starts again from 0 when rtpengine is restarted, as a counter may; while no child
 * runs it keeps the last value read.
 */
export function watchRtpengineCpu(metrics: Metrics, rtpengine: RtpengineProcess): void {
  let last = 0;
  new Counter({
    name: METRIC.rtpengineCpu,
    help: 'CPU seconds (user + system, all threads, not children) of the supervised rtpengine process.',
    registers: [metrics.registry],
    collect() {
      const pid = rtpengine.pid;
      if (pid !== undefined) last = processCpuSeconds(pid) ?? last;
      this.reset();
      this.inc(last);
    },
  });
}

/** Linux reports utime and stime in clock ticks of USER_HZ, which is 100 on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

/** utime + stime of one process (fields 14 and 15 of /proc/<pid>/stat), in seconds; undefined when unreadable. */
export function processCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between the pid check and the read, or not Linux
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_SECOND : undefined;
}
