import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { formParams, twilioAdapter, twilioSignature } from '../../src/webhooks/twilio.js';
import { telnyxAdapter, telnyxPublicKey } from '../../src/webhooks/telnyx.js';
import { genericSignature } from '../../src/webhooks/generic.js';
import { safeEqual } from '../../src/webhooks/signing.js';
import { WebhookError } from '../../src/webhooks/event.js';

describe('twilio signature', () => {
  // Twilio's published worked example (auth token 12345): quoted as "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" from
  // https://www.twilio.com/docs/usage/security#validating-requests by many independent implementations, and the older
  // twilio-php "Validate Incoming Requests" page gives "RSOYDt4T1cUTdK1PDd93/VVr8B8=" for the same call with +14158675309.
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  const params = (n: string): Array<[string, string]> => [
    ['CallSid', 'CA1234567890ABCDE'], ['Caller', n], ['Digits', '1234'], ['From', n], ['To', '+18005551212'],
  ];

  it("matches Twilio's published examples", () => {
    assert.equal(twilioSignature('12345', url, params('+12349013030')), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
    assert.equal(twilioSignature('12345', url, params('+14158675309')), 'RSOYDt4T1cUTdK1PDd93/VVr8B8=');
  });

  it('verifies the published example as it arrives on the wire: form-encoded, out of order', () => {
    const body = Buffer.from('To=%2B18005551212&CallSid=CA1234567890ABCDE&Digits=1234&From=%2B12349013030&Caller=%2B12349013030');
    assert.deepEqual(formParams(body).sort(), params('+12349013030').sort());
    const adapter = twilioAdapter('12345');
    // The example has no CallStatus: the signature passes and the body is then refused as incomplete, not as forged.
    assert.throws(
      () => adapter.accept({ headers: { 'x-twilio-signature': '0/KCTR6DLpKmkAf8muzZqo1nDgQ=', 'content-type': 'application/x-www-form-urlencoded' }, rawBody: body, url, nowMs: 0 }),
      (e: WebhookError) => e.code === 'WEBHOOK_BAD_BODY',
    );
    assert.throws(
      () => adapter.accept({ headers: { 'x-twilio-signature': '0/KCTR6DLpKmkAf8muzZqo1nDgQ=', 'content-type': 'application/x-www-form-urlencoded' }, rawBody: body, url: url.replace('bar=2', 'bar=3'), nowMs: 0 }),
      (e: WebhookError) => e.code === 'WEBHOOK_SIGNATURE',
    );
  });

  it('decodes + and %XX before signing, as Twilio signs the decoded values', () => {
    const body = Buffer.from('B=hello+world&A=%C3%A9%26');
    const expected = createHmac('sha1', 't').update('https://x/yAé&Bhello world').digest('base64');
    assert.equal(twilioSignature('t', 'https://x/y', formParams(body)), expected);
  });
});

describe('telnyx key and signature', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const forms = {
    raw: der.subarray(-32).toString('base64'),
    spki: der.toString('base64'),
    pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };

  it('accepts the key as base64 raw 32 bytes, base64 SPKI DER and PEM', () => {
    const body = Buffer.from('{"data":{"id":"e1","event_type":"call.hangup","payload":{}}}');
    const ts = Math.floor(Date.now() / 1000);
    const sig = sign(null, Buffer.concat([Buffer.from(`${ts}|`), body]), privateKey).toString('base64');
    for (const [name, key] of Object.entries(forms)) {
      assert.equal(telnyxPublicKey(key).asymmetricKeyType, 'ed25519', name);
      const e = telnyxAdapter(key, 300).accept({ headers: { 'telnyx-signature-ed25519': sig, 'telnyx-timestamp': String(ts) }, rawBody: body, url: '', nowMs: Date.now() });
      assert.deepEqual(e, { provider: 'telnyx', eventId: 'e1', type: 'call.hangup' });
    }
  });

  it('refuses keys that are not Ed25519 public keys at start-up', () => {
    const { publicKey: rsa } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const bad of ['AAAA', 'not base64 !!', rsa.export({ format: 'pem', type: 'spki' }).toString()]) {
      assert.throws(() => telnyxPublicKey(bad), (e: WebhookError) => e.code === 'WEBHOOK_CONFIG_INVALID' && !e.message.includes(bad));
    }
  });
});

describe('generic signature and comparison', () => {
  it('is HMAC-SHA256 over timestamp, a dot, and the raw body bytes', () => {
    // Independent vector: the whole signed string hashed in one piece.
    const body = Buffer.from('{"id":"e","type":"call.completed","n":"\u00e9"}');
    const expected = createHmac('sha256', Buffer.from('s3cret')).update(Buffer.concat([Buffer.from('1700000000.'), body])).digest('hex');
    assert.equal(genericSignature('s3cret', '1700000000', body).toString('hex'), expected);
  });

  it('compares in constant time and treats different lengths as different', () => {
    assert.equal(safeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
    assert.equal(safeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
    assert.equal(safeEqual(Buffer.from('abc'), Buffer.from('abcd')), false);
    assert.equal(safeEqual(Buffer.alloc(0), Buffer.alloc(0)), true);
  });
});
