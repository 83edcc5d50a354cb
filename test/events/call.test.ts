import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWrtcRig } from '../helpers/wrtc-rig.js';
import { Receiver } from './receiver.js';

/**
 * The call-side events from a real call (libwebrtc dialer → service → rtpengine → sipp trunk, recorded,
 * settled): `call.ended`, `recording.completed` and `earnings.updated`, each verified by the receiver with
 * standardwebhooks, all naming the same call, none carrying a phone number.
 */
test('a real recorded call produces call.ended, recording.completed and earnings.updated, signed', { timeout: 90_000 }, async () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const receiver = new Receiver(secret);
  await receiver.open();
  const rig = await startWrtcRig({ payouts: { minBillableSeconds: 1 }, events: { url: receiver.url, secret, pollMs: 50, minBackoffMs: 100, maxBackoffMs: 1000 } });
  try {
    const { dialer, userId } = await rig.dialer('+15557771111');
    const callId = await rig.call(dialer, '+15557772222');
    // Talk for a moment so the call earns and the recording has chunks.
    await new Promise((r) => setTimeout(r, 2500));
    await rig.hangup(dialer, callId);
    const of = (type: string) => receiver.deliveries.map((d) => JSON.parse(d.body) as { type: string; data: Record<string, unknown> }).filter((b) => b.type === type && b.data.callId === callId);
    await receiver.until(() => ['call.ended', 'recording.completed', 'earnings.updated'].every((t) => of(t).length > 0), 20_000, 'the three call events');
    assert.equal(receiver.rejected, 0);
    const ended = of('call.ended')[0]?.data;
    assert.equal(ended?.userId, userId);
    assert.equal(ended?.answered, true);
    assert.ok(Number(ended?.durationMs) >= 2000, JSON.stringify(ended));
    const rec = of('recording.completed')[0]?.data;
    assert.equal(rec?.state, 'complete');
    assert.ok(Number(rec?.chunkCount) >= 1);
    const earned = of('earnings.updated')[0]?.data;
    assert.equal(earned?.userId, userId);
    assert.ok(Number(earned?.amountMicros) > 0, JSON.stringify(earned));
    for (const d of receiver.deliveries) assert.doesNotMatch(d.body, /\+1555|7771111|7772222/);
  } finally {
    await rig.close();
    await receiver.close();
  }
});
