import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { startWrtcRig } from '../helpers/wrtc-rig.js';
import type { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { startSipp, freePort } from '../helpers/sipp.js';
import { decryptAndDecode } from '../helpers/recording.js';
import { until } from '../helpers/until.js';
import { isDict, legCounters } from '../../src/media/index.js';
import { objectKeys } from '../../src/recordings/catalog.js';
import type { TestService } from '../helpers/service.js';

const CHUNK_SECONDS = 2;

/** When each server message reached the dialer (performance.now()), by type and call. */
function stampMessages(dialer: WrtcDialer): Array<{ type: string; callId?: string; reason?: string; at: number }> {
  const stamps: Array<{ type: string; callId?: string; reason?: string; at: number }> = [];
  const push = dialer.messages.push.bind(dialer.messages);
  dialer.messages.push = (...msgs) => {
    for (const m of msgs) stamps.push({ type: m.type, at: performance.now(), ...('callId' in m && { callId: m.callId }), ...('reason' in m && { reason: String(m.reason) }) });
    return push(...msgs);
  };
  return stamps;
}

const recordingEvents = (d: WrtcDialer, callId: string) =>
  d.messages.filter((m) => 'callId' in m && m.callId === callId && m.type.startsWith('recording.')).map((m) => `${m.type}:${'reason' in m ? m.reason : ''}`);

/** Packets rtpengine took from the dialer's leg so far: the call's audio going on, as an event to wait on. */
async function dialerPackets(service: TestService, callId: string): Promise<number> {
  const ng = service.rtpengine?.ng;
  assert.ok(ng, 'the test service runs its own rtpengine');
  return legCounters(await ng.query(callId), `${callId}-d`)?.good ?? 0;
}

/** Whether rtpengine still sends the dialer's leg to the recorder: its subscribers name the fork's tag. */
async function forked(service: TestService, callId: string): Promise<boolean> {
  const tags = (await service.rtpengine!.ng.query(callId)).tags;
  const leg = isDict(tags) ? tags[`${callId}-d`] : undefined;
  const subscribers = isDict(leg) && Array.isArray(leg.subscribers) ? leg.subscribers : [];
  return subscribers.some((s) => isDict(s) && s.tag === `${callId}-r`);
}

async function chunkKeys(service: TestService, recordingId: string): Promise<string[]> {
  return (await service.objects.list(objectKeys.prefix(recordingId))).filter((k) => k.includes('chunk-')).sort();
}

test('DELETE /v1/me/consent mid-call: the dialer hears recording.stopped consent-revoked at once, the call goes on unrecorded, nothing is stored after', { timeout: 90_000 }, async () => {
  const r = await startWrtcRig({ recording: { chunkSeconds: CHUNK_SECONDS } });
  try {
    const { dialer, userId } = await r.dialer('+15553330001');
    const stamps = stampMessages(dialer);
    const { token } = await r.service.tokens.issue(userId, 3_600_000);
    const callId = await r.call(dialer);
    await until('recording.started', () => stamps.some((s) => s.type === 'recording.started' && s.callId === callId), 10_000);
    const startedAt = stamps.find((s) => s.type === 'recording.started')!.at;
    // Two chunks stored: the recording is well under way.
    await until('two chunks recorded', async () => ((await r.service.catalog.byCall(callId))?.chunkCount ?? 0) >= 2, 15_000);

    assert.equal(await forked(r.service, callId), true, 'rtpengine forks the dialer leg to the recorder');
    const sentAt = performance.now();
    const res = await fetch(new URL('v1/me/consent', r.service.url), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const answeredAt = performance.now();
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { consent: unknown }).consent, null);
    await until('recording.stopped at the dialer', () => stamps.some((s) => s.type === 'recording.stopped'), 5000, 5);
    const stopped = stamps.find((s) => s.type === 'recording.stopped')!;
    assert.equal(stopped.reason, 'consent-revoked');
    const heardMs = stopped.at - sentAt;
    console.log(`consent withdrawal: DELETE answered in ${(answeredAt - sentAt).toFixed(0)} ms; recording.stopped reached the dialer ${heardMs.toFixed(0)} ms after the request was sent`);
    assert.ok(heardMs < 1000, `recording.stopped after ${heardMs.toFixed(0)} ms`);

    // The withdrawal answers only once the recording is finished: complete, holding what came before.
    const row = await r.service.catalog.byCall(callId);
    assert.ok(row);
    assert.equal(row.state, 'complete');
    assert.ok(row.chunkCount >= 2);
    assert.ok(row.durationMs <= answeredAt - startedAt + 200, `recorded ${row.durationMs} ms, no more than the ${(answeredAt - startedAt).toFixed(0)} ms before the answer`);
    assert.ok(row.durationMs >= sentAt - startedAt - 1500, `recorded ${row.durationMs} ms of the ${(sentAt - startedAt).toFixed(0)} ms before the request`);
    assert.equal(await forked(r.service, callId), false, 'rtpengine no longer sends the recorder anything');
    await r.service.spool.drain(10_000);
    const keys = await chunkKeys(r.service, row.id);
    assert.equal(keys.length, row.chunkCount, 'every chunk up to the withdrawal is stored');

    // The call goes on: its audio keeps flowing for more than two chunk lengths, and none of it is stored.
    const packets = await dialerPackets(r.service, callId);
    await until('5 s more of the dialer’s audio through rtpengine', async () => (await dialerPackets(r.service, callId)) >= packets + 250, 20_000, 200);
    const live = r.service.switchboard.call(callId);
    assert.equal(live?.state, 'answered', 'the call is still up');
    assert.ok(!dialer.messages.some((m) => m.type === 'call.ended'), 'nobody told the dialer it ended');
    await r.service.spool.drain(10_000);
    assert.equal(r.service.spool.pending, 0);
    assert.deepEqual(await chunkKeys(r.service, row.id), keys, 'no chunk written after the withdrawal');
    assert.deepEqual(await r.service.catalog.byCall(callId), row, 'the recording row did not move');
    const record = await r.service.records.get(userId, callId);
    assert.equal(record?.recordingNote, 'consent-revoked', 'the call record says why the rest is unrecorded');
    assert.equal(await r.service.settler.get(callId), undefined, 'not settled while the call goes on');

    // Hang up: the call ends normally, the recording is untouched, the call is settled at its hangup.
    await r.hangup(dialer, callId);
    assert.equal((await r.service.records.get(userId, callId))?.endReason, 'local-hangup');
    assert.deepEqual(recordingEvents(dialer, callId), ['recording.started:', 'recording.stopped:consent-revoked'], 'one stop, never a second');
    await until('settled after the hangup', async () => (await r.service.settler.get(callId)) !== undefined, 10_000);
    const settlement = await r.service.settler.get(callId);
    assert.ok(settlement!.talkS <= Math.ceil(row.talkMs / 1000), 'talk time is what was recorded');
    assert.deepEqual(await chunkKeys(r.service, row.id), keys);
    const { pcm } = await decryptAndDecode(r.service, row.id);
    assert.ok(Math.abs(pcm.length / 48 - row.durationMs) < 1000, `decrypts to ${Math.round(pcm.length / 48)} ms of ${row.durationMs} ms`);
  } finally {
    await r.close();
  }
});

test('consent withdrawn from the CLI (another process) while a call rings: the answered call is not recorded', { timeout: 90_000 }, async () => {
  const r = await startWrtcRig({ recording: { chunkSeconds: CHUNK_SECONDS } });
  const sink = createSocket('udp4');
  await new Promise<void>((res) => sink.bind(0, '127.0.0.1', () => res()));
  const phone = '+15553330002';
  let sipp: ReturnType<typeof startSipp> | undefined;
  try {
    const { dialer, userId } = await r.dialer(phone);
    sipp = startSipp({ scenario: 'uac-call', port: await freePort(), remote: `127.0.0.1:${r.service.sipPort}`, service: phone, pauseMs: 30_000, keys: { rtp_port: String(sink.address().port) }, timeoutMs: 60_000 });
    const incoming = await dialer.waitIncoming(10_000);
    // While it rings, the operator withdraws the consent in another process: nothing tells this one.
    const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'user', 'consent', '--user', userId, '--revoke'], {
      env: { ...process.env, MONOLOGUE_DATA_DIR: r.service.config.dataDir, DATABASE_URL: r.service.config.database.url },
      encoding: 'utf8',
    });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).consent, null);
    const call = r.service.switchboard.call(incoming.callId);
    assert.equal(call?.owner?.consent?.version, 'v1', 'the ringing call still holds the consent it was admitted with');

    await dialer.accept(incoming.callId);
    await until('the answer was judged unrecordable', async () => (await r.service.records.get(userId, incoming.callId))?.recordingNote === 'no-consent', 15_000);
    assert.equal(r.service.switchboard.call(incoming.callId)?.state, 'answered', 'the call goes on');
    assert.equal(await r.service.catalog.byCall(incoming.callId), undefined, 'no recording');
    assert.deepEqual(recordingEvents(dialer, incoming.callId), []);
    const audit = await r.service.audit.forUser(userId, { limit: 10 });
    assert.deepEqual(audit.map((e) => [e.action, e.detail, e.actor.startsWith('operator:')]), [['user.consent', 'withdrawn', true]], 'the CLI audited the change');
    await r.hangup(dialer, incoming.callId);
  } finally {
    sipp?.kill();
    sink.close();
    await r.close();
  }
});
