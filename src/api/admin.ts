import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { Config } from '../config/load.js';
import type { ApiDeps } from './deps.js';
import { bearer } from './auth.js';
import { adminKeyChecker } from './admin-key.js';
import { ApiError, installApiErrors } from './replies.js';
import { adminAccountRoutes } from './admin-accounts.js';
import { adminPayoutRoutes } from './admin-payouts.js';

/**
 * The admin API for the app's backend (issue 9 item 9): its own listener, never the public one, so that
 * a proxy or firewall mistake on the dialer's port cannot reach it, and its routes do not exist there.
 * Off unless both `admin.port` and `admin.keyHash` are set.
 */
export function adminEnabled(admin: Config['admin']): boolean {
  return admin.port > 0 && admin.keyHash !== '';
}

/** The one 401 of the admin listener: the same for a missing, malformed and wrong key, on every route. */
export function adminUnauthenticated(): ApiError {
  return new ApiError(401, 'UNAUTHENTICATED', 'send the admin key: Authorization: Bearer <admin key>');
}

/**
 * The admin listener's app (not listening yet; service.ts listens and closes it). Routes live under
 * `/admin/v1`, all behind the admin key; `/admin/openapi.json` describes them.
 */
export async function createAdminHttp(deps: ApiDeps): Promise<FastifyInstance> {
  const keyMatches = adminKeyChecker(deps.config.admin.keyHash);
  const app = Fastify({
    loggerInstance: deps.log.child({ mod: 'admin-http' }) as FastifyBaseLogger,
    bodyLimit: deps.config.http.bodyLimitBytes,
    // Refuse rather than strip or coerce: a body with a field the route does not take (`userId`, `state`)
    // is a 400 and changes nothing, instead of being half-applied without a word.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  installApiErrors(app, deps.log);
  // The main listener's swagger instance documents /v1; this one documents only this listener.
  await app.register(swagger, {
    openapi: {
      info: { title: 'Monologue admin API', version: '1', description: 'For the app backend only; served on the admin listener, which must not be reachable from the internet.' },
      components: { securitySchemes: { adminKey: { type: 'http', scheme: 'bearer', description: 'the admin key' } } },
      security: [{ adminKey: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(rateLimit, {
    global: true,
    max: deps.config.admin.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => `admin-ip:${req.ip}`,
    // As on /v1: only a refusal carries headers, so every 401 and 404 stays byte-identical.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    errorResponseBuilder: (_req, ctx) => new ApiError(429, 'RATE_LIMITED', `too many requests; retry in ${ctx.after}`),
  });
  app.get('/admin/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());
  await app.register(
    async (scope) => {
      installAdminAuth(scope, keyMatches, deps.config.api.authFailuresPerMinute);
      // No body at all reads as `{}`: a route whose fields are all optional (a token's ttlHours, a payout's
      // reason) takes a bare POST; a body that is there is validated as sent.
      scope.addHook('preValidation', async (req) => {
        if (req.body === undefined && req.routeOptions.schema?.body) req.body = {};
      });
      await scope.register(async (s) => adminAccountRoutes(s, deps));
      await scope.register(async (s) => adminPayoutRoutes(s, deps));
    },
    { prefix: '/admin/v1' },
  );
  return app;
}

/**
 * Every route in this scope needs the admin key, whatever it declares; a route that does not declare
 * `access: 'admin'` is refused at startup, so a route copied from /v1 cannot slip in unnoticed.
 * Failures are counted per source address: past `failuresPerMinute`, further failures answer 429.
 */
function installAdminAuth(scope: FastifyInstance, keyMatches: (presented: string | undefined) => boolean, failuresPerMinute: number): void {
  scope.addHook('onRoute', (route) => {
    const access = (route.config as { access?: string } | undefined)?.access;
    if (access !== 'admin') throw new Error(`admin route ${[route.method].flat().join(',')} ${route.url} must declare config.access 'admin' (it declares ${access ?? 'nothing'})`);
  });
  const failures = scope.createRateLimit({ max: failuresPerMinute, timeWindow: 60_000, keyGenerator: (req) => `admin-authfail:${req.ip}` });
  scope.addHook('onRequest', async (req, reply) => {
    if (keyMatches(bearer(req))) return;
    const limit = await failures(req);
    if (!limit.isAllowed && limit.isExceeded) {
      reply.header('retry-after', String(limit.ttlInSeconds));
      throw new ApiError(429, 'RATE_LIMITED', `too many failed authentications from this address; retry in ${limit.ttlInSeconds} s`);
    }
    throw adminUnauthenticated();
  });
}
