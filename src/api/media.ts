import { pipeline, Transform, type Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { notFound, errorResponses } from './replies.js';
import { parseRange } from './byte-range.js';
import { isReadable } from './recordings.js';
import { MonologueError } from '../errors.js';
import { createFrameCache, openMediaSource, type FrameCache, type MediaSource } from '../recordings/media-stream.js';

/**
 * GET/HEAD /v1/media/{grant}: a recording's audio for whoever holds a live grant (recordings.ts issues
 * them). The grant is the credential, so the route takes no bearer token (`access: 'grant'`). Every way
 * a grant can be wrong (unknown, malformed, expired, used up, closed, its recording deleted or no
 * longer the grant user's) is the one 404, byte for byte; the grant's own recording is the only one it
 * can ever name, because the URL carries nothing else.
 *
 * Ranges: one `bytes=` range (a-b, a-, -n) → 206 with Content-Range; a range that selects nothing → 416
 * with `Content-Range: bytes *\/size`; several ranges, an unparsable header, or any If-Range (we send no
 * validator it could match) → 200 with the whole file (byte-range.ts). Each request takes one of the
 * grant's `api.grantMaxRequests`, HEAD too.
 */
const GrantParams = Type.Object({ grant: Type.String({ pattern: '^mlg_[A-Za-z0-9_-]{43}$' }) }, { additionalProperties: false });

const Audio = { description: 'the recording (Ogg Opus), or the requested byte range of it', content: { 'audio/ogg': { schema: { type: 'string', format: 'binary' } } } };
const errors = errorResponses(404, 416, 429, 503);

/** Refusals that are the server's state, not the request's: sent as they are (the error handler would make any 5xx a 500). */
const UNAVAILABLE: Record<string, { message: string; retryAfter?: number }> = {
  NO_KEY: { message: 'recordings cannot be opened on this server right now (no key-encryption key); the operator must restore it' },
  RECORDING_UPLOADING: { message: 'the recording is still being stored; retry shortly', retryAfter: 2 },
  STORAGE_UNAVAILABLE: { message: 'recording storage is unavailable; retry later', retryAfter: 5 },
};

export async function mediaRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const schema = { tags: ['media'], summary: 'a recording’s audio, by grant (no Authorization header)', security: [], params: GrantParams, response: { 200: Audio, 206: Audio, ...errors } };
  const frames = createFrameCache();
  const handler = (req: FastifyRequest, reply: FastifyReply) => serve(deps, frames, req, reply);
  // HEAD is its own route: fastify's automatic one would read the whole stream and report length 0.
  app.get('/media/:grant', { exposeHeadRoute: false, config: { access: 'grant' }, schema }, handler);
  app.head('/media/:grant', { config: { access: 'grant' }, schema: { ...schema, summary: 'the headers of GET /v1/media/{grant}' } }, handler);
}

async function serve(deps: ApiDeps, frames: FrameCache, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { grant: token } = req.params as Static<typeof GrantParams>;
  const grant = await deps.grants.use(token);
  if (!grant) throw notFound();
  // The grant is bound to (user, recording); the recording must still be that user's and readable now.
  const row = await deps.catalog.getOwned(grant.userId, grant.recordingId);
  if (!row || !isReadable(row)) throw notFound();

  let source: MediaSource;
  try {
    source = await openMediaSource({ ...deps, frames }, row);
  } catch (err) {
    const refusal = err instanceof MonologueError ? UNAVAILABLE[err.code] : undefined;
    if (!refusal || !(err instanceof MonologueError)) throw err;
    if (refusal.retryAfter !== undefined) reply.header('retry-after', String(refusal.retryAfter));
    return reply.code(503).send({ code: err.code, message: refusal.message });
  }

  const size = source.size;
  const range = req.headers['if-range'] !== undefined ? ({ kind: 'none' } as const) : parseRange(req.headers.range, size);
  const { start, end } = range.kind === 'range' ? range : { start: 0, end: size - 1 };
  const sendsBody = req.method !== 'HEAD' && range.kind !== 'unsatisfiable' && size > 0;
  if (!sendsBody) source.close();
  const body = sendsBody ? source.stream({ start, end }) : undefined;
  if (body) {
    try {
      // Headers go out only once the first chunk has decrypted: one that fails at once is a clean 500.
      await body.ready();
    } catch (err) {
      body.destroy();
      throw err;
    }
  }

  reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').header('accept-ranges', 'bytes');
  if (range.kind === 'unsatisfiable') {
    return reply.code(416).header('content-range', `bytes */${size}`).send({ code: 'RANGE_NOT_SATISFIABLE', message: `the range selects none of the recording's ${size} bytes` });
  }
  const disposition = grant.purpose === 'download' ? 'attachment' : 'inline';
  reply.header('content-type', 'audio/ogg; codecs=opus').header('content-disposition', `${disposition}; filename="${row.id}.opus"`);
  if (range.kind === 'range') reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', String(end - start + 1));
  if (!body) return reply.send();
  return reply.send(counted(deps, grant.grantId, reply, body));
}

/**
 * Counts the bytes handed to the response for the grant's audit entry. The last byte is held back until
 * the count is stored: a client knows the body is complete by its Content-Length, so without that it
 * could finish reading (and the grant be swept) before its bytes were counted. A response cut short
 * records what was handed over, less what still waited in the buffer.
 */
function counted(deps: ApiDeps, grantId: string, reply: FastifyReply, body: Readable): Transform {
  let handed = 0;
  let recorded = 0;
  let held: Buffer | undefined;
  const record = async (total: number) => {
    const delta = total - recorded;
    if (delta <= 0) return;
    recorded = total;
    await deps.grants.served(grantId, delta).catch((err: unknown) => deps.log.error({ err, code: 'GRANT_ACCOUNTING' }, 'bytes served by a grant were not recorded'));
  };
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (chunk.length === 0) return cb();
      if (held) this.push(held);
      if (chunk.length > 1) this.push(chunk.subarray(0, -1));
      handed += (held?.length ?? 0) + chunk.length - 1;
      held = chunk.subarray(-1);
      cb();
    },
    flush(cb) {
      void record(handed + (held?.length ?? 0)).finally(() => {
        if (held) this.push(held);
        handed += held?.length ?? 0;
        held = undefined;
        cb();
      });
    },
  });
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) void record(handed - counter.readableLength);
  });
  // Either side ending early tears down both: a client that goes away stops the decryption.
  return pipeline(body, counter, () => undefined);
}
