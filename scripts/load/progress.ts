/**
 * The live line: a cli-progress bar on a terminal (stderr), a plain line every few seconds otherwise (logs,
 * CI). stdout is kept for the final JSON line alone.
 */
import cliProgress from 'cli-progress';

export interface ProgressState {
  /** Work done towards `total` (calls placed, or seconds for time-bound runs). */
  done: number;
  total: number;
  live: number;
  answered: number;
  failed: number;
  setupP95: number | null;
  /** % of one core since the previous state. */
  serviceCpu: number | null;
  rtpengineCpu: number | null;
}

export interface Progress {
  stop(): void;
}

const PLAIN_EVERY_MS = 5000;

/** Calls `read` every second and shows what it returns until stop(). */
export function startProgress(scenario: string, read: () => Promise<ProgressState>, stream: NodeJS.WriteStream = process.stderr): Progress {
  const show = (n: number | null, unit = ''): string => (n === null ? '-' : `${Math.round(n * 10) / 10}${unit}`);
  const payload = (s: ProgressState) => ({ live: s.live, answered: s.answered, failed: s.failed, p95: show(s.setupP95, ' ms'), svc: show(s.serviceCpu, '%'), rtp: show(s.rtpengineCpu, '%') });
  let bar: cliProgress.SingleBar | undefined;
  if (stream.isTTY) {
    bar = new cliProgress.SingleBar(
      { stream, format: `${scenario} {bar} {value}/{total} | up {live} | answered {answered} | failed {failed} | setup p95 {p95} | CPU service {svc} rtpengine {rtp}`, hideCursor: true, fps: 4 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0, payload({ done: 0, total: 1, live: 0, answered: 0, failed: 0, setupP95: null, serviceCpu: null, rtpengineCpu: null }));
  }
  let lastPlain = performance.now();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void read()
      .then((s) => {
        if (bar) {
          bar.setTotal(s.total);
          bar.update(s.done, payload(s));
        } else if (performance.now() - lastPlain >= PLAIN_EVERY_MS) {
          lastPlain = performance.now();
          const p = payload(s);
          stream.write(`${scenario}: ${s.done}/${s.total}, up ${p.live}, answered ${p.answered}, failed ${p.failed}, setup p95 ${p.p95}, CPU service ${p.svc} rtpengine ${p.rtp}\n`);
        }
      })
      .catch(() => undefined) // a progress read never stops the run
      .finally(() => (busy = false));
  }, 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      bar?.stop();
    },
  };
}
