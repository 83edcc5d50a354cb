/** Malformed SIP datagrams, shared by the endpoint test and the whole-service barrage. */
import { randomBytes } from 'node:crypto';
import { request } from './raw.js';

/** [name, datagram(port), expected status of the last reply or null for "no reply"]. */
export type MalformedCase = [string, (port: number) => string | Buffer, number | null];

const drop = (re: RegExp) => (p: number) => request('OPTIONS', p).replace(re, '');
export const MALFORMED_CASES: MalformedCase[] = [
  ['missing Call-ID', drop(/^Call-ID: .*\r\n/m), null],
  ['missing CSeq', drop(/^CSeq: .*\r\n/m), null],
  ['bad CSeq', (p) => request('OPTIONS', p).replace(/^CSeq: .*$/m, 'CSeq: abc OPTIONS'), null],
  ['CSeq method mismatch', (p) => request('OPTIONS', p).replace(/^CSeq: .*$/m, 'CSeq: 1 INVITE'), 400],
  ['huge CSeq number', (p) => request('OPTIONS', p).replace(/^CSeq: .*$/m, 'CSeq: 99999999999999 OPTIONS'), 400],
  ['Content-Length larger than body', (p) => request('OPTIONS', p, { body: 'abc' }).replace('Content-Length: 3', 'Content-Length: 300'), 400],
  ['Content-Length smaller than body (extra ignored)', (p) => request('OPTIONS', p, { body: 'abcdef' }).replace('Content-Length: 6', 'Content-Length: 2'), 200],
  ['truncated body', (p) => request('INVITE', p, { body: 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n', headers: 'Content-Type: application/sdp' }).slice(0, -10), 400],
  ['oversized header line (>8 KB)', (p) => request('OPTIONS', p, { headers: `X-Long: ${'a'.repeat(9000)}` }), 400],
  ['message near 64 KB', (p) => request('OPTIONS', p, { body: 'x'.repeat(65_000) }), 413],
  ['NUL in headers', (p) => request('OPTIONS', p, { headers: 'X-Nul: a\u0000b' }), 400],
  ['invalid UTF-8 in headers', (p) => request('OPTIONS', p, { headers: 'X-Bad: \xff\xfe\xfd' }), 400],
  ['unknown method', (p) => request('FROBNICATE', p), 501],
  ['known method we do not serve (REGISTER)', (p) => request('REGISTER', p), 405],
  ['wrong SIP version', (p) => request('OPTIONS', p).replace('SIP/2.0\r\n', 'SIP/3.0\r\n'), 505],
  ['no Via', drop(/^Via: .*\r\n/m), null],
  ['bad Via', (p) => request('OPTIONS', p).replace(/^Via: .*$/m, 'Via: garbage'), null],
  ['request line garbage', (p) => request('OPTIONS', p).replace(/^.*\r\n/, '%%%% \u0001\r\n'), null],
  ['empty datagram', () => Buffer.alloc(0), null],
  ['CRLF keep-alive', () => '\r\n\r\n', null],
  ['binary noise', () => randomBytes(1200), null],
  ['header without colon', (p) => request('OPTIONS', p, { headers: 'NoColonHere' }), null],
  ['bad From URI', (p) => request('OPTIONS', p).replace(/^From: .*$/m, 'From: <http//nope>;tag=1'), 400],
  ['bad Request-URI', (p) => request('OPTIONS', p).replace(/^OPTIONS \S+/, 'OPTIONS :::'), 400],
  ['negative Content-Length', (p) => request('OPTIONS', p).replace('Content-Length: 0', 'Content-Length: -5'), 400],
  ['duplicate, conflicting Content-Length', (p) => request('OPTIONS', p, { body: 'abc' }).replace('Content-Length: 3', 'Content-Length: 3\r\nContent-Length: 1'), 400],
  ['response for an unknown transaction', (p) => request('OPTIONS', p).replace(/^.*\r\n/, 'SIP/2.0 200 OK\r\n'), null],
  ['ACK for an unknown dialog', (p) => request('ACK', p, { toTag: 'gone' }), null],
  ['CANCEL for an unknown transaction', (p) => request('CANCEL', p), 481],
  ['BYE for an unknown dialog', (p) => request('BYE', p, { toTag: 'gone' }), 481],
  ['re-INVITE for an unknown dialog', (p) => request('INVITE', p, { toTag: 'gone' }), 481],
  ['INVITE with garbage SDP and no Content-Type', (p) => request('INVITE', p, { body: '\u0001\u0002garbage' }), 488],
  ['Request-URI and To with a huge user part', (p) => request('INVITE', p, { headers: 'Content-Type: application/sdp', body: 'v=0\r\n' }).replace(/^To: .*$/m, `To: <sip:${'9'.repeat(500)}@127.0.0.1>`).replace(/^INVITE sip:[^@]*@/, `INVITE sip:${'9'.repeat(500)}@`), 404],
  ['header param __proto__', (p) => request('OPTIONS', p).replace(/^Via: (.*)$/m, 'Via: $1;__proto__=x;constructor=y'), 200],
];

