import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { createHash } from 'node:crypto';
import type { ApiDeps } from './deps.js';
import { bearer, installUserAuth } from './auth.js';
import { ApiError, installApiErrors } from './replies.js';
import { meRoutes } from './me.js';
import { consentRoutes } from './consent.js';
import { callRoutes } from './calls.js';
import { recordingRoutes } from './recordings.js';
import { mediaRoutes } from './media.js';
import { earningRoutes } from './earnings.js';
import { payoutRoutes } from './payouts.js';
import { auditRoutes } from './audit.js';
import { exportRoutes } from './export.js';
import { deletionRoutes } from './deletion.js';

/**
 * The owner-only API under /v1 (DESIGN §4.3). Cross-cutting rules live here, in hooks: authentication,
 * rate limits, the error format. Each resource is its own plugin; every query filters by `req.owner`.
 */
export async function ownerApi(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  installApiErrors(app, deps.log);
  await app.register(rateLimit, {
    global: true,
    max: deps.config.api.rateLimitPerMinute,
    timeWindow: 60_000,
    // Per token when there is one (hashed: the limiter's keys are not secrets), else per address.
    keyGenerator: (req) => {
      const t = bearer(req);
      return t ? `tok:${createHash('sha256').update(t).digest('base64url')}` : `ip:${req.ip}`;
    },
    // Only a refusal carries headers: counters on every response would make a 404 for a foreign id
    // differ from one for a missing id.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    errorResponseBuilder: (_req, ctx) => new ApiError(429, 'RATE_LIMITED', `too many requests; retry in ${ctx.after}`),
  });
  installUserAuth(app, { tokens: deps.tokens, failuresPerMinute: deps.config.api.authFailuresPerMinute });
  for (const routes of [meRoutes, consentRoutes, callRoutes, recordingRoutes, mediaRoutes, earningRoutes, payoutRoutes, auditRoutes, exportRoutes, deletionRoutes]) {
    await app.register(async (scope) => routes(scope, deps));
  }
}
