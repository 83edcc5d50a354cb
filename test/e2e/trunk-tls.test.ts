/**
 * TLS and SDES-SRTP towards the trunk. The trunk is Kamailio terminating TLS (kamailio-tls-modules) in
 * front of a UDP sipp, with a self-signed certificate made here by openssl for `trunk.test`; the service
 * trusts it through `sip.trunk.tls.caFile` and checks the name through `servername` (SNI).
 *
 * - A call over TLS with `media.trunkSrtp: sdes`: the INVITE reaches Kamailio over TLS with an RTP/SAVP
 *   offer and a=crypto lines (no NULL cipher), our BYE goes back over TLS along the route set, and what
 *   rtpengine sends towards the trunk is SRTP: every packet carries the 10-byte auth tag and its payload
 *   does not decode as the dialer's PCMU tone.
 * - An untrusted certificate (another CA) and a certificate for another name: the attempt fails with a
 *   transport error, logged with its code, and nothing reaches the proxy in cleartext.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { createSipEndpoint, type SipTrunkOptions } from '../../src/sip/endpoint.js';
import { startKamailio, type Kamailio } from '../helpers/kamailio.js';
import { freeUdpPort } from '../helpers/ports.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort, startSipp, type SippRun } from '../helpers/sipp.js';
import { g711Decode, toneShare } from '../helpers/tone.js';
import { outboundRecorder } from '../sip/harness.js';
import { until } from '../helpers/until.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';

const PROXY = '127.0.0.3';
/** RFC 4568's example master key and salt (30 bytes): sipp's side of the SRTP. */
const SRTP_KEY = 'PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR';
const RTP_HEADER = 12;
const PCMU_20MS = 160;
const AUTH_TAG_80 = 10;

let dir: string;
let kamailio: Kamailio;
let service: TestService;
let udpPort: number;
let tlsPort: number;
let sippPort: number;
let serviceTlsPort: number;
const cleanups: (() => unknown)[] = [];

/** A self-signed certificate (its own CA) for `name`. */
function selfSigned(base: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { cert, key };
}

let trunkCert: { cert: string; key: string };
let otherCa: { cert: string; key: string };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trunk-tls-'));
  trunkCert = selfSigned('trunk', 'trunk.test');
  otherCa = selfSigned('other', 'trunk.test');
  [udpPort, tlsPort, sippPort, serviceTlsPort] = [await freeUdpPort(), await freePort(), await freePort(), await freePort()];
  service = await startTestService({
    trunkPort: tlsPort,
    overrides: {
      sip: {
        trunk: { host: PROXY, transport: 'tls', tls: { caFile: trunkCert.cert, servername: 'trunk.test' }, allowedSources: [PROXY] },
        // Our own TLS listener, for inbound calls and the trunk's in-dialog requests over TLS.
        tls: { port: serviceTlsPort, certFile: trunkCert.cert, keyFile: trunkCert.key },
      },
      media: { trunkSrtp: 'sdes' },
    },
  });
  kamailio = await startKamailio({
    address: PROXY, udpPort, sippPort, servicePort: serviceTlsPort, serviceTransport: 'tls',
    tls: { port: tlsPort, certFile: trunkCert.cert, keyFile: trunkCert.key },
  });
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await service?.stop();
  await kamailio?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS trunk', { concurrency: true }, () => {
  test('a call over TLS with SDES-SRTP towards the trunk: no cleartext signalling or RTP leaves for it', async () => {
    const from = kamailio.mark();
    const media: Buffer[] = [];
    const sink: Socket = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    sink.on('message', (b) => media.push(b));
    cleanups.push(() => sink.close());
    const sipp: SippRun = startSipp({ scenario: 'uas-answer-srtp', port: sippPort, remote: `${PROXY}:${udpPort}`, keys: { rtp_port: String(sink.address().port), srtp_key: SRTP_KEY }, timeoutMs: 30_000 });
    cleanups.push(() => sipp.kill());
    await sipp.ready;

    const user = await service.users.create({ phone: '+15550004001', enrolled: true });
    const { token } = await service.tokens.issue(user.id, 3_600_000);
    const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token, { toneHz: 440 });
    cleanups.push(() => dialer.close());
    await dialer.connect();
    const call = await dialer.call('+15550002222');
    await dialer.waitConnected(call.callId);

    // Signalling: the INVITE came over TLS, offering SRTP only with real ciphers.
    await kamailio.waitForLog(/REQ INVITE \S+ from tls:127\.0\.0\.1:\d+/, from);
    const body = await kamailio.waitForLog(/BODY [\s\S]*?a=sendrecv/, from);
    assert.match(body, /m=audio \d+ RTP\/SAVP /, 'the offer is RTP/SAVP');
    assert.match(body, /a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:/, 'with SDES keys');
    assert.doesNotMatch(body, /NULL_HMAC|F8_128/, 'no suite that leaves audio unencrypted');

    // Media: what leaves for the trunk is SRTP.
    await until('SRTP packets towards the trunk', () => media.length >= 100);
    const rtp = media.filter((b) => b.length > RTP_HEADER && (b[0]! & 0xc0) === 0x80 && (b[1]! & 0x7f) === 0);
    assert.ok(rtp.length >= 90, `PCMU packets towards the trunk: ${rtp.length} of ${media.length}`);
    for (const p of rtp) assert.equal(p.length, RTP_HEADER + PCMU_20MS + AUTH_TAG_80, 'every packet carries the SRTP auth tag');
    const payload = Buffer.concat(rtp.slice(-50).map((p) => p.subarray(RTP_HEADER, RTP_HEADER + PCMU_20MS)));
    const share = toneShare(g711Decode(payload, 'PCMU'), 440, 8000);
    assert.ok(share < 0.01, `the payload is not the dialer's 440 Hz tone in clear PCMU (440 Hz holds ${(share * 100).toFixed(2)}% of its power)`);

    // Our BYE goes back over TLS, along the route set.
    dialer.hangup(call.callId);
    assert.equal(await dialer.waitEnded(call.callId), 'local-hangup');
    await kamailio.waitForLog(new RegExp(`REQ BYE \\S+ from tls:127\\.0\\.0\\.1:\\d+ route=<sip:127\\.0\\.0\\.3:${tlsPort};transport=tls;r2=on;lr`), from);
    const res = await sipp.done;
    assert.equal(res.successful, 1, res.errors + res.stderr);
  });

  for (const [name, tls] of [
    ['a certificate from a CA we do not trust', () => ({ caFile: otherCa.cert, servername: 'trunk.test' })],
    ['a trusted certificate for another name', () => ({ caFile: trunkCert.cert, servername: 'elsewhere.test' })],
  ] as const) {
    test(`${name}: the call fails clearly and nothing goes out in cleartext`, async () => {
      const from = kamailio.mark();
      const lines: Record<string, unknown>[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _e, done) {
          for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
          done();
        },
      });
      const trunk: SipTrunkOptions = { host: PROXY, port: tlsPort, transport: 'tls', tls: tls(), allowedSources: [PROXY] };
      const ep = await createSipEndpoint(
        { listen: { address: '127.0.0.1', port: await freePort(), udp: true, tcp: false }, trunk, inviteTimeoutMs: 8000 },
        createLogger('info', sink),
        () => {
          throw new Error('no inbound expected');
        },
      );
      cleanups.push(() => ep.close());
      const l = outboundRecorder();
      const leg = ep.trunk.dial({ to: '+15550001111', from: '+15550002222', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/SAVP 0\r\n' }, l);
      const failed = await l.waitFor((e) => e.type === 'failed', 10_000);
      assert.deepEqual(failed, { type: 'failed', status: 503 });
      const tlsLine = lines.find((x) => x.code === 'SIP_TLS_FAILED');
      assert.ok(tlsLine, `the TLS failure is logged with its code: ${JSON.stringify(lines)}`);
      assert.match(String(tlsLine.err), /certificate|altnames/i, 'the log says the certificate was refused');
      assert.ok(lines.some((x) => x.code === 'SIP_TRANSPORT_FAILED'), 'and the failed attempt too');
      assert.ok(!kamailio.log.slice(from).includes(`cid=${leg.sipCallId}`), 'nothing of this call reached the proxy');
    });
  }
});

// After the concurrent cases: sipp's port behind the proxy is free again.
test('inbound over TLS with SDES-SRTP: the trunk\'s INVITE and BYE reach our TLS listener, we answer RTP/SAVP', async () => {
  const from = kamailio.mark();
  const user = await service.users.create({ phone: '+15550004002', enrolled: true });
  const { token } = await service.tokens.issue(user.id, 3_600_000);
  const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token, { toneHz: 440 });
  cleanups.push(() => dialer.close());
  await dialer.connect();
  const sipp = startSipp({ scenario: 'uac-call-srtp', port: sippPort, remote: `${PROXY}:${udpPort}`, service: '+15550004002', pauseMs: 800, keys: { srtp_key: SRTP_KEY }, timeoutMs: 30_000 });
  cleanups.push(() => sipp.kill());
  const incoming = await dialer.waitIncoming().catch((err: unknown) => {
    throw new Error(`${String(err)}; kamailio:\n${kamailio.log.slice(from).slice(-3000)}`);
  });
  await dialer.accept(incoming.callId);
  const answer = await kamailio.waitForLog(/RPL 200 INVITE from tls:127\.0\.0\.1:\d+\s+[\s\S]*?RBODY [\s\S]*?a=crypto:1 \S+ inline:/, from);
  assert.match(answer, /m=audio \d+ RTP\/SAVP /, 'our answer is RTP/SAVP');
  assert.match(answer, /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:/, 'with our own SDES key for the offered suite');
  assert.equal(await dialer.waitEnded(incoming.callId, 15_000), 'remote-hangup');
  const res = await sipp.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
});
