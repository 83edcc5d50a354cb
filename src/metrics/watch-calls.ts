import { performance } from 'node:perf_hooks';
import type { Switchboard } from '../calls/switchboard.js';
import type { Call } from '../calls/call.js';
import type { Metrics } from './metrics.js';

/**
 * Calls, watched through the switchboard's `call` event and each call's own `answered` and `ended`
 * (DESIGN §7): the router never calls into metrics. A call's setup starts when it exists — the
 * `call.start` (outbound) or the INVITE (inbound) — and ends at `answered` (media through) or at `ended`.
 */
export function watchCalls(metrics: Metrics, switchboard: Switchboard): void {
  metrics.readFrom({ callsLive: () => switchboard.liveCalls, callRefusals: () => switchboard.refusedStarts });
  switchboard.on('call', (call: Call) => {
    const direction = call.direction;
    const opened = performance.now();
    let answered = false;
    call.once('answered', () => {
      answered = true;
      metrics.callSetupSeconds.observe({ direction }, (performance.now() - opened) / 1000);
      metrics.callSetups.inc({ direction, result: 'answered' });
    });
    call.once('ended', (reason) => {
      if (!answered) metrics.callSetups.inc({ direction, result: 'failed' });
      metrics.callEnds.inc({ reason });
    });
  });
}
