import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { startSipp, freePort, type SippRun } from '../helpers/sipp.js';
import { startWrtcRig } from '../helpers/wrtc-rig.js';
import { waitForRecording } from '../helpers/recording.js';
import { until } from '../helpers/until.js';
import { scrape, type Scrape } from '../helpers/metrics.js';

/**
 * Metrics move with a real recorded call: libwebrtc dialer → service → rtpengine (Opus⇄PCMU) → sipp trunk,
 * the user's leg forked to the recorder, chunks sealed, spooled and stored, the call paid.
 */
test('a recorded outbound call moves the call, rtpengine, recorder, chunk, spool and ledger metrics', { timeout: 120_000 }, async () => {
  const rig = await startWrtcRig({ payouts: { minBillableSeconds: 1 } });
  const url = rig.service.metricsUrl;
  const m = () => scrape(url);
  try {
    const { dialer } = await rig.dialer('+15550001111');
    const before = await m();
    assert.equal(before.value('monologue_calls_live'), 0);

    // A refused start: a Call existed for a moment and its setup failed, with the refusal's code.
    await assert.rejects(dialer.call('+447700900123'), /DESTINATION_NOT_ALLOWED/);
    await until('the refused call is released', async () => (await m()).value('monologue_calls_live') === 0, 5000);

    const started = performance.now();
    const callId = await rig.call(dialer);
    const setupMs = performance.now() - started; // sipp's start included: an upper bound
    await until('the recording is running', async () => (await m()).value('monologue_recordings_live') === 1, 10_000);
    const during = await m();
    assert.equal(during.value('monologue_calls_live'), 1);
    assert.equal(during.value('monologue_recordings_started_total'), 1);
    assert.equal(during.value('monologue_call_setups_total', { direction: 'outbound', result: 'answered' }), 1);
    // Live recorders count too: packets arrive while the call runs (50 a second).
    await until('live packets counted', async () => (await m()).value('monologue_recorder_packets_received_total') >= 50, 10_000);

    await new Promise((r) => setTimeout(r, 2500));
    await rig.hangup(dialer, callId);
    const row = await waitForRecording(rig.service, callId);
    assert.equal(row.state, 'complete');
    await rig.service.spool.drain(20_000);
    let after: Scrape | undefined;
    await until('the call is released and paid', async () => {
      after = await m();
      return after.value('monologue_calls_live') === 0 && after.value('monologue_ledger_credits_total') === 1;
    }, 15_000);
    const a = after!;

    // Calls: one answered, one failed (the refused one), each ended once with its reason.
    assert.equal(a.value('monologue_call_setups_total', { direction: 'outbound', result: 'answered' }), 1);
    assert.equal(a.value('monologue_call_setups_total', { direction: 'outbound', result: 'failed' }), 1);
    assert.equal(a.value('monologue_call_setups_total', { direction: 'inbound' }), 0);
    assert.equal(a.value('monologue_call_ends_total', { reason: 'local-hangup' }), 1);
    assert.equal(a.value('monologue_call_ends_total', { reason: 'failed' }), 1);
    assert.equal(a.value('monologue_call_ends_total'), 2);
    assert.equal(a.value('monologue_call_refusals_total', { code: 'DESTINATION_NOT_ALLOWED' }), 1);

    // Setup latency: one answered call, inside the time measured around placing it.
    assert.equal(a.value('monologue_call_setup_seconds_count', { direction: 'outbound' }), 1);
    const setupS = a.value('monologue_call_setup_seconds_sum', { direction: 'outbound' });
    assert.ok(setupS > 0 && setupS * 1000 <= setupMs + 1, `server ${setupS * 1000} ms within the dialer's ${setupMs} ms`);
    assert.equal(a.value('monologue_call_setup_seconds_bucket', { direction: 'outbound', le: '+Inf' }), 1);

    // rtpengine: every command of a recorded call was timed, none failed; its own CPU is read.
    for (const command of ['offer', 'answer', 'subscribe request', 'subscribe answer', 'delete']) {
      assert.ok(a.value('monologue_rtpengine_ng_seconds_count', { command }) >= 1, `ng ${command} timed`);
    }
    assert.equal(a.value('monologue_rtpengine_ng_errors_total'), 0);
    assert.ok(a.value('monologue_rtpengine_cpu_seconds_total') > 0, 'rtpengine transcoded: it spent CPU');

    // Recorder: the finished recording's packets stay counted; ~3.5 s at 50 packets/s, none foreign.
    assert.equal(a.value('monologue_recordings_live'), 0);
    assert.equal(a.value('monologue_recordings_ended_total', { state: 'complete' }), 1);
    assert.equal(a.value('monologue_recordings_ended_total'), 1);
    const received = a.value('monologue_recorder_packets_received_total');
    assert.ok(received >= 120 && received <= 400, `packets received: ${received}`);
    assert.ok(a.value('monologue_recorder_packets_lost_total') <= received * 0.05, 'loss on loopback is small');
    assert.equal(a.value('monologue_recorder_foreign_dropped_total'), 0);

    // Chunks: as many sealed, spooled and uploaded as the recording has; the spool is empty again.
    assert.ok(row.chunkCount >= 2, `chunks: ${row.chunkCount}`);
    assert.equal(a.value('monologue_chunks_sealed_total'), row.chunkCount);
    assert.equal(a.value('monologue_chunks_spooled_total'), row.chunkCount);
    assert.equal(a.value('monologue_chunks_uploaded_total'), row.chunkCount);
    assert.equal(a.value('monologue_chunk_upload_retries_total'), 0);
    assert.equal(a.value('monologue_spool_depth'), 0);
    assert.equal(a.value('monologue_spool_oldest_age_seconds'), 0);

    // Counters only go up: the next scrape still holds the finished call.
    assert.equal((await m()).value('monologue_recorder_packets_received_total'), received);
  } finally {
    await rig.close();
  }
});

test('inbound calls: an answered one is timed from its INVITE; a rejected one is a failed setup', { timeout: 120_000 }, async () => {
  const rig = await startWrtcRig({});
  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const uac = async (scenario: string, pauseMs: number) =>
    startSipp({ scenario, port: await freePort(), remote: `127.0.0.1:${rig.service.sipPort}`, service: '+15550001111', pauseMs, keys: { rtp_port: String(sink.address().port), caller: '+15550002222' }, timeoutMs: 30_000 });
  const sipps: SippRun[] = [];
  try {
    const { dialer } = await rig.dialer('+15550001111');

    const rejected = await uac('uac-reject', 1000);
    sipps.push(rejected);
    const ringing = await dialer.waitIncoming(10_000);
    dialer.reject(ringing.callId);
    await rejected.done;

    const answered = await uac('uac-call', 1500);
    sipps.push(answered);
    const incoming = await dialer.waitIncoming(10_000);
    const call = await dialer.accept(incoming.callId);
    assert.equal(await call.ended, 'remote-hangup');
    assert.equal((await answered.done).code, 0);

    let a: Scrape | undefined;
    await until('both calls released', async () => {
      a = await scrape(rig.service.metricsUrl);
      return a.value('monologue_calls_live') === 0 && a.value('monologue_call_ends_total') === 2;
    }, 10_000);
    const m = a!;
    assert.equal(m.value('monologue_call_setups_total', { direction: 'inbound', result: 'answered' }), 1);
    assert.equal(m.value('monologue_call_setups_total', { direction: 'inbound', result: 'failed' }), 1);
    assert.equal(m.value('monologue_call_setups_total', { direction: 'outbound' }), 0);
    assert.equal(m.value('monologue_call_ends_total', { reason: 'remote-hangup' }), 1);
    assert.equal(m.value('monologue_call_ends_total', { reason: 'rejected' }), 1);
    assert.equal(m.value('monologue_call_setup_seconds_count', { direction: 'inbound' }), 1);
    assert.equal(m.value('monologue_call_setup_seconds_count', { direction: 'outbound' }), 0);
    // From the INVITE, through ringing, to the person's answer and the trunk's ACK: more than nothing, less than the test.
    const setupS = m.value('monologue_call_setup_seconds_sum', { direction: 'inbound' });
    assert.ok(setupS > 0 && setupS < 10, `inbound setup ${setupS} s`);
    assert.equal(m.value('monologue_recordings_started_total'), 1);
  } finally {
    for (const s of sipps) s.kill();
    sink.close();
    await rig.close();
  }
});
