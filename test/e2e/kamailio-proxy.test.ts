/**
 * A real proxy in the path: Kamailio (record_route, loose_route) between the service and sipp, for
 * outbound and inbound calls placed by libwebrtc dialers. The service trusts only Kamailio's address
 * (127.0.0.3), so anything sipp sent it directly would be dropped; every in-dialog request (ACK, BYE,
 * either way) must follow the route set Kamailio recorded, and Kamailio's log shows each with its Route.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startKamailio, type Kamailio } from '../helpers/kamailio.js';
import { freeUdpPort } from '../helpers/ports.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort, startSipp, type SippRun } from '../helpers/sipp.js';
import { WrtcDialer } from '../helpers/wrtc-dialer.js';

const PROXY = '127.0.0.3';
let kamailio: Kamailio;
let service: TestService;
let proxyPort: number;
let sippPort: number;
const dialers: WrtcDialer[] = [];
const sipps: SippRun[] = [];

before(async () => {
  proxyPort = await freeUdpPort();
  sippPort = await freePort();
  service = await startTestService({
    trunkPort: proxyPort,
    overrides: { sip: { trunk: { host: PROXY, allowedSources: [PROXY] } } },
  });
  kamailio = await startKamailio({ address: PROXY, udpPort: proxyPort, sippPort, servicePort: service.sipPort });
});

after(async () => {
  for (const d of dialers) d.close();
  for (const s of sipps) s.kill();
  await service?.stop();
  await kamailio?.stop();
});

async function dialer(phone: string): Promise<WrtcDialer> {
  const user = await service.users.create({ phone, enrolled: true });
  const { token } = await service.tokens.issue(user.id, 3_600_000);
  const d = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token, { toneHz: 440 });
  dialers.push(d);
  await d.connect();
  return d;
}

function sipp(o: Parameters<typeof startSipp>[0]): SippRun {
  const run = startSipp({ timeoutMs: 30_000, ...o });
  sipps.push(run);
  return run;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A request Kamailio relayed in a dialog, from `fromPort` on 127.0.0.1, with a Route naming Kamailio. */
const routed = (method: string, fromPort: number): RegExp =>
  new RegExp(`REQ ${method} \\S+ from udp:127\\.0\\.0\\.1:${fromPort} route=<sip:${esc(PROXY)}:${proxyPort};lr`);

// One sipp port behind the proxy: the cases run one after another.

test('outbound through Kamailio, we hang up: ACK and BYE follow the route set', async () => {
  const from = kamailio.mark();
  const run = sipp({ scenario: 'uas-answer-rr', port: sippPort, remote: `${PROXY}:${proxyPort}` });
  await run.ready;
  const d = await dialer('+15550003001');
  const call = await d.call('+15550002222');
  await d.waitConnected(call.callId);
  await kamailio.waitForLog(routed('ACK', service.sipPort), from);
  d.hangup(call.callId);
  assert.equal(await d.waitEnded(call.callId), 'local-hangup');
  await kamailio.waitForLog(routed('BYE', service.sipPort), from);
  const res = await run.done;
  assert.equal(res.successful, 1, res.errors + res.stderr);
  assert.doesNotMatch(kamailio.log.slice(from), /NOROUTE/, 'no in-dialog request skipped the route set');
});

test('outbound through Kamailio, the far end hangs up: its BYE reaches us through the proxy', async () => {
  const from = kamailio.mark();
  const run = sipp({ scenario: 'uas-answer-rr', port: sippPort, remote: `${PROXY}:${proxyPort}`, keys: { bye_after: '500' } });
  await run.ready;
  const d = await dialer('+15550003002');
  const call = await d.call('+15550002222');
  await d.waitConnected(call.callId);
  assert.equal(await d.waitEnded(call.callId, 15_000), 'remote-hangup');
  await kamailio.waitForLog(routed('BYE', sippPort), from);
  const res = await run.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
});

test('inbound through Kamailio, the caller hangs up: ACK and BYE reach us along the route set', async () => {
  const from = kamailio.mark();
  const d = await dialer('+15550003003');
  const run = sipp({ scenario: 'uac-call', port: sippPort, remote: `${PROXY}:${proxyPort}`, service: '+15550003003', pauseMs: 800 });
  const incoming = await d.waitIncoming();
  await d.accept(incoming.callId);
  await d.waitConnected(incoming.callId);
  assert.equal(await d.waitEnded(incoming.callId, 15_000), 'remote-hangup');
  await kamailio.waitForLog(routed('ACK', sippPort), from);
  await kamailio.waitForLog(routed('BYE', sippPort), from);
  const res = await run.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
});

test('inbound through Kamailio, we hang up: our BYE follows the route set (UAS side, not reversed)', async () => {
  const from = kamailio.mark();
  const d = await dialer('+15550003004');
  const run = sipp({ scenario: 'uac-wait-bye', port: sippPort, remote: `${PROXY}:${proxyPort}`, service: '+15550003004' });
  const incoming = await d.waitIncoming();
  await d.accept(incoming.callId);
  await d.waitConnected(incoming.callId);
  // Media can flow before our 200 is out: hang up once the caller's ACK has come through the proxy.
  await kamailio.waitForLog(routed('ACK', sippPort), from);
  d.hangup(incoming.callId);
  assert.equal(await d.waitEnded(incoming.callId), 'local-hangup');
  await kamailio.waitForLog(routed('BYE', service.sipPort), from);
  const res = await run.done;
  assert.equal(res.code, 0, res.errors + res.stderr);
  assert.doesNotMatch(kamailio.log.slice(from), /NOROUTE/);
});
