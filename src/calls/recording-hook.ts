import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { Recordings } from '../recordings/recordings.js';
import type { CallPayouts } from '../payouts/call-payouts.js';
import type { Call } from './call.js';

/**
 * Recording and payouts as subscribers of a call's events, not steps inside the switchboard: subscribe
 * the returned function to the switchboard's `call` event. When a call is `answered` and its owner is
 * enrolled and has consented (DESIGN §4.1), only the owner's own leg is forked; a call that cannot be
 * recorded goes on, and says why. A recorded call is settled once its recording has finished and its
 * record holds the hangup time (server clock, §4.6).
 */
export function recordAnsweredCalls(deps: { recordings?: Recordings; payouts?: CallPayouts; log: Logger }): (call: Call) => void {
  const log = deps.log.child({ mod: 'recording-hook' });
  return (call) => {
    const recordings = deps.recordings;
    if (!recordings) return;
    call.once('answered', () => {
      const owner = call.owner;
      if (!owner?.enrolled) return;
      if (!owner.consent) {
        call.record({ recordingNote: 'no-consent' });
        return;
      }
      void recordings
        .begin(call, {
          started: () => call.channel.recordingStarted(call.id),
          stopped: (reason) => {
            call.channel.recordingStopped(call.id, reason);
            if (reason !== 'call-ended') call.record({ recordingNote: reason });
          },
          finished: (talkMs) => void pay(call, talkMs),
        })
        .then((recording) => recording && call.attachRecording(recording));
    });
  };

  async function pay(call: Call, talkMs: number): Promise<void> {
    const payouts = deps.payouts;
    if (!payouts) return;
    try {
      await call.flushed();
      const result = await payouts.settleCall({ callId: call.id, userId: call.userId, talkMs });
      if (result) call.channel.earningsUpdated(call.id, result.amountMicros, result.state);
    } catch (err) {
      log.error({ callId: call.id, err: errorMessage(err) }, 'settlement failed; the call can be settled again later');
    }
  }
}
