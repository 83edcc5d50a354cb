/**
 * Early media, end to end with Chromium: the trunk's 183 carries SDP for one RTP peer (600 Hz, the
 * carrier's announcement), its 200 several seconds later another SDP (1,000 Hz, on 127.0.0.2). The
 * browser hears 600 Hz before the answer and 1,000 Hz after it without renegotiating; the call counts
 * as answered, and is recorded, only from the 200 (DESIGN §4.6: server time pays).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowserRig, type BrowserRig } from '../helpers/browser-rig.js';
import { startSipp } from '../helpers/sipp.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { DialerDriver } from '../helpers/browser.js';
import { logServerMessages } from '../helpers/ws-log.js';
import { waitForRecording } from '../helpers/recording.js';

const EARLY_MS = 7000;
let rig: BrowserRig;

before(async () => {
  rig = await startBrowserRig({ recording: { chunkSeconds: 2 } });
});

after(async () => {
  await rig?.close();
});

test('183 with SDP: 600 Hz before the answer, 1,000 Hz from another address after it; recorded and answered from the 200 only', async () => {
  const { service, browser, sippPort } = rig;
  const user = await service.users.create({ phone: '+15550001121', enrolled: true, consentVersion: 'v1' });
  const { token } = await service.tokens.issue(user.id, 3_600_000);
  const early = await createRtpPeer({ tone: 600, host: '127.0.0.1' });
  const final = await createRtpPeer({ tone: 1000, host: '127.0.0.2' });
  const sipp = startSipp({
    scenario: 'uas-early-handover',
    port: sippPort,
    remote: `127.0.0.1:${service.sipPort}`,
    keys: { early_rtp_ip: '127.0.0.1', early_rtp_port: String(early.port), rtp_ip: '127.0.0.2', rtp_port: String(final.port), answer_after: String(EARLY_MS) },
    timeoutMs: 45_000,
  });
  const dialer = await DialerDriver.open(browser, service.url);
  const log = logServerMessages(dialer.page);
  try {
    // Symmetric RTP: each peer answers whatever rtpengine sends it from.
    early.start();
    final.start();
    await sipp.ready;
    await dialer.connect(token);
    await dialer.call('+15550002222');

    const progress = await log.next('call.progress');
    await dialer.page.waitForSelector('#state[data-state="ringing"]:has-text("early media")', { timeout: 10_000 });
    await early.waitForPackets(25, 10_000); // the browser's audio reaches the carrier before answer too
    const before200 = await dialer.measureRemoteTone([600, 1000], 1500);
    assert.ok(!log.messages.some((m) => m.msg.type === 'call.answered'), 'the early-media window was measured before the 200');
    assert.ok(before200[600]! - before200[1000]! >= 15, `before the 200: 600 Hz ${before200[600]!.toFixed(1)} dB vs 1000 Hz ${before200[1000]!.toFixed(1)} dB`);
    assert.equal(await dialer.state(), 'ringing');

    const answered = await log.next('call.answered', EARLY_MS + 10_000);
    assert.ok(answered.at - progress.at >= EARLY_MS - 1500, `answered ${answered.at - progress.at} ms after the early media`);
    const a = answered.msg as { sdp: string };
    assert.equal(a.sdp, (progress.msg as { sdp: string }).sdp, 'the 200 confirms the answer the browser already has');
    await dialer.waitState('active', 10_000);
    await final.waitForPackets(25, 10_000);
    const after200 = await dialer.measureRemoteTone([600, 1000], 1500);
    assert.ok(after200[1000]! - after200[600]! >= 15, `after the 200: 1000 Hz ${after200[1000]!.toFixed(1)} dB vs 600 Hz ${after200[600]!.toFixed(1)} dB`);
    assert.ok(final.measure(440, 1000) >= 20, 'the answering peer hears the user');
    const earlyBefore = early.received.length;
    const started = await log.next('recording.started', 10_000);
    assert.ok(started.at >= answered.at, 'recording starts only after the answer');
    assert.ok(log.messages.indexOf(started) > log.messages.indexOf(answered), 'recording.started follows call.answered on the wire');

    await final.waitForPackets(final.received.length + 100, 10_000); // 2 s more of talk after answer
    assert.ok(early.received.length - earlyBefore <= 5, `the early-media peer got ${early.received.length - earlyBefore} packets after the 200`);
    const callId = (await dialer.callId())!;
    const hangupAt = Date.now();
    await dialer.hangup();
    await dialer.waitState('ended', 10_000);
    const result = await sipp.done;
    assert.equal(result.successful, 1, result.errors);

    const record = await service.records.get(user.id, callId);
    assert.ok(record?.answeredAt, 'the call was answered');
    assert.ok(record.answeredAt - record.createdAt >= EARLY_MS - 1000, `answeredAt is the 200's time: ${record.answeredAt - record.createdAt} ms after the start`);
    const row = await waitForRecording(service, callId);
    const sinceAnswer = hangupAt - answered.at;
    assert.ok(row.durationMs <= sinceAnswer + 1500, `recording ${row.durationMs} ms, answer to hangup ${sinceAnswer} ms: no early media in it`);
    assert.ok(row.durationMs >= 1500, `recording ${row.durationMs} ms`);
    console.log(`early media: answered ${answered.at - progress.at} ms after call.progress; recording ${row.durationMs} ms for ${sinceAnswer} ms answered`);
  } finally {
    sipp.kill();
    await dialer.close();
    await early.close();
    await final.close();
  }
});
