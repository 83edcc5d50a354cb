import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';

// Issue 9: the admin API's payout routes (mark paid, fail) land here.
export async function adminPayoutRoutes(_app: FastifyInstance, _deps: ApiDeps): Promise<void> {}
