import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { loadConsentText } from '../recordings/consent-policy.js';
import { errorResponses } from './replies.js';
import { Timestamp } from './schemas.js';

export const ConsentText = Type.Object({ version: Type.String(), text: Type.String(), publishedAt: Timestamp }, { additionalProperties: false });
export type ConsentText = Static<typeof ConsentText>;

/**
 * The consent text in force. The same for everyone and not personal data, so it is public: a page can show it
 * before the user has a token. `PUT /v1/me/consent` accepts only this version.
 */
export async function consentRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const current = loadConsentText(deps.config.recording.consent);
  app.get(
    '/consent/current',
    {
      config: { access: 'public' },
      schema: {
        tags: ['consent'],
        summary: 'the current consent text and its version',
        description: 'A user who consented to another version is not recorded until they accept this one (`PUT /v1/me/consent`).',
        response: { 200: ConsentText, ...errorResponses(429) },
      },
    },
    async (): Promise<ConsentText> => current,
  );
}
