import { randomBytes } from 'node:crypto';
import type { Access } from '../../src/api/auth.js';
import type { SeededOwner } from './fixture.js';

/**
 * Every HTTP route of the service, as the BOLA suite (bola.test.ts), the mass-assignment test and the
 * OpenAPI test know it. A route that fastify registered and that is missing here FAILS those suites:
 * a route is added together with the way to attack it.
 *
 * While issue 9's parts are being built, entries whose route is not registered yet are only reported
 * (a diagnostic). Flip this to `true` once every part is merged: then a missing route fails too.
 */
export const STRICT_ROUTE_TABLE = true;

/**
 * How a route is attacked:
 *   object: a `user` route about one object named by its params: another user's id must answer exactly
 *           what a random or malformed id answers (404), and change nothing.
 *   list:   a `user` route listing (or containing) the caller's objects: only the caller's ids may appear.
 *   self:   a `user` route about the caller alone (no id in the URL): only the auth cases apply.
 *   grant:  the URL carries a media grant (`access: 'grant'`): served only for the recording it was issued for.
 *   public: no owner (pages, health, OpenAPI, docs): must show no user's data.
 *   provider: a signed callback from a trunk provider (webhooks): not an owner route.
 */
export type RouteKind = 'object' | 'list' | 'self' | 'grant' | 'public' | 'provider';

/** Which of a seeded user's objects fills a param. */
export type ParamSource = 'call' | 'recording' | 'grant';

/** The seeded user the suite acts on, with what it issued to them during setup. */
export interface Subject extends SeededOwner {
  /** A live media grant (token) for recordings[0], issued in setup. */
  grant: string;
}

export interface RouteCase {
  url: string;
  /** Every method registered at this url (HEAD twins of GET included: fastify adds them). */
  methods: string[];
  /** `config.access` exactly as the route declares it (undefined outside the /v1 scope's auth). */
  access: Access | undefined;
  kind: RouteKind;
  params?: Record<string, ParamSource>;
  /** A valid body (the owner's own request succeeds with it). */
  body?: (u: Subject) => unknown;
  /** A valid query string. */
  query?: Record<string, string>;
  /** Headers a valid request needs; called once per request (fresh idempotency keys). */
  headers?: () => Record<string, string>;
  /** The request changes state: after another user's attempt the victim's data is compared. */
  mutates?: boolean;
  /** Its success destroys the caller or their object: only a throwaway user calls it successfully, last. */
  destructive?: boolean;
  /** 2xx bodies are not JSON (audio): the response schema check does not apply. */
  binary?: boolean;
  /** For lists: the caller's ids the response must list, all of them and nothing else. */
  expectIds?: (u: Subject) => string[];
  /** For lists: where the paged items are (`items` + `nextCursor`), so the suite walks every page. */
  paged?: boolean;
}

const idem = () => ({ 'idempotency-key': `bola-${randomBytes(12).toString('base64url')}` });
const get = ['GET', 'HEAD'];

export const ROUTE_TABLE: RouteCase[] = [
  // Pages, health and documentation: no owner, no user data.
  { url: '/', methods: get, access: undefined, kind: 'public' },
  { url: '/dialer.css', methods: get, access: undefined, kind: 'public' },
  { url: '/dialer.js', methods: get, access: undefined, kind: 'public' },
  { url: '/account.js', methods: get, access: undefined, kind: 'public' },
  { url: '/healthz', methods: get, access: undefined, kind: 'public' },
  { url: '/readyz', methods: get, access: undefined, kind: 'public' },
  { url: '/openapi.json', methods: get, access: 'public', kind: 'public' },
  { url: '/docs', methods: get, access: undefined, kind: 'public' },
  { url: '/docs/', methods: ['HEAD'], access: undefined, kind: 'public' },
  { url: '/docs/static/index.html', methods: get, access: undefined, kind: 'public' },
  { url: '/docs/static/swagger-initializer.js', methods: get, access: undefined, kind: 'public' },
  { url: '/docs/json', methods: get, access: undefined, kind: 'public' },
  { url: '/docs/yaml', methods: get, access: undefined, kind: 'public' },
  { url: '/docs/static/*', methods: get, access: undefined, kind: 'public' },
  // Signed by the provider, checked by its adapter; registered outside the /v1 auth scope.
  { url: '/v1/webhooks/:provider', methods: ['POST'], access: undefined, kind: 'provider' },

  // The caller's account.
  { url: '/v1/me', methods: get, access: 'user', kind: 'self' },
  { url: '/v1/consent/current', methods: get, access: 'public', kind: 'public' },
  { url: '/v1/me/consent', methods: ['PUT'], access: 'user', kind: 'self', body: () => ({ version: 'v1' }), mutates: true },
  { url: '/v1/me/consent', methods: ['DELETE'], access: 'user', kind: 'self', mutates: true },
  { url: '/v1/me/export', methods: get, access: 'user', kind: 'list' },
  { url: '/v1/me/audit', methods: get, access: 'user', kind: 'list', paged: true },

  // Calls and recordings.
  { url: '/v1/calls', methods: get, access: 'user', kind: 'list', paged: true, expectIds: (u) => u.calls },
  { url: '/v1/calls/:callId', methods: get, access: 'user', kind: 'object', params: { callId: 'call' } },
  { url: '/v1/recordings', methods: get, access: 'user', kind: 'list', paged: true, expectIds: (u) => u.recordings.map((r) => r.id) },
  { url: '/v1/recordings/:recordingId', methods: get, access: 'user', kind: 'object', params: { recordingId: 'recording' } },
  { url: '/v1/recordings/:recordingId/grants', methods: ['POST'], access: 'user', kind: 'object', params: { recordingId: 'recording' }, body: () => ({ purpose: 'play' }), mutates: true },
  { url: '/v1/recordings/:recordingId', methods: ['DELETE'], access: 'user', kind: 'object', params: { recordingId: 'recording' }, mutates: true, destructive: true },
  { url: '/v1/media/:grant', methods: get, access: 'grant', kind: 'grant', params: { grant: 'grant' }, binary: true },

  // Money.
  { url: '/v1/earnings', methods: get, access: 'user', kind: 'list' },
  { url: '/v1/payouts', methods: ['POST'], access: 'user', kind: 'self', body: () => ({ amountMicros: 5_000_000 }), headers: idem, mutates: true },
  { url: '/v1/payouts', methods: get, access: 'user', kind: 'list', paged: true },

  // Last: the suite's successful calls run destroying rows in table order, and this one ends the user.
  { url: '/v1/me', methods: ['DELETE'], access: 'user', kind: 'self', mutates: true, destructive: true },
];

/** One table row per (method, url): what the suites iterate over. */
export interface RouteOp extends RouteCase {
  method: string;
}

export function routeOps(table: readonly RouteCase[] = ROUTE_TABLE): RouteOp[] {
  return table.flatMap((c) => c.methods.map((method) => ({ ...c, method })));
}

export const opKey = (o: { method: string; url: string }) => `${o.method} ${o.url}`;

/** The id prefix of each param source, and the route param a random or malformed id replaces. */
const PREFIX: Record<ParamSource, string> = { call: 'call', recording: 'rec', grant: 'mlg' };

/** The subject's own object for a param. */
export function objectOf(u: Subject, source: ParamSource): string {
  if (source === 'call') return u.calls[0]!;
  if (source === 'recording') return u.recordings[0]!.id;
  return u.grant;
}

/** A well-formed id that names nothing (ids carry 128 random bits; grants 256). */
export function randomIdFor(source: ParamSource): string {
  return `${PREFIX[source]}_${randomBytes(source === 'grant' ? 32 : 16).toString('base64url')}`;
}

/**
 * Ids of the wrong shape: too short, another kind's prefix (the victim's own object of another kind),
 * an encoded `../`, far too long (past the router's param limit), a bare prefix, a NUL, a broken escape.
 */
export function malformedIdsFor(source: ParamSource, victim: Subject): Array<[string, string]> {
  const p = PREFIX[source];
  const otherKind = source === 'call' ? victim.recordings[0]!.id : victim.calls[0]!;
  return [
    ['too short', `${p}_abc`],
    ['wrong prefix', otherKind],
    ['encoded ../', encodeURIComponent(`../../${objectOf(victim, source)}`)],
    ['very long', `${p}_${'A'.repeat(400)}`],
    ['bare prefix', `${p}_`],
    ['encoded NUL', `${p}_${'A'.repeat(20)}%00`],
    ['broken %-escape', `${p}_${'A'.repeat(20)}%E0%A4%A`],
  ];
}

/** The url with its params filled: `fill(source)` gives the value (already URL-safe) of each param. */
export function fillUrl(op: RouteCase, fill: (source: ParamSource, name: string) => string): string {
  let path = op.url;
  for (const [name, source] of Object.entries(op.params ?? {})) path = path.replace(`:${name}`, fill(source, name));
  if (/:[A-Za-z]/.test(path)) throw new Error(`route table: ${op.url} has a param the table does not fill`);
  const q = new URLSearchParams(op.query ?? {}).toString();
  return q ? `${path}?${q}` : path;
}
