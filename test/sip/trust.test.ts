import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { until } from '../helpers/until.js';
import { ANSWER, cleanupsAfterAll, inboundRecorder, startEndpoint } from './harness.js';
import { firstLine, header, rawInDialog, rawInvite, request, udpPeer, type RawDialog } from './raw.js';

/**
 * Inbound trust at the dialog layer: who may talk to us, whose in-dialog requests count, where our
 * own in-dialog requests go, what a caller id may be, and the TCP connection limits. The endpoint
 * listens on 127.0.0.1; 127.0.0.1 (the trunk host) and 127.0.0.8/30 are allowed; strangers live on
 * 127.0.0.5, 127.0.0.6 and 127.0.0.77.
 */
const ALLOWED = ['127.0.0.1', '127.0.0.8/30'];
/** Long enough that an answer, had there been one, would have come (ours take milliseconds). */
const SILENCE_MS = 1500;

const cleanups = cleanupsAfterAll();

let dialogs = 0;
function newDialog(port: number, via: { host: string; port: number }): RawDialog {
  dialogs += 1;
  return { port, callId: `trust-${dialogs}-${Date.now()}@test`, fromTag: `ft${dialogs}`, via };
}

/** A TCP connection from `localAddress`; `bytes` is what came back, `closed` when the other side closed it. */
function tcpFrom(localAddress: string, port: number): { sock: Socket; bytes: () => string; closed: () => boolean; open: Promise<void> } {
  let got = '';
  let closed = false;
  const sock = connect({ port, host: '127.0.0.1', localAddress });
  sock.on('data', (d) => { got += d.toString('binary'); });
  sock.on('error', () => {});
  sock.on('close', () => { closed = true; });
  cleanups.push(() => sock.destroy());
  return { sock, bytes: () => got, closed: () => closed, open: new Promise((r) => sock.once('connect', () => r())) };
}

const tcpOptions = (port: number, from: string) => request('OPTIONS', port).replace('SIP/2.0/UDP 127.0.0.1:9;', `SIP/2.0/TCP ${from}:9;`);

describe('inbound trust', { concurrency: true }, () => {
  test('strangers get no answer at all (UDP and TCP, INVITE and OPTIONS), one log line per source, while an allowed range is answered', async () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => void lines.push(l) });
    const rec = inboundRecorder(() => assert.fail('a stranger reached the call handler'));
    const t = await startEndpoint(rec.handler, { allowedSources: ALLOWED, log });
    cleanups.push(() => t.ep.close());
    const strangers = await Promise.all(['127.0.0.5', '127.0.0.6'].map((a) => udpPeer(a)));
    for (const s of strangers) cleanups.push(() => s.close());

    // 10 INVITEs and 10 OPTIONS from each stranger over UDP.
    for (const s of strangers) {
      for (let i = 0; i < 10; i++) {
        const d = newDialog(t.port, { host: s.address, port: s.port });
        await s.send(rawInvite(d), t.port);
        await s.send(request('OPTIONS', t.port).replace('SIP/2.0/UDP 127.0.0.1:9;', `SIP/2.0/UDP ${s.address}:${s.port};`), t.port);
      }
    }
    // Over TCP: the connection is closed without a byte, whatever was written on it.
    const tcp = [tcpFrom('127.0.0.5', t.port), tcpFrom('127.0.0.5', t.port)];
    await Promise.all(tcp.map((c) => c.open.catch(() => undefined)));
    tcp[0]!.sock.write(tcpOptions(t.port, '127.0.0.5'));
    tcp[1]!.sock.write(rawInvite(newDialog(t.port, { host: '127.0.0.5', port: 9 })).replace('SIP/2.0/UDP', 'SIP/2.0/TCP'));
    await until('the strangers\' TCP connections are closed', () => tcp.every((c) => c.closed()), 5000);

    // The control: a source inside 127.0.0.8/30 is answered.
    const friend = await udpPeer('127.0.0.9');
    cleanups.push(() => friend.close());
    await friend.send(request('OPTIONS', t.port).replace('SIP/2.0/UDP 127.0.0.1:9;', `SIP/2.0/UDP 127.0.0.9:${friend.port};`), t.port);
    assert.match(firstLine(await friend.waitFor('200 to OPTIONS', (m) => m.startsWith('SIP/2.0 200'))), /^SIP\/2\.0 200/);

    await until('every stranger request counted', () => t.ep.dropped['source-not-allowed'] >= 42, 5000);
    await new Promise((r) => setTimeout(r, SILENCE_MS));
    for (const s of strangers) assert.deepEqual(s.received.map(firstLine), [], `${s.address} got an answer`);
    assert.deepEqual(tcp.map((c) => c.bytes()), ['', '']);
    assert.equal(t.ep.dropped['source-not-allowed'], 42);
    assert.deepEqual(rec.events, []);

    const dropLines = lines.map((l) => JSON.parse(l) as { msg: string; src: string; reason: string }).filter((l) => l.msg === 'sip: dropped unanswered');
    assert.deepEqual(dropLines.map((l) => l.src).sort(), ['127.0.0.5', '127.0.0.6'], 'one line per source within the minute');
    assert.ok(dropLines.every((l) => l.reason === 'source-not-allowed'));
  });

  test('BYE and re-INVITE for a live call from another source are ignored; the call stays up until its peer hangs up', async () => {
    const rec = inboundRecorder((_o, leg) => leg.answer(ANSWER));
    const t = await startEndpoint(rec.handler, { allowedSources: ALLOWED });
    cleanups.push(() => t.ep.close());
    const peer = await udpPeer('127.0.0.1');
    const stranger = await udpPeer('127.0.0.5');
    const neighbour = await udpPeer('127.0.0.10'); // allowed, but not this dialog's peer
    for (const p of [peer, stranger, neighbour]) cleanups.push(() => p.close());

    const d = newDialog(t.port, { host: '127.0.0.1', port: peer.port });
    await peer.send(rawInvite(d), t.port);
    const ok = await peer.waitFor('200 to INVITE', (m) => m.startsWith('SIP/2.0 200') && /CSeq: 1 INVITE/.test(m));
    d.to = header(ok, 'To');
    await peer.send(rawInDialog(d, 'ACK', 1), t.port);
    await rec.waitFor((e) => e.type === 'confirmed');

    // The same dialog's BYE and re-INVITE, word for word, from the two other addresses.
    for (const other of [stranger, neighbour]) {
      const spoof = { ...d, via: { host: other.address, port: other.port } };
      await other.send(rawInDialog(spoof, 'BYE', 2), t.port);
      await other.send(rawInDialog(spoof, 'INVITE', 3), t.port);
    }
    await until('the four requests counted as dropped', () => t.ep.dropped['source-not-allowed'] + t.ep.dropped['not-dialog-peer'] >= 4, 5000);
    await new Promise((r) => setTimeout(r, SILENCE_MS));
    assert.deepEqual(t.ep.dropped, { 'source-not-allowed': 2, 'not-dialog-peer': 2, 'tcp-connection-limit': 0 });
    assert.deepEqual(stranger.received, []);
    assert.deepEqual(neighbour.received, []);
    assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'confirmed'], 'the call is still up');
    assert.equal(t.ep.activeCalls, 1);

    // Its own peer's BYE ends it.
    await peer.send(rawInDialog(d, 'BYE', 2), t.port);
    await peer.waitFor('200 to BYE', (m) => m.startsWith('SIP/2.0 200') && /CSeq: 2 BYE/.test(m));
    await rec.waitFor((e) => e.type === 'ended');
    assert.equal(t.ep.activeCalls, 0);
  });

  test('a Contact or Record-Route outside the allowed sources: our BYE goes to the INVITE source, not there; an allowed Contact is used', async () => {
    const rec = inboundRecorder((_o, leg) => leg.answer(ANSWER));
    const t = await startEndpoint(rec.handler, { allowedSources: ALLOWED });
    cleanups.push(() => t.ep.close());
    const elsewhere = await udpPeer('127.0.0.77');
    const friend = await udpPeer('127.0.0.11');
    cleanups.push(() => elsewhere.close(), () => friend.close());

    const cases = [
      { name: 'Contact at 127.0.0.77', contact: `<sip:evil@127.0.0.77:${elsewhere.port}>`, headers: [], byeAt: 'source' },
      { name: 'Record-Route at 127.0.0.77', contact: undefined, headers: [`Record-Route: <sip:127.0.0.77:${elsewhere.port};lr>`], byeAt: 'source' },
      { name: 'Contact at allowed 127.0.0.11', contact: `<sip:trunk@127.0.0.11:${friend.port}>`, headers: [], byeAt: 'friend' },
    ] as const;
    for (const c of cases) {
      const peer = await udpPeer('127.0.0.1');
      cleanups.push(() => peer.close());
      const d = newDialog(t.port, { host: '127.0.0.1', port: peer.port });
      await peer.send(rawInvite(d, { contact: c.contact, headers: [...c.headers] }), t.port);
      const ok = await peer.waitFor('200 to INVITE', (m) => m.startsWith('SIP/2.0 200'));
      d.to = header(ok, 'To');
      await peer.send(rawInDialog(d, 'ACK', 1), t.port);
      const offer = await rec.waitFor((e) => e.type === 'offer' && e.offer.sipCallId === d.callId);
      await rec.waitFor((e) => e.type === 'confirmed' && e.callId === d.callId);
      assert.ok(offer.type === 'offer');
      offer.leg.end();
      const byeTo = c.byeAt === 'source' ? peer : friend;
      const bye = await byeTo.waitFor(`${c.name}: our BYE`, (m) => m.startsWith('BYE ') && m.includes(d.callId));
      if (c.byeAt === 'source') {
        assert.match(firstLine(bye), new RegExp(`^BYE sip:127\\.0\\.0\\.1:${peer.port} `), c.name);
        assert.equal(header(bye, 'Route'), undefined, `${c.name}: no route set towards 127.0.0.77`);
      } else {
        assert.match(firstLine(bye), new RegExp(`^BYE sip:trunk@127\\.0\\.0\\.11:${friend.port} `), c.name);
      }
    }
    await new Promise((r) => setTimeout(r, SILENCE_MS));
    assert.deepEqual(elsewhere.received.map(firstLine), [], '127.0.0.77 received nothing');
    // One BYE (its retransmissions share the branch): the one allowed Contact's.
    const byes = friend.received.filter((m) => m.startsWith('BYE '));
    assert.equal(new Set(byes.map((m) => header(m, 'Via'))).size, 1);
  });

  test('the caller is E.164 or "anonymous": percent-encoded CRLF, names and a number-like display name are not numbers', async () => {
    const rec = inboundRecorder((_o, leg) => leg.reject('busy'));
    const t = await startEndpoint(rec.handler, { allowedSources: ALLOWED });
    cleanups.push(() => t.ep.close());
    const peer = await udpPeer('127.0.0.1');
    cleanups.push(() => peer.close());
    const froms = [
      ['<sip:%0D%0AX-Injected:%20yes@127.0.0.1>', 'anonymous'],
      ['"+15550009999" <sip:alice@example.com>', 'anonymous'],
      ['<sip:anonymous@anonymous.invalid>', 'anonymous'],
      ['<sip:+1555%0D%0A0002222@127.0.0.1>', 'anonymous'],
      ['<sip:+12@127.0.0.1>', 'anonymous'],
      ['"Alice" <sip:+15550002222@127.0.0.1>', '+15550002222'],
      ['<tel:0015550003333>', '+15550003333'],
    ] as const;
    for (const [from] of froms) {
      const d = newDialog(t.port, { host: '127.0.0.1', port: peer.port });
      await peer.send(rawInvite(d, { from }), t.port);
      await rec.waitFor((e) => e.type === 'offer' && e.offer.sipCallId === d.callId);
    }
    const seen = rec.events.flatMap((e) => (e.type === 'offer' ? [e.offer.from] : []));
    assert.deepEqual(seen, froms.map(([, want]) => want));
  });

  test('an answered INVITE nobody ACKs: 200 retransmitted, then unconfirmed at Timer H and a BYE to the source', { timeout: 60_000 }, async () => {
    const rec = inboundRecorder((_o, leg) => leg.answer(ANSWER));
    const t = await startEndpoint(rec.handler, { allowedSources: ALLOWED });
    cleanups.push(() => t.ep.close());
    const peer = await udpPeer('127.0.0.1');
    cleanups.push(() => peer.close());
    const d = newDialog(t.port, { host: '127.0.0.1', port: peer.port });
    const started = Date.now();
    await peer.send(rawInvite(d), t.port);
    await rec.waitFor((e) => e.type === 'unconfirmed', 45_000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 31_000, `unconfirmed after ${elapsed} ms, before Timer H`);
    await peer.waitFor('our BYE', (m) => m.startsWith('BYE '));
    const oks = peer.received.filter((m) => m.startsWith('SIP/2.0 200')).length;
    assert.ok(oks >= 8, `our 200 was sent ${oks} times`);
    assert.deepEqual(rec.events.map((e) => e.type), ['offer', 'unconfirmed']);
    assert.equal(t.ep.activeCalls, 0);
  });

  test('TCP: connections over the per-source cap are closed at once; idle ones after the timeout', async () => {
    const rec = inboundRecorder(() => {});
    const t = await startEndpoint(rec.handler, { allowedSources: ALLOWED, tcpLimits: { maxConnectionsPerSource: 3, idleTimeoutMs: 1500 } });
    cleanups.push(() => t.ep.close());
    const first = [tcpFrom('127.0.0.1', t.port), tcpFrom('127.0.0.1', t.port), tcpFrom('127.0.0.1', t.port)];
    await Promise.all(first.map((c) => c.open));
    // Each is answered: these count against the cap.
    for (const c of first) c.sock.write(tcpOptions(t.port, '127.0.0.1'));
    await until('the three are answered', () => first.every((c) => c.bytes().startsWith('SIP/2.0 200')), 5000);
    const extra = tcpFrom('127.0.0.1', t.port);
    await extra.open;
    await until('the fourth connection is closed', () => extra.closed(), 1000);
    assert.equal(extra.bytes(), '');
    assert.equal(t.ep.dropped['tcp-connection-limit'], 1);
    assert.ok(first.every((c) => !c.closed()), 'the first three are still open');
    // Idle connections (no transaction holds them) close after the timeout, and free their slots.
    // (A connection that carried a request is held by npm `sip` while its transaction lives, up to 32 s.)
    const idleOpened = Date.now();
    const idle = [tcpFrom('127.0.0.9', t.port), tcpFrom('127.0.0.9', t.port), tcpFrom('127.0.0.9', t.port)];
    await Promise.all(idle.map((c) => c.open));
    await until('the idle connections are closed', () => idle.every((c) => c.closed()), 8000);
    const idleFor = Date.now() - idleOpened;
    assert.ok(idleFor >= 1400, `closed after ${idleFor} ms, before the 1500 ms idle timeout`);
    assert.deepEqual(idle.map((c) => c.bytes()), ['', '', '']);
    const again = [tcpFrom('127.0.0.9', t.port), tcpFrom('127.0.0.9', t.port), tcpFrom('127.0.0.9', t.port)];
    await Promise.all(again.map((c) => c.open));
    for (const c of again) c.sock.write(tcpOptions(t.port, '127.0.0.9'));
    await until('the freed slots take new connections', () => again.every((c) => c.bytes().startsWith('SIP/2.0 200')), 5000);
    assert.equal(t.ep.dropped['tcp-connection-limit'], 1);
  });
});
