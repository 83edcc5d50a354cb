import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

const NUMBER = '+15550001234';
const TOKEN = 'mlt_Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODkwYWJjZGVm';
const SDP = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';
const SECRET = 'hunter2-trunk-password';

function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger('debug', sink) };
}

test('no number, token, SDP or password reaches a log line, however deep it is nested', () => {
  const { lines, log } = capture();
  const failure = Object.assign(new Error(`dial ${NUMBER} failed with ${TOKEN}`), { code: 'X', sdp: SDP, detail: { password: SECRET } });
  log.info(
    {
      call: { legs: [{ remote: { to: NUMBER, offer: { sdp: SDP } } }, { note: `caller ${NUMBER}` }] },
      session: { auth: { token: TOKEN, header: `Bearer ${TOKEN}` } },
      trunk: { credentials: { Password: SECRET } },
      deep: { a: { b: { c: { d: { e: { f: { g: { h: { i: NUMBER } } } } } } } } },
      nested: { failure },
      buffer: Buffer.from(SDP),
    },
    `message naming ${NUMBER} and ${TOKEN}`,
  );
  log.warn({ err: failure }, 'an error at the top');
  log.child({ from: NUMBER, about: `for ${NUMBER}` }).error(SDP);
  const circular: Record<string, unknown> = { phone: NUMBER };
  circular.self = circular;
  log.debug({ circular }, 'cycles do not hang the logger');

  assert.equal(lines.length, 4);
  const all = lines.join('\n');
  for (const [what, secret] of [['number', '5550001234'], ['token', TOKEN.slice(4)], ['SDP', 'm=audio'], ['SDP', 'IN IP4'], ['password', SECRET]] as const) {
    assert.ok(!all.includes(secret), `${what} leaked: ${all}`);
  }
  // What stays is still useful: masked digits, error codes and messages, the stack.
  const first = JSON.parse(lines[0]!) as { msg: string; nested: { failure: { code: string; message: string; stack: string } } };
  assert.match(first.msg, /message naming …34 and mlt_\[redacted\]/);
  assert.equal(first.nested.failure.code, 'X');
  assert.match(first.nested.failure.message, /dial …34 failed/);
  assert.match(first.nested.failure.stack, /log\.test\.ts/);
  const second = JSON.parse(lines[1]!) as { err: { type: string; sdp: string } };
  assert.equal(second.err.type, 'Error');
  assert.equal(second.err.sdp, '[redacted]');
});
