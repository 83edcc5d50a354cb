import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.js';
import type { Tables } from '../db/tables.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { WEBHOOK_PROVIDERS, WebhookCodes, WebhookError, type ProviderAdapter, type WebhookEvent, type WebhookProvider } from './event.js';
import { twilioAdapter } from './twilio.js';
import { telnyxAdapter } from './telnyx.js';
import { genericAdapter } from './generic.js';
import { claimEvent, releaseEvent } from './ledger.js';

export interface WebhooksOptions {
  db: Kysely<Tables>;
  config: Config['webhooks'];
  log: Logger;
  /** Called once per new event id; the provider gets 200 only after it resolves, and a 5xx (and retries) if it throws. */
  onEvent(event: WebhookEvent): Promise<void>;
  /** Told each signature check's outcome, for watchers such as metrics; it must not throw. */
  onVerdict?(provider: WebhookProvider, result: 'verified' | 'rejected'): void;
}

export const WEBHOOK_ROUTE = '/v1/webhooks/:provider';

/**
 * `POST /v1/webhooks/:provider` for `twilio`, `telnyx` and `generic`: verify the signature over the raw body,
 * deduplicate by `(provider, event id)`, hand the normalized event to `onEvent`.
 * Register it on the service's app: `app.register(webhooksPlugin({ db, config: config.webhooks, log, onEvent }))`.
 * Throws `WEBHOOK_CONFIG_INVALID` at once if a configured key cannot be used.
 */
export function webhooksPlugin(opts: WebhooksOptions): FastifyPluginAsync {
  const adapters = createAdapters(opts.config);
  const log = opts.log.child({ mod: 'webhooks' });
  const bodyLimit = opts.config.maxBodyBytes;

  return async (app) => {
    // Every body stays raw bytes here (signatures cover the exact bytes), whatever its content type; limited before reading.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
    app.setErrorHandler((err: FastifyError | WebhookError, req, reply) => sendError(err, req, reply, log));

    app.post<{ Params: { provider: string } }>(WEBHOOK_ROUTE, {
      bodyLimit,
      schema: {
        params: { type: 'object', properties: { provider: { type: 'string' } }, required: ['provider'] },
        response: {
          200: {
            type: 'object',
            properties: { ok: { type: 'boolean' }, duplicate: { type: 'boolean' } },
            required: ['ok'],
            additionalProperties: false,
          },
          '4xx': ERROR_SCHEMA,
          '5xx': ERROR_SCHEMA,
        },
      },
      // Unknown or unconfigured providers are refused before the body is read.
      onRequest: async (req) => {
        adapterFor(adapters, (req.params as { provider?: string }).provider);
      },
    }, async (req) => {
      const provider = req.params.provider;
      const adapter = adapterFor(adapters, provider);
      const nowMs = Date.now();
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let event: WebhookEvent;
      try {
        event = adapter.accept({ headers: req.headers, rawBody, url: signedUrl(req, opts.config.publicBaseUrl), nowMs });
      } catch (err) {
        opts.onVerdict?.(adapter.provider, 'rejected');
        throw err;
      }
      opts.onVerdict?.(adapter.provider, 'verified');

      if (!(await claimEvent(opts.db, event, nowMs))) {
        log.info({ provider, eventId: event.eventId, type: event.type }, 'webhook duplicate ignored');
        return { ok: true, duplicate: true };
      }
      try {
        await opts.onEvent(event);
      } catch (err) {
        await releaseEvent(opts.db, event).catch((releaseErr: unknown) =>
          log.error({ provider, eventId: event.eventId, err: errorMessage(releaseErr) }, 'webhook claim not released; a retry will be taken for a duplicate'));
        log.error({ provider, eventId: event.eventId, type: event.type, err: errorMessage(err) }, 'webhook handler failed; the provider will retry');
        throw new WebhookError(WebhookCodes.handlerFailed, 'the event could not be processed; retry later', { cause: err });
      }
      log.info({ provider, eventId: event.eventId, type: event.type, status: event.status }, 'webhook accepted');
      return { ok: true };
    });
  };
}

const ERROR_SCHEMA = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
  required: ['code', 'message'],
  additionalProperties: false,
} as const;

type Adapters = ReadonlyMap<WebhookProvider, ProviderAdapter | undefined>;

/** One adapter per provider whose secret is configured; `undefined` marks a known provider without one. */
function createAdapters(config: Config['webhooks']): Adapters {
  const tolerance = config.timestampToleranceSeconds;
  return new Map<WebhookProvider, ProviderAdapter | undefined>([
    ['twilio', config.twilio.authToken ? twilioAdapter(config.twilio.authToken) : undefined],
    ['telnyx', config.telnyx.publicKey ? telnyxAdapter(config.telnyx.publicKey, tolerance) : undefined],
    ['generic', config.generic.secret ? genericAdapter(config.generic.secret, tolerance) : undefined],
  ]);
}

function adapterFor(adapters: Adapters, name: string | undefined): ProviderAdapter {
  const provider = WEBHOOK_PROVIDERS.find((p) => p === name);
  if (provider === undefined) throw new WebhookError(WebhookCodes.unknownProvider, 'no such webhook provider (twilio, telnyx, generic)');
  const adapter = adapters.get(provider);
  if (adapter === undefined) {
    throw new WebhookError(WebhookCodes.notConfigured, `webhooks from ${provider} are not enabled: its secret is not configured (webhooks.${provider})`);
  }
  return adapter;
}

/** The URL the provider signed: the configured public base plus our path and query, else this request's own. */
function signedUrl(req: FastifyRequest, publicBaseUrl: string): string {
  const base = publicBaseUrl ? publicBaseUrl.replace(/\/+$/, '') : `${req.protocol}://${req.host}`;
  return `${base}${req.url}`;
}

function sendError(err: FastifyError | WebhookError, req: FastifyRequest, reply: FastifyReply, log: Logger): FastifyReply {
  let code: string;
  let status: number;
  let message: string;
  if (err instanceof WebhookError) {
    ({ code, statusCode: status, message } = err);
  } else if (err.statusCode === 413) {
    [code, status, message] = [WebhookCodes.tooLarge, 413, 'body is larger than webhooks.maxBodyBytes'];
  } else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    [code, status, message] = [WebhookCodes.badBody, 400, err.message];
  } else {
    log.error({ err: errorMessage(err) }, 'webhook request failed');
    [code, status, message] = ['WEBHOOK_INTERNAL', 500, 'internal error'];
  }
  if (status < 500) {
    // The provider name comes from the path: quote it only if it is one of ours.
    const provider = WEBHOOK_PROVIDERS.find((p) => p === (req.params as { provider?: string } | undefined)?.provider);
    log.warn({ provider, code, status }, 'webhook refused');
  }
  return reply.code(status).send({ code, message });
}
