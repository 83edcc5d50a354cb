import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createHttp } from '../../src/api/http.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import type { Config } from '../../src/config/schema.js';
import { webhooksPlugin } from '../../src/webhooks/plugin.js';
import type { WebhookEvent } from '../../src/webhooks/event.js';
import type { TestDatabase } from '../helpers/db.js';

export const TWILIO_TOKEN = 'twilio-auth-token-0123456789abcdef';
export const GENERIC_SECRET = 'generic-shared-secret-fedcba9876543210';
export const PUBLIC_BASE = 'https://hooks.example.com';

/** A running service app (the real createHttp) with the webhook plugin on 127.0.0.1, a real database, captured logs. */
export interface Ingress {
  base: string;
  app: FastifyInstance;
  handle: DatabaseHandle;
  events: WebhookEvent[];
  logs: string[];
  telnyxKey: KeyObject;
  telnyxPublicB64: string;
  config: Config['webhooks'];
  /** Makes the next `n` handler calls throw. */
  failNext(n: number): void;
  post(provider: string, body: string | Buffer, headers: Record<string, string>, path?: string): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startIngress(target: TestDatabase, overrides: Partial<Config['webhooks']> = {}, handlerDelayMs = 0): Promise<Ingress> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const telnyxPublicB64 = raw.toString('base64');
  const config: Config['webhooks'] = {
    maxBodyBytes: 4096,
    timestampToleranceSeconds: 300,
    publicBaseUrl: PUBLIC_BASE,
    twilio: { authToken: TWILIO_TOKEN },
    telnyx: { publicKey: telnyxPublicB64 },
    generic: { secret: GENERIC_SECRET },
    ...overrides,
  };
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const handle = await openDatabase(target.url);
  const events: WebhookEvent[] = [];
  let failures = 0;
  const { app } = await createHttp({ log, webSourceDir: '/nonexistent', webBuildDir: '/nonexistent', ready: async () => ({}), bodyLimitBytes: 65536 });
  await app.register(webhooksPlugin({
    db: handle.db,
    config,
    log,
    async onEvent(e) {
      if (handlerDelayMs) await new Promise((r) => setTimeout(r, handlerDelayMs));
      if (failures > 0) {
        failures -= 1;
        throw new Error('reconciliation unavailable');
      }
      events.push(e);
    },
  }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const base = `http://127.0.0.1:${address.port}`;
  return {
    base, app, handle, events, logs, telnyxKey: privateKey, telnyxPublicB64, config,
    failNext: (n) => void (failures = n),
    async post(provider, body, headers, path = `/v1/webhooks/${provider}`) {
      const res = await fetch(`${base}${path}`, { method: 'POST', body, headers });
      const text = await res.text();
      return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    async close() {
      await app.close();
      await handle.close();
    },
  };
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Twilio's scheme written independently of src/: one string, params sorted by name with localeCompare-free ordering. */
export function twilioSign(url: string, form: string, token = TWILIO_TOKEN): string {
  const pairs = form.split('&').filter(Boolean).map((kv) => kv.split('=').map((s) => decodeURIComponent(s.replace(/\+/g, ' '))) as [string, string]);
  pairs.sort((a, b) => (a[0] === b[0] ? 0 : a[0] < b[0] ? -1 : 1));
  const data = url + pairs.map(([k, v]) => k + v).join('');
  return createHmac('sha1', Buffer.from(token, 'utf8')).update(Buffer.from(data, 'utf8')).digest().toString('base64');
}

export function twilioForm(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export function telnyxHeaders(key: KeyObject, body: string, ts = nowSeconds()): Record<string, string> {
  const signature = sign(null, Buffer.from(`${ts}|${body}`), key).toString('base64');
  return { 'content-type': 'application/json', 'telnyx-signature-ed25519': signature, 'telnyx-timestamp': String(ts) };
}

export function telnyxBody(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    data: {
      record_type: 'event',
      event_type: 'call.hangup',
      id,
      occurred_at: '2018-02-02T22:25:27.521992Z',
      payload: {
        call_control_id: 'v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg',
        call_session_id: '428c31b6-7af4-4bcb-b7f5-5013ef9657c1',
        sip_call_id: 'abc123@10.0.0.1',
        from: '+35319605860',
        to: '+35319605861',
        state: 'hangup',
        hangup_cause: 'normal_clearing',
        sip_headers: [{ name: 'X-Monologue-Call', value: 'call_42' }],
        ...extra,
      },
    },
  });
}

export function genericHeaders(body: string, ts = nowSeconds(), secret = GENERIC_SECRET): Record<string, string> {
  const hex = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
  return { 'content-type': 'application/json', 'x-monologue-timestamp': String(ts), 'x-monologue-signature': hex };
}
