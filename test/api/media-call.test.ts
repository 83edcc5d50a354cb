/**
 * End to end with a real call: the libwebrtc dialer sends 440 Hz, the trunk side (sipp answering, an RTP
 * peer playing 1,000 Hz) talks back; after hang-up the owner lists the recording, takes a grant through
 * the API and fetches the audio from /v1/media/…: it decodes, the user's 440 Hz is there and the other
 * party's 1,000 Hz is not. The fetch comes right after the recording is marked done, so its last chunks
 * may still be on their way to storage: the media route waits for them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import opus from '@discordjs/opus';
import { startWrtcRig } from '../helpers/wrtc-rig.js';
import { createRtpPeer } from '../helpers/rtp-peer.js';
import { waitForRecording } from '../helpers/recording.js';
import { opusPackets } from '../helpers/ogg.js';
import { goertzel } from '../helpers/tone.js';
import { until } from '../helpers/until.js';

test('a recorded call fetched through a grant holds the user’s tone and not the other party’s', { timeout: 60_000 }, async () => {
  const rig = await startWrtcRig({ recording: { chunkSeconds: 1 } });
  const peer = await createRtpPeer({ tone: 1000, codec: 'PCMU' });
  try {
    const { dialer, userId } = await rig.dialer('+15550400001', { tone: { toneHz: 440 } });
    const callId = await rig.call(dialer, '+15550002222', undefined, peer.port);
    peer.start();
    await until('the trunk hears the user', () => peer.measure(440, 1000) > 20, 10_000, 100);
    await until('four seconds of the call recorded', async () => ((await rig.service.catalog.byCall(callId))?.chunkCount ?? 0) >= 4, 15_000, 100);
    await rig.hangup(dialer, callId);
    const row = await waitForRecording(rig.service, callId);
    assert.equal(row.state, 'complete');

    const { token } = await rig.service.tokens.issue(userId, 3_600_000);
    const api = (path: string, init: RequestInit = {}) => fetch(new URL(path.slice(1), rig.service.url), { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers } });
    const list = (await (await api('/v1/recordings')).json()) as { items: Array<{ id: string; callId: string; state: string; durationMs: number }> };
    assert.deepEqual(list.items.map((r) => [r.id, r.callId, r.state]), [[row.id, callId, 'complete']]);
    assert.ok(list.items[0]!.durationMs >= 3000, `${list.items[0]!.durationMs} ms`);

    const g = await api(`/v1/recordings/${row.id}/grants`, { method: 'POST', body: JSON.stringify({ purpose: 'download' }) });
    assert.equal(g.status, 201);
    const { url } = (await g.json()) as { url: string };
    const res = await fetch(new URL(url.slice(1), rig.service.url)); // no token: the grant is the credential
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'audio/ogg; codecs=opus');
    const ogg = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('content-length'), String(ogg.length));
    assert.equal(row.chunkCount, (await rig.service.catalog.get(row.id))?.chunkCount);

    const decoder = new opus.OpusEncoder(48000, 1);
    const pcmBytes = Buffer.concat(opusPackets(ogg).map((p) => decoder.decode(p)));
    const pcm = new Int16Array(pcmBytes.buffer, pcmBytes.byteOffset, pcmBytes.length / 2);
    assert.ok(pcm.length >= 48000 * 3, `${Math.round(pcm.length / 48)} ms of audio`);
    const near = goertzel(pcm, 440, 48000);
    const far = goertzel(pcm, 1000, 48000);
    const db = 10 * Math.log10(near / Math.max(far, 1e-12));
    console.log(`user tone over the other party's in the served file: ${db.toFixed(1)} dB`);
    assert.ok(db >= 40, `440 Hz is only ${db.toFixed(1)} dB over 1,000 Hz`);
  } finally {
    await peer.close();
    await rig.close();
  }
});
