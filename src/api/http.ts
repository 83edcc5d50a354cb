import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifySchema } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from '../log.js';
import type { Access } from './auth.js';
import { notFound } from './replies.js';

export interface HttpDeps {
  log: Logger;
  /** Folder with index.html and dialer.css (src/web) and the one with dialer.js (dist/web). */
  webSourceDir: string;
  webBuildDir: string;
  ready: () => Promise<Record<string, boolean>>;
  bodyLimitBytes: number;
}

/** A route as registered (the BOLA suite checks that it covers every one, and validates by its schema). */
export interface RouteEntry {
  method: string;
  url: string;
  access: Access | undefined;
  /** params, querystring, body and response schemas as declared. */
  schema: FastifySchema | undefined;
  /** The shared schemas (`addSchema`, by $id) the route's `$ref`s resolve against. */
  sharedSchemas: Record<string, unknown>;
}

const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The HTTP listener: the dialer page, liveness and readiness, and the OpenAPI document of every route
 * registered after it (`/openapi.json`, a docs page at `/docs`). `routes` lists every route as it is added.
 */
export async function createHttp(deps: HttpDeps): Promise<{ app: FastifyInstance; routes: RouteEntry[] }> {
  const app = Fastify({
    loggerInstance: deps.log.child({ mod: 'http' }) as FastifyBaseLogger,
    bodyLimit: deps.bodyLimitBytes,
    // Fastify's default strips properties a schema does not allow and lets the request through; a body or
    // query with a field the route does not take (`userId`, `state`, …) must be refused instead (400).
    ajv: { customOptions: { removeAdditional: false } },
    // The router refuses an over-long param (414) or a broken %-escape (400) before any route runs, with
    // a body that echoes the path. Under /v1 that would tell a malformed id from an unknown one: it gets
    // the API's one 404 instead, and elsewhere a 400 that echoes nothing.
    frameworkErrors: (err, req, reply: FastifyReply) => {
      if (err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        if (req.url.startsWith('/v1/')) {
          const e = notFound();
          return reply.code(e.statusCode).send({ code: e.code, message: e.message });
        }
        return reply.code(400).send({ code: 'BAD_URL', message: 'the URL is malformed' });
      }
      return reply.code(err.statusCode ?? 400).send({ code: 'BAD_REQUEST', message: err.message });
    },
  });
  const routes: RouteEntry[] = [];
  app.addHook('onRoute', function (r) {
    const access = (r.config as { access?: Access } | undefined)?.access;
    for (const method of [r.method].flat()) routes.push({ method, url: r.url, access, schema: r.schema, sharedSchemas: this.getSchemas() });
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Monologue owner-only API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: false } });
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());

  const assets: Record<string, { file: string; type: string }> = {
    '/': { file: join(deps.webSourceDir, 'index.html'), type: 'text/html; charset=utf-8' },
    '/dialer.css': { file: join(deps.webSourceDir, 'dialer.css'), type: 'text/css; charset=utf-8' },
    '/dialer.js': { file: join(deps.webBuildDir, 'dialer.js'), type: 'text/javascript; charset=utf-8' },
    '/account.js': { file: join(deps.webBuildDir, 'account.js'), type: 'text/javascript; charset=utf-8' },
  };
  for (const [path, asset] of Object.entries(assets)) {
    app.get(path, async (_req, reply) => {
      const body = await readFile(asset.file).catch(() => undefined);
      if (!body) return reply.code(503).send({ code: 'WEB_NOT_BUILT', message: 'the dialer page is not built; run npm run build' });
      return reply.headers(PAGE_HEADERS).type(asset.type).send(body);
    });
  }

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const checks = await deps.ready();
    const ok = Object.values(checks).every(Boolean);
    return reply.code(ok ? 200 : 503).send({ ok, checks });
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ code: 'NOT_FOUND', message: 'no such route' }));
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.log.error({ err }, 'http handler failed');
    return reply.code(status).send({ code: err.code ?? 'ERROR', message: status === 500 ? 'internal error' : err.message });
  });
  return { app, routes };
}
