import { Type, type Static } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MonologueError } from '../errors.js';
import type { Logger } from '../log.js';

/** Every error body of the API: a stable code (README lists them) and a sentence for a person. */
export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false, $id: 'ErrorBody' });
export type ErrorBody = Static<typeof ErrorBody>;

/** Response schemas of a route's error statuses: each is an `ErrorBody`. */
export function errorResponses(...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(statuses.map((s) => [s, { $ref: 'ErrorBody#' }]));
}

/** An API scope's error format: the ErrorBody schema, the error handler and the one 404 for unknown routes. */
export function installApiErrors(app: FastifyInstance, log: Logger): void {
  app.addSchema(ErrorBody);
  app.setErrorHandler(apiErrorHandler(log));
  app.setNotFoundHandler((_req, reply) => send(reply, notFound()));
}

/** A MonologueError with the HTTP status it answers. */
export class ApiError extends MonologueError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * The one 404 for objects: the same for a foreign id, an unknown id and a malformed id (params that fail
 * their schema answer this too), so a response never tells another user's object from a missing one.
 */
export function notFound(): ApiError {
  return new ApiError(404, 'NOT_FOUND', 'no such resource');
}

/** The one 401: the same for a missing, malformed, unknown, expired or revoked token. */
export function unauthenticated(): ApiError {
  return new ApiError(401, 'UNAUTHENTICATED', 'send a valid token: Authorization: Bearer <token>');
}

export function badRequest(code: string, message: string): ApiError {
  return new ApiError(400, code, message);
}

/**
 * Error handler for the API scopes. Params that fail validation are the 404 above; other validation
 * failures are 400 BAD_REQUEST naming the field; 5xx never shows its cause (it is logged with its stack).
 */
export function apiErrorHandler(log: Logger) {
  return (err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply) => {
    if ('validation' in err && err.validation) {
      if (err.validationContext === 'params') return send(reply, notFound());
      return send(reply, badRequest('BAD_REQUEST', err.message));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      if (status === 429) {
        const retry = reply.getHeader('retry-after');
        if (retry === undefined) reply.header('retry-after', '60');
      }
      const code = err instanceof ApiError ? err.code : status === 429 ? 'RATE_LIMITED' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status === 413 ? 'BODY_TOO_LARGE' : 'BAD_REQUEST';
      return reply.code(status).send({ code, message: err.message });
    }
    log.error({ err, route: req.routeOptions.url }, 'api handler failed');
    return reply.code(500).send({ code: 'INTERNAL', message: 'internal error; the server logged it' });
  };
}

function send(reply: FastifyReply, e: ApiError) {
  return reply.code(e.statusCode).send({ code: e.code, message: e.message });
}
