import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { ownerOf } from './auth.js';
import { ApiError, notFound, errorResponses } from './replies.js';
import { IdParam } from './schemas.js';
import { createShredder } from '../recordings/shred.js';
import { eraseUser } from '../accounts/erase.js';

const errors = errorResponses(401, 404, 429);
const NoContent = Type.Null({ description: 'done; no body' });

/**
 * Deletion is crypto-shred (src/recordings/shred.ts): the answer comes after the key is destroyed, so a
 * 204 means the audio is unreadable, even from backups; the object removal behind it is retried if the
 * store is down.
 */
export async function deletionRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const shredder = createShredder({ db: deps.db, grants: deps.grants, objects: deps.objects, spool: deps.spool, audit: deps.audit, log: deps.log, now: deps.now, ...(deps.events && { events: deps.events }) });

  app.delete(
    '/recordings/:recordingId',
    {
      config: { access: 'user' },
      schema: {
        tags: ['recordings'],
        summary: 'crypto-shred one of the caller’s recordings',
        description:
          'Destroys the recording’s data key first (unreadable from then on, backups included), then closes its grants and removes its stored and spooled chunks. Later requests for it answer 404 like a missing id. 409 RECORDING_LIVE while it is still being recorded: hang up first.',
        params: IdParam('recordingId', 'rec'),
        response: { 204: NoContent, 409: { $ref: 'ErrorBody#' }, ...errors },
      },
    },
    async (req, reply) => {
      const { recordingId } = req.params as { recordingId: string };
      const outcome = await shredder.byOwner(ownerOf(req).userId, recordingId);
      if (outcome === 'not-found') throw notFound();
      if (outcome === 'live') throw new ApiError(409, 'RECORDING_LIVE', 'this recording is still being recorded; hang up the call, then delete it');
      return reply.code(204).send();
    },
  );

  app.delete(
    '/me',
    {
      config: { access: 'user' },
      schema: {
        tags: ['me'],
        summary: 'delete the caller’s account',
        description:
          'Shreds every recording, erases the phone number (and the counterpart numbers of every call), clears consent, revokes every token and closes live dialer connections (their calls end). Ledger entries stay for accounting, without personal data. The token used is revoked too: later requests answer 401.',
        response: { 204: NoContent, 401: { $ref: 'ErrorBody#' }, 429: { $ref: 'ErrorBody#' } },
      },
    },
    async (req, reply) => {
      // undefined: a concurrent request already erased it; the account is gone either way.
      await eraseUser({ db: deps.db, shredder, live: deps.live, audit: deps.audit, log: deps.log, now: deps.now, ...(deps.events && { events: deps.events }) }, ownerOf(req).userId);
      return reply.code(204).send();
    },
  );
}
