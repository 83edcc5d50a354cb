import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Tokens } from '../accounts/tokens.js';
import { ApiError, unauthenticated } from './replies.js';

/**
 * Who may call a route. Every route of an API scope declares one in `config.access`; a route without it
 * is treated as `user` (fail closed).
 *   user:   a dialer token (Authorization: Bearer mlt_…); the route reads `req.owner`.
 *   grant:  the URL carries a media grant; the route checks it (media.ts).
 *   admin:  the admin key (admin listener only).
 *   public: nobody in particular (/openapi.json, /docs).
 */
export type Access = 'user' | 'grant' | 'admin' | 'public';

/** The authenticated caller of a `user` route: every query it makes filters by this userId. */
export interface Owner {
  userId: string;
  sessionId: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    owner: Owner | null;
  }
}

/** The caller of a `user` route (the auth hook ran); a bug, not a client error, when missing. */
export function ownerOf(req: FastifyRequest): Owner {
  if (!req.owner) throw new Error(`route ${req.routeOptions.url ?? '?'} read its owner without access 'user'`);
  return req.owner;
}

export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,200})$/.exec(h);
  return m?.[1];
}

/**
 * Authenticates `user` routes in this scope. Failures are counted per source address: past
 * `failuresPerMinute`, further failures answer 429 (token guessing is pointless at 256 bits, but a
 * flood of them is still load).
 */
export function installUserAuth(app: FastifyInstance, deps: { tokens: Tokens; failuresPerMinute: number }): void {
  app.decorateRequest('owner', null);
  const failures = app.createRateLimit({ max: deps.failuresPerMinute, timeWindow: 60_000, keyGenerator: (req) => `authfail:${req.ip}` });
  app.addHook('onRequest', async (req, reply) => {
    // No such route: the one 404 for everybody (the route list is public in /openapi.json anyway).
    if (req.is404) return;
    const access = req.routeOptions.config.access ?? 'user';
    if (access !== 'user') return;
    const token = bearer(req);
    const session = token ? await deps.tokens.session(token) : undefined;
    if (session) {
      req.owner = { userId: session.userId, sessionId: session.sessionId };
      return;
    }
    const limit = await failures(req);
    if (!limit.isAllowed && limit.isExceeded) {
      reply.header('retry-after', String(limit.ttlInSeconds));
      throw new ApiError(429, 'RATE_LIMITED', `too many failed authentications from this address; retry in ${limit.ttlInSeconds} s`);
    }
    throw unauthenticated();
  });
}
