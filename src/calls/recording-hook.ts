import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import type { Users } from '../accounts/users.js';
import type { Recording, Recordings } from '../recordings/recordings.js';
import type { CallPayouts } from '../payouts/call-payouts.js';
import type { Call } from './call.js';
import type { CounterpartAction } from '../recordings/consent-policy.js';
import type { RecordingStopReason } from './ports.js';

/**
 * Recording and payouts as subscribers of a call's events, not steps inside the switchboard: subscribe
 * the returned function to the switchboard's `call` event. When a call is `answered` and its owner is
 * enrolled and has consented (DESIGN §4.1), only the owner's own leg is forked; a call that cannot be
 * recorded goes on, and says why. A recorded call is settled once its recording has finished and its
 * record holds the hangup time (server clock, §4.6).
 *
 * Consent is read from the database at answer time, not taken from when the call started: a withdrawal
 * made while the call rang (through the API, or the CLI in another process) keeps it unrecorded. One
 * made through the API once the recording runs stops it (`Call.stopRecording`, `consent-revoked`).
 */
export interface ConsentPolicy {
  /** The current version of the consent text: a user who accepted another one is not recorded (`consent-outdated`). */
  version: string;
  /** What the counterpart's number asks for (`recording.counterpartPolicy`). */
  counterpart(counterpart: string): CounterpartAction;
  /** The prompt played to the counterpart for `announce` (a file rtpengine reads). */
  announceFile: string;
}

export function recordAnsweredCalls(deps: { recordings?: Recordings; payouts?: CallPayouts; users: Users; log: Logger; policy?: ConsentPolicy }): (call: Call) => void {
  const log = deps.log.child({ mod: 'recording-hook' });
  return (call) => {
    const recordings = deps.recordings;
    if (!recordings) return;
    call.once('answered', () => {
      if (!call.owner?.enrolled) return;
      // Handed to the call before the first await, so a withdrawal or a hangup meanwhile reaches it.
      call.attachRecording(start(recordings, call));
    });
  };

  async function start(recordings: Recordings, call: Call): Promise<Recording | undefined> {
    const owner = await deps.users.byId(call.userId).catch((err: unknown) => {
      log.error({ callId: call.id, err: errorMessage(err) }, 'owner lookup failed at answer: the call goes on unrecorded');
      return undefined;
    });
    if (call.closed) return undefined;
    if (!owner?.enrolled || !owner.consent || call.recordingWithdrawn) {
      if (owner?.enrolled) call.record({ recordingNote: call.recordingWithdrawn ? 'consent-revoked' : 'no-consent' });
      else if (!owner) call.record({ recordingNote: 'failed' });
      return undefined;
    }
    const policy = deps.policy;
    // Not recorded, and the dialer hears why: its page can ask for the current consent, the counterpart's rule is the deployment's.
    const refuse = (reason: RecordingStopReason): undefined => {
      call.record({ recordingNote: reason });
      call.channel.recordingStopped(call.id, reason);
      return undefined;
    };
    if (policy && owner.consent.version !== policy.version) return refuse('consent-outdated');
    const action = policy ? policy.counterpart(call.counterpart) : 'record';
    if (action === 'skip') return refuse('policy');
    if (action === 'announce' && policy) {
      try {
        // The recording starts once the counterpart has heard the prompt.
        await call.media.announceToTrunk(policy.announceFile);
      } catch (err) {
        // Without the announcement the policy forbids recording this counterpart.
        log.error({ callId: call.id, err: errorMessage(err) }, 'the consent announcement could not be played: the call goes on unrecorded');
        if (call.closed) return undefined;
        return refuse('failed');
      }
      if (call.closed) return undefined;
      // Withdrawn while the prompt played: nothing was recorded, say so as for a withdrawal while ringing.
      if (call.recordingWithdrawn) {
        call.record({ recordingNote: 'consent-revoked' });
        return undefined;
      }
    }
    return recordings.begin(call, {
      started: () => call.channel.recordingStarted(call.id),
      stopped: (reason) => {
        call.channel.recordingStopped(call.id, reason);
        if (reason !== 'call-ended') call.record({ recordingNote: reason });
      },
      finished: (talkMs, pausedMs) => void pay(call, talkMs, pausedMs),
    });
  }

  async function pay(call: Call, talkMs: number, pausedMs: number): Promise<void> {
    const payouts = deps.payouts;
    if (!payouts) return;
    try {
      // A recording stopped by a withdrawal finishes while the call goes on: settle at the hangup, when
      // the record holds it. Talk time is what was recorded, so mostly unrecorded calls are held as silent.
      if (!call.closed) await new Promise<void>((resolve) => call.once('ended', () => resolve()));
      await call.flushed();
      const result = await payouts.settleCall({ callId: call.id, userId: call.userId, talkMs, pausedMs });
      if (result) call.channel.earningsUpdated(call.id, result.amountMicros, result.state);
    } catch (err) {
      log.error({ callId: call.id, err: errorMessage(err) }, 'settlement failed; the call can be settled again later');
    }
  }
}
