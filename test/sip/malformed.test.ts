import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { startSipp } from '../helpers/sipp.js';
import { inboundRecorder, startEndpoint } from './harness.js';
import { request, statusOf, tcpExchange, udpExchange } from './raw.js';
import { MALFORMED_CASES as CASES } from './malformed-cases.js';

const ANSWER = 'v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0\r\n';
const cleanups: (() => unknown)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

test('malformed SIP never crashes the endpoint; answerable input gets the right status', async () => {
  const rec = inboundRecorder((_o, leg) => { leg.ringing(); leg.answer(ANSWER); });
  const t = await startEndpoint(rec.handler);
  cleanups.push(() => t.ep.close());

  const results = await Promise.all(CASES.map(async ([name, make, expected]) => {
    const got = await udpExchange(t.port, make(t.port), 500);
    return { name, expected, got: got.length ? statusOf(got.at(-1)) ?? -1 : null };
  }));
  const wrong = results.filter((r) => r.got !== r.expected);
  assert.deepEqual(wrong, [], `cases with an unexpected outcome: ${JSON.stringify(wrong)}`);
  assert.ok(CASES.length >= 20);

  // TCP: garbage, a half message then close, an endless header section, then a good OPTIONS.
  await tcpExchange(t.port, [randomBytes(5000)], { end: true });
  await tcpExchange(t.port, [request('OPTIONS', t.port).slice(0, 60)], { end: true });
  await tcpExchange(t.port, ['OPTIONS sip:x SIP/2.0\r\n', 'X: y\r\n'.repeat(20_000)], { ms: 300 });
  await tcpExchange(t.port, [request('OPTIONS', t.port).replace('Content-Length: 0', 'Content-Length: zz')], { end: true });
  await tcpExchange(t.port, [request('OPTIONS', t.port).replace('Content-Length: 0', 'Content-Length: 99999999')], { end: true });
  const tcpOk = await tcpExchange(t.port, [request('OPTIONS', t.port).replace('SIP/2.0/UDP', 'SIP/2.0/TCP')]);
  assert.equal(statusOf(tcpOk), 200);
  const tcpBad = await tcpExchange(t.port, [request('OPTIONS', t.port).replace('SIP/2.0/UDP', 'SIP/2.0/TCP').replace(/^CSeq: .*$/m, 'CSeq: 1 BYE')]);
  assert.equal(statusOf(tcpBad), 400);

  // Still fully working: a good call from sipp over UDP and over TCP.
  for (const transport of ['u1', 't1'] as const) {
    const res = await startSipp({ scenario: 'uac-call', port: t.sippPort, remote: `127.0.0.1:${t.port}`, transport, service: '+15550001111', pauseMs: 100 }).done;
    assert.equal(res.code, 0, res.errors + res.stderr);
  }
  assert.equal(rec.events.filter((e) => e.type === 'ended').length, 2);
});
