import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { ownerOf } from './auth.js';
import { notFound } from './replies.js';
import { iso, Timestamp } from './schemas.js';

export const Me = Type.Object(
  {
    id: Type.String(),
    /** The owner's own number, shown only to them. */
    phone: Type.String(),
    enrolled: Type.Boolean(),
    consent: Type.Union([Type.Object({ version: Type.String(), at: Timestamp }, { additionalProperties: false }), Type.Null()]),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Me = Static<typeof Me>;

const errors = { 401: { $ref: 'ErrorBody#' }, 404: { $ref: 'ErrorBody#' }, 429: { $ref: 'ErrorBody#' } };

/** The caller's own account. */
export async function meRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get('/me', { config: { access: 'user' }, schema: { tags: ['me'], summary: 'the caller’s account', response: { 200: Me, ...errors } } }, async (req): Promise<Me> => {
    const user = await deps.users.byId(ownerOf(req).userId);
    if (!user) throw notFound();
    return {
      id: user.id,
      phone: user.phone,
      enrolled: user.enrolled,
      consent: user.consent ? { version: user.consent.version, at: iso(user.consent.at) } : null,
      createdAt: iso(user.createdAt),
    };
  });
}
