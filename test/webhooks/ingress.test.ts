import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import {
  GENERIC_SECRET, PUBLIC_BASE, TWILIO_TOKEN, genericHeaders, nowSeconds, startIngress, telnyxBody, telnyxHeaders,
  twilioForm, twilioSign, type Ingress,
} from './harness.js';

const TWILIO_PATH = '/v1/webhooks/twilio';
const PHONE = '+15551234567';

function twilioFields(status: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: 'AC00000000000000000000000000000000',
    CallSid: 'CA1234567890abcdef1234567890abcdef',
    CallStatus: status,
    CallDuration: '42',
    From: PHONE,
    To: '+15557654321',
    SipCallId: 'a84b4c76e66710@pc33.example.com',
    'SipHeader_X-Monologue-Call': 'call_7',
    Timestamp: 'Wed, 21 Jun 2017 01:14:36 +0000',
    ...extra,
  };
}

for (const [kind, fresh] of databaseKinds) {
  describe(`webhook ingress on ${kind}`, () => {
    let target: TestDatabase;
    let ingress: Ingress;
    const signatures: string[] = [];
    before(async () => {
      target = await fresh();
      ingress = await startIngress(target);
    });
    after(async () => {
      // Nothing secret, no signature and no phone number ever reached a log line.
      const all = ingress.logs.join('');
      assert.ok(all.length > 0, 'something was logged');
      for (const forbidden of [TWILIO_TOKEN, GENERIC_SECRET, ingress.telnyxPublicB64, PHONE, '+35319605860', ...signatures]) {
        assert.ok(!all.includes(forbidden), `log contains ${forbidden.slice(0, 6)}…`);
      }
      await ingress.close();
      await target.drop();
    });

    describe('twilio', () => {
      const send = (form: string, signature: string | undefined, path = TWILIO_PATH) => {
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
        if (signature !== undefined) headers['x-twilio-signature'] = signature;
        return ingress.post('twilio', form, headers, path);
      };

      it('accepts a signed status callback and normalizes it', async () => {
        const form = twilioForm(twilioFields('completed', { SequenceNumber: '3' }));
        const sig = twilioSign(`${PUBLIC_BASE}${TWILIO_PATH}`, form);
        signatures.push(sig);
        const before = ingress.events.length;
        const res = await send(form, sig);
        assert.equal(res.status, 200);
        assert.deepEqual(res.json, { ok: true });
        assert.deepEqual(ingress.events.slice(before), [{
          provider: 'twilio',
          eventId: 'CA1234567890abcdef1234567890abcdef:completed:3',
          type: 'call.completed',
          providerCallId: 'CA1234567890abcdef1234567890abcdef',
          status: 'completed',
          sipCallId: 'a84b4c76e66710@pc33.example.com',
          callRef: 'call_7',
          durationSeconds: 42,
          occurredAt: Date.parse('2017-06-21T01:14:36Z'),
        }]);
        const replay = await send(form, sig);
        assert.equal(replay.status, 200);
        assert.deepEqual(replay.json, { ok: true, duplicate: true });
        assert.equal(ingress.events.length, before + 1, 'handler not called for the replay');
      });

      it('signs the query too and refuses a tampered URL, body, signature or a missing header', async () => {
        const form = twilioForm(twilioFields('ringing'));
        const path = `${TWILIO_PATH}?tenant=a`;
        const sig = twilioSign(`${PUBLIC_BASE}${path}`, form);
        signatures.push(sig);
        const refusals = [
          await send(form, sig, `${TWILIO_PATH}?tenant=b`),
          await send(form, sig, TWILIO_PATH),
          await send(form.replace('CallDuration=42', 'CallDuration=4200'), sig, path),
          await send(`${form}&Extra=1`, sig, path),
          await send(form, twilioSign(`${PUBLIC_BASE}${path}`, form, 'wrong-token'), path),
          await send(form, sig.slice(0, -2), path),
          await send(form, undefined, path),
          await send(form, '', path),
        ];
        for (const r of refusals) {
          assert.equal(r.status, 401);
          assert.equal(r.json.code, 'WEBHOOK_SIGNATURE');
        }
        const ok = await send(form, sig, path);
        assert.equal(ok.status, 200);
        assert.equal(ingress.events.at(-1)?.eventId, 'CA1234567890abcdef1234567890abcdef:ringing');
      });

      it('refuses a validly signed body without CallSid as a bad body', async () => {
        const form = twilioForm({ CallStatus: 'completed' });
        const r = await send(form, twilioSign(`${PUBLIC_BASE}${TWILIO_PATH}`, form));
        assert.equal(r.status, 400);
        assert.equal(r.json.code, 'WEBHOOK_BAD_BODY');
      });
    });

    describe('telnyx', () => {
      it('accepts a signed call.hangup, normalizes it, and ignores its replay', async () => {
        const body = telnyxBody('0ccc7b54-4df3-4bca-a65a-3da1ecc777f0');
        const headers = telnyxHeaders(ingress.telnyxKey, body);
        signatures.push(headers['telnyx-signature-ed25519']!);
        const before = ingress.events.length;
        const res = await ingress.post('telnyx', body, headers);
        assert.equal(res.status, 200);
        assert.deepEqual(ingress.events.slice(before), [{
          provider: 'telnyx',
          eventId: '0ccc7b54-4df3-4bca-a65a-3da1ecc777f0',
          type: 'call.hangup',
          providerCallId: 'v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg',
          sipCallId: 'abc123@10.0.0.1',
          callRef: 'call_42',
          status: 'hangup',
          occurredAt: Date.parse('2018-02-02T22:25:27.521992Z'),
        }]);
        const replay = await ingress.post('telnyx', body, telnyxHeaders(ingress.telnyxKey, body));
        assert.deepEqual([replay.status, replay.json], [200, { ok: true, duplicate: true }]);
        assert.equal(ingress.events.length, before + 1);
      });

      it('refuses forged, tampered, stale, future and unsigned requests', async () => {
        const body = telnyxBody('evt-telnyx-refusals');
        const good = telnyxHeaders(ingress.telnyxKey, body);
        const { privateKey: otherKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('ed25519'));
        const cases: Array<[Record<string, string>, string, number, string]> = [
          [telnyxHeaders(otherKey, body), body, 401, 'WEBHOOK_SIGNATURE'],
          [good, body.replace('normal_clearing', 'call_rejected'), 401, 'WEBHOOK_SIGNATURE'],
          [{ ...good, 'telnyx-timestamp': String(Number(good['telnyx-timestamp']) + 1) }, body, 401, 'WEBHOOK_SIGNATURE'],
          [telnyxHeaders(ingress.telnyxKey, body, nowSeconds() - 301), body, 401, 'WEBHOOK_STALE'],
          [telnyxHeaders(ingress.telnyxKey, body, nowSeconds() + 301), body, 401, 'WEBHOOK_STALE'],
          [{ 'content-type': 'application/json', 'telnyx-timestamp': good['telnyx-timestamp']! }, body, 401, 'WEBHOOK_SIGNATURE'],
          [{ 'content-type': 'application/json', 'telnyx-signature-ed25519': good['telnyx-signature-ed25519']! }, body, 401, 'WEBHOOK_SIGNATURE'],
          [{ ...good, 'telnyx-signature-ed25519': 'AAAA' }, body, 401, 'WEBHOOK_SIGNATURE'],
        ];
        for (const [headers, sent, status, code] of cases) {
          const r = await ingress.post('telnyx', sent, headers);
          assert.deepEqual([r.status, r.json.code], [status, code]);
        }
        const within = await ingress.post('telnyx', body, telnyxHeaders(ingress.telnyxKey, body, nowSeconds() - 250));
        assert.equal(within.status, 200, 'a timestamp inside the tolerance is accepted');
      });

      it('refuses a validly signed body that is not JSON or lacks data.id', async () => {
        for (const body of ['not json', JSON.stringify({ data: { event_type: 'call.hangup' } }), '[]']) {
          const r = await ingress.post('telnyx', body, telnyxHeaders(ingress.telnyxKey, body));
          assert.deepEqual([r.status, r.json.code], [400, 'WEBHOOK_BAD_BODY']);
        }
      });
    });

    describe('generic', () => {
      it('accepts a signed event and normalizes it; a replay is a duplicate', async () => {
        const ts = nowSeconds();
        const body = JSON.stringify({ id: 'gen-1', type: 'call.completed', sipCallId: 'x@y', callRef: 'call_9', durationSeconds: 61, status: 'completed' });
        const headers = genericHeaders(body, ts);
        signatures.push(headers['x-monologue-signature']!);
        const before = ingress.events.length;
        assert.equal((await ingress.post('generic', body, headers)).status, 200);
        assert.deepEqual(ingress.events.slice(before), [{
          provider: 'generic', eventId: 'gen-1', type: 'call.completed', sipCallId: 'x@y', callRef: 'call_9',
          durationSeconds: 61, status: 'completed', occurredAt: ts * 1000,
        }]);
        const replay = await ingress.post('generic', body, genericHeaders(body));
        assert.deepEqual([replay.status, replay.json], [200, { ok: true, duplicate: true }]);
        assert.equal(ingress.events.length, before + 1);
      });

      it('refuses forged, tampered, stale, future and unsigned requests, and bad bodies', async () => {
        const body = JSON.stringify({ id: 'gen-refusals', type: 'call.completed' });
        const good = genericHeaders(body);
        const cases: Array<[Record<string, string>, string, number, string]> = [
          [genericHeaders(body, nowSeconds(), 'other-secret'), body, 401, 'WEBHOOK_SIGNATURE'],
          [good, body.replace('completed', 'failed'), 401, 'WEBHOOK_SIGNATURE'],
          [{ ...good, 'x-monologue-timestamp': String(Number(good['x-monologue-timestamp']) - 1) }, body, 401, 'WEBHOOK_SIGNATURE'],
          [{ ...good, 'x-monologue-signature': good['x-monologue-signature']!.toUpperCase().slice(0, 63) }, body, 401, 'WEBHOOK_SIGNATURE'],
          [genericHeaders(body, nowSeconds() - 1000), body, 401, 'WEBHOOK_STALE'],
          [genericHeaders(body, nowSeconds() + 1000), body, 401, 'WEBHOOK_STALE'],
          [{ 'content-type': 'application/json' }, body, 401, 'WEBHOOK_SIGNATURE'],
          [{ 'content-type': 'application/json', 'x-monologue-signature': good['x-monologue-signature']! }, body, 401, 'WEBHOOK_SIGNATURE'],
        ];
        for (const [headers, sent, status, code] of cases) {
          const r = await ingress.post('generic', sent, headers);
          assert.deepEqual([r.status, r.json.code], [status, code]);
        }
        for (const bad of ['{', JSON.stringify({ type: 'x' }), JSON.stringify({ id: 'g', type: 'x', durationSeconds: -1 }), JSON.stringify({ id: 5, type: 'x' })]) {
          const r = await ingress.post('generic', bad, genericHeaders(bad));
          assert.deepEqual([r.status, r.json.code], [400, 'WEBHOOK_BAD_BODY']);
        }
      });
    });

    it('50 concurrent identical webhooks reach the handler once; 49 are duplicates', async () => {
      const slow = await startIngress(target, {}, 20);
      try {
        const body = JSON.stringify({ id: 'burst-1', type: 'call.completed', durationSeconds: 5 });
        const headers = genericHeaders(body);
        const results = await Promise.all(Array.from({ length: 50 }, () => slow.post('generic', body, headers)));
        assert.ok(results.every((r) => r.status === 200));
        assert.equal(results.filter((r) => r.json.duplicate === true).length, 49);
        assert.equal(slow.events.length, 1);
        const rows = await slow.handle.db.selectFrom('webhook_events').selectAll().where('event_id', '=', 'burst-1').execute();
        assert.equal(rows.length, 1);
      } finally {
        await slow.close();
      }
    });

    it('a failing handler answers 5xx and the retry is processed, not taken for a duplicate', async () => {
      const body = telnyxBody('evt-handler-fails');
      ingress.failNext(1);
      const failed = await ingress.post('telnyx', body, telnyxHeaders(ingress.telnyxKey, body));
      assert.deepEqual([failed.status, failed.json.code], [500, 'WEBHOOK_HANDLER_FAILED']);
      assert.ok(!ingress.events.some((e) => e.eventId === 'evt-handler-fails'));
      const retry = await ingress.post('telnyx', body, telnyxHeaders(ingress.telnyxKey, body));
      assert.deepEqual([retry.status, retry.json], [200, { ok: true }]);
      assert.equal(ingress.events.filter((e) => e.eventId === 'evt-handler-fails').length, 1);
    });

    it('an oversized body is 413 before it is read or verified; unknown providers are 404', async () => {
      const big = JSON.stringify({ id: 'big', type: 'x', pad: 'x'.repeat(5000) });
      const r = await ingress.post('generic', big, genericHeaders(big));
      assert.deepEqual([r.status, r.json.code], [413, 'WEBHOOK_TOO_LARGE']);
      const unsignedBig = await ingress.post('twilio', 'a='.padEnd(10_000, 'b'), { 'content-type': 'application/x-www-form-urlencoded' });
      assert.deepEqual([unsignedBig.status, unsignedBig.json.code], [413, 'WEBHOOK_TOO_LARGE']);
      // Chunked, no Content-Length: still cut off at the limit.
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(1000).fill(120));
          c.close();
        },
      });
      const chunked = await fetch(`${ingress.base}/v1/webhooks/generic`, {
        method: 'POST', body: stream, headers: { 'content-type': 'application/json' }, duplex: 'half',
      } as RequestInit & { duplex: 'half' });
      assert.equal(chunked.status, 413);
      assert.equal(((await chunked.json()) as { code: string }).code, 'WEBHOOK_TOO_LARGE');

      for (const name of ['plivo', 'TWILIO', 'twilio%20', '__proto__', 'constructor']) {
        const u = await ingress.post(name, '{}', { 'content-type': 'application/json' });
        assert.deepEqual([u.status, u.json.code], [404, 'WEBHOOK_UNKNOWN_PROVIDER'], name);
      }
    });
  });
}

describe('webhook ingress configuration', () => {
  it('a provider without a configured secret is refused with WEBHOOK_NOT_CONFIGURED, never accepted unsigned', async () => {
    const [, fresh] = databaseKinds[0]!;
    const target = await fresh();
    const ingress = await startIngress(target, { twilio: { authToken: '' }, telnyx: { publicKey: '' }, generic: { secret: '' } });
    try {
      for (const provider of ['twilio', 'telnyx', 'generic']) {
        const r = await ingress.post(provider, 'CallSid=CA1&CallStatus=completed', { 'content-type': 'application/x-www-form-urlencoded' });
        assert.deepEqual([r.status, r.json.code], [404, 'WEBHOOK_NOT_CONFIGURED']);
        assert.match(String(r.json.message), new RegExp(`webhooks\\.${provider}`));
      }
      assert.equal(ingress.events.length, 0);
    } finally {
      await ingress.close();
      await target.drop();
    }
  });

  it('without publicBaseUrl the signed URL is rebuilt from the request', async () => {
    const [, fresh] = databaseKinds[0]!;
    const target = await fresh();
    const ingress = await startIngress(target, { publicBaseUrl: '' });
    try {
      const form = twilioForm(twilioFields('busy'));
      const host = new URL(ingress.base).host;
      const sig = twilioSign(`http://${host}${TWILIO_PATH}`, form);
      const ok = await ingress.post('twilio', form, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig });
      assert.equal(ok.status, 200);
      const wrongBase = twilioSign(`${PUBLIC_BASE}${TWILIO_PATH}`, form);
      const r = await ingress.post('twilio', form, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': wrongBase });
      assert.equal(r.status, 401);
    } finally {
      await ingress.close();
      await target.drop();
    }
  });
});
