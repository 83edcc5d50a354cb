import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';

// Issue 9: routes land here (see docs/architecture.md, "Owner-only API").
export async function recordingRoutes(_app: FastifyInstance, _deps: ApiDeps): Promise<void> {}
