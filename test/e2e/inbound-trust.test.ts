import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort } from '../helpers/sipp.js';
import { until } from '../helpers/until.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';
import { firstLine, header, rawInDialog, rawInvite, request, udpPeer, type RawDialog, type UdpPeer } from '../sip/raw.js';

/**
 * Nobody but the trunk touches an inbound call, through the whole service (libwebrtc dialer,
 * rtpengine, recorder, ledger) with raw SIP peers: 127.0.0.1 is the trunk, 127.0.0.8/30 the rest of
 * its allowed range, 127.0.0.5 and 127.0.0.77 are strangers.
 */
let service: TestService;
let sink: Socket;
const logLines: string[] = [];
const peers: UdpPeer[] = [];
const dialers: WrtcDialer[] = [];
/** Long enough that an answer, had there been one, would have come. */
const SILENCE_MS = 1500;

before(async () => {
  service = await startTestService({
    trunkPort: await freePort(),
    overrides: { recording: { chunkSeconds: 2 }, payouts: { minBillableSeconds: 1 }, sip: { trunk: { allowedSources: ['127.0.0.1', '127.0.0.8/30'] } } },
    logDestination: { write: (l: string) => void logLines.push(l) },
  });
  // The raw trunk's media goes here and is dropped: these tests are about signalling.
  sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
});

after(async () => {
  for (const d of dialers) d.close();
  for (const p of peers) p.close();
  sink?.close();
  await service?.stop();
});

async function peer(address: string): Promise<UdpPeer> {
  const p = await udpPeer(address);
  peers.push(p);
  return p;
}

async function dialerFor(phone: string): Promise<{ dialer: WrtcDialer; userId: string }> {
  const user = await service.users.create({ phone, enrolled: true, consentVersion: 'v1' });
  const { token } = await service.tokens.issue(user.id, 3_600_000);
  const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token);
  dialers.push(dialer);
  await dialer.connect();
  return { dialer, userId: user.id };
}

let calls = 0;
function dialog(from: UdpPeer, callee: string): RawDialog {
  calls += 1;
  return { port: service.sipPort, callee, callId: `e2e-trust-${calls}-${Date.now()}@test`, fromTag: `t${calls}`, via: { host: from.address, port: from.port } };
}

const sinkPort = () => sink.address().port;

test('a stranger gets no answer at all (UDP and TCP, INVITE and OPTIONS), nothing rings, and the log has one line for it', async () => {
  const { dialer } = await dialerFor('+15550001111');
  const stranger = await peer('127.0.0.5');
  for (let i = 0; i < 20; i++) {
    await stranger.send(rawInvite(dialog(stranger, '+15550001111'), { rtpPort: sinkPort() }), service.sipPort);
    await stranger.send(request('OPTIONS', service.sipPort).replace('SIP/2.0/UDP 127.0.0.1:9;', `SIP/2.0/UDP 127.0.0.5:${stranger.port};`), service.sipPort);
  }
  let tcpBytes = '';
  let tcpClosed = false;
  const tcp = connect({ port: service.sipPort, host: '127.0.0.1', localAddress: '127.0.0.5' }, () => {
    tcp.write(request('OPTIONS', service.sipPort).replace('SIP/2.0/UDP 127.0.0.1:9;', 'SIP/2.0/TCP 127.0.0.5:9;'));
  });
  tcp.on('data', (d) => { tcpBytes += d.toString('binary'); });
  tcp.on('error', () => {});
  tcp.on('close', () => { tcpClosed = true; });
  await until('the stranger\'s TCP connection is closed', () => tcpClosed, 5000);
  await new Promise((r) => setTimeout(r, SILENCE_MS));

  assert.deepEqual(stranger.received.map(firstLine), [], 'no response over UDP');
  assert.equal(tcpBytes, '', 'no response over TCP');
  assert.equal(dialer.messages.filter((m) => m.type === 'call.incoming').length, 0, 'nothing rang');
  assert.equal(service.switchboard.liveCalls, 0);
  const lines = logLines.map((l) => JSON.parse(l) as { msg: string; src?: string }).filter((l) => l.src === '127.0.0.5');
  assert.deepEqual(lines.map((l) => l.msg), ['sip: dropped unanswered'], 'one line for 41 dropped requests');
});

test('an INVITE nobody ACKs: the dialer answers, but after Timer H the call ends failed, unrecorded, unpaid, and we BYE its source', { timeout: 90_000 }, async () => {
  const { dialer, userId } = await dialerFor('+15550002001');
  const trunk = await peer('127.0.0.1');
  const d = dialog(trunk, '+15550002001');
  await trunk.send(rawInvite(d, { rtpPort: sinkPort() }), service.sipPort);
  const inc = await dialer.waitIncoming(10_000);
  await dialer.accept(inc.callId);
  await trunk.waitFor('our 200', (m) => m.startsWith('SIP/2.0 200'), 10_000);
  // No ACK, ever.
  assert.equal(await dialer.waitEnded(inc.callId, 45_000), 'failed');
  await trunk.waitFor('our BYE', (m) => m.startsWith('BYE ') && m.includes(d.callId), 5000);
  assert.ok(trunk.received.filter((m) => m.startsWith('SIP/2.0 200')).length >= 8, 'our 200 was retransmitted until Timer H');

  const rec = await service.records.get(userId, inc.callId);
  assert.equal(rec?.endReason, 'failed');
  assert.equal(rec?.answeredAt ?? null, null, 'never answered');
  const recordings = await service.db.db.selectFrom('recordings').select('id').where('call_id', '=', inc.callId).execute();
  assert.deepEqual(recordings, [], 'no recording');
  const credits = await service.db.db.selectFrom('ledger_entries').select('id').where('call_id', '=', inc.callId).execute();
  assert.deepEqual(credits, [], 'no ledger entry');
  const about = dialer.messages.filter((m) => 'callId' in m && m.callId === inc.callId).map((m) => m.type);
  assert.ok(!about.includes('earnings.updated') && !about.includes('recording.started'), about.join(', '));
  assert.equal((await service.ledger.balance(userId)).availableMicros, 0);
});

test('an ACKed call whose Contact names 127.0.0.77: others\' BYE and re-INVITE are ignored; our BYE goes to the INVITE source only', { timeout: 60_000 }, async () => {
  const { dialer, userId } = await dialerFor('+15550002002');
  const trunk = await peer('127.0.0.1');
  const elsewhere = await peer('127.0.0.77');
  const stranger = await peer('127.0.0.5');
  const neighbour = await peer('127.0.0.9');
  const d = dialog(trunk, '+15550002002');
  await trunk.send(rawInvite(d, { rtpPort: sinkPort(), contact: `<sip:evil@127.0.0.77:${elsewhere.port}>` }), service.sipPort);
  const inc = await dialer.waitIncoming(10_000);
  const call = await dialer.accept(inc.callId);
  const ok = await trunk.waitFor('our 200', (m) => m.startsWith('SIP/2.0 200'), 10_000);
  d.to = header(ok, 'To');
  await trunk.send(rawInDialog(d, 'ACK', 1), service.sipPort);
  await until('recording started (answered on the ACK)', () => dialer.messages.some((m) => m.type === 'recording.started' && m.callId === inc.callId), 10_000);

  for (const other of [stranger, neighbour]) {
    const spoof = { ...d, via: { host: other.address, port: other.port } };
    await other.send(rawInDialog(spoof, 'BYE', 2), service.sipPort);
    await other.send(rawInDialog(spoof, 'INVITE', 3), service.sipPort);
  }
  await new Promise((r) => setTimeout(r, SILENCE_MS));
  assert.deepEqual([...stranger.received, ...neighbour.received].map(firstLine), []);
  assert.equal(service.switchboard.call(inc.callId)?.closed, false, 'the call is still up');
  assert.equal(dialer.messages.some((m) => m.type === 'call.ended' && m.callId === inc.callId), false);

  dialer.hangup(inc.callId);
  assert.equal(await call.ended, 'local-hangup');
  const bye = await trunk.waitFor('our BYE', (m) => m.startsWith('BYE ') && m.includes(d.callId), 5000);
  assert.match(firstLine(bye), new RegExp(`^BYE sip:127\\.0\\.0\\.1:${trunk.port} `));
  await new Promise((r) => setTimeout(r, SILENCE_MS));
  assert.deepEqual(elsewhere.received.map(firstLine), [], '127.0.0.77 received nothing');

  const rec = await service.records.get(userId, inc.callId);
  assert.ok(rec?.answeredAt && rec.endedAt && rec.answeredAt <= rec.endedAt, JSON.stringify(rec));
  const recordings = await service.db.db.selectFrom('recordings').select('id').where('call_id', '=', inc.callId).execute();
  assert.equal(recordings.length, 1, 'the ACKed call was recorded');
});

test('a From header with encoded CRLF and a number-like display name reaches the dialer and the database as "anonymous"', async () => {
  const { dialer, userId } = await dialerFor('+15550002003');
  const trunk = await peer('127.0.0.1');
  const garbage = [
    '"+15550009999" <sip:%0D%0AX-Injected:%20yes@127.0.0.1>',
    '"+15550009999" <sip:alice@example.com>',
    '<sip:+1555000%0D%0A2222@127.0.0.1>',
  ];
  for (const from of garbage) {
    await trunk.send(rawInvite(dialog(trunk, '+15550002003'), { rtpPort: sinkPort(), from }), service.sipPort);
    const inc = await dialer.waitIncoming(10_000);
    assert.equal(inc.from, 'anonymous', from);
    dialer.reject(inc.callId);
    await until('call.ended rejected', () => dialer.messages.some((m) => m.type === 'call.ended' && m.callId === inc.callId && m.reason === 'rejected'), 10_000);
    const rec = await service.records.get(userId, inc.callId);
    assert.equal(rec?.counterpart, 'anonymous', from);
  }
  // The control: a real number goes through as itself.
  await trunk.send(rawInvite(dialog(trunk, '+15550002003'), { rtpPort: sinkPort(), from: '"Bob" <sip:+15550004444@127.0.0.1>' }), service.sipPort);
  const inc = await dialer.waitIncoming(10_000);
  assert.equal(inc.from, '+15550004444');
  dialer.reject(inc.callId);
  await until('call.ended', () => dialer.messages.some((m) => m.type === 'call.ended' && m.callId === inc.callId), 10_000);
  assert.equal((await service.records.get(userId, inc.callId))?.counterpart, '+15550004444');
});
