import { createHash, randomBytes } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import type { RouteEntry } from '../../src/api/http.js';
import type { Tokens } from '../../src/accounts/tokens.js';
import { until } from '../helpers/until.js';
import { fillUrl, malformedIdsFor, objectOf, opKey, randomIdFor, routeOps, STRICT_ROUTE_TABLE, type RouteCase, type RouteOp, type Subject } from './route-table.js';

/**
 * The BOLA suite's machinery, separate from its tests so that the self-test can point it at a
 * deliberately leaky server and show each check failing. Every check returns the problems it found
 * (empty = pass) and counts the cases it ran.
 */

const addFormats = addFormatsModule.default;

/** Where the checks send requests: a running service, or the self-test's leaky one. */
export interface Target {
  baseUrl: string;
  routes: readonly RouteEntry[];
  db: Db;
  tokens: Tokens;
}

export interface RequestOptions {
  token?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is, with content-type application/json (bodies JSON.stringify cannot write, like `__proto__`). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** A full Authorization header value (malformed ones). */
  authorization?: string;
}

/** A response reduced to what "byte-identical apart from date" compares. */
export interface Captured {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export async function send(target: Target, method: string, path: string, o: RequestOptions = {}): Promise<Captured> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  if (o.authorization !== undefined) headers.authorization = o.authorization;
  const body = o.rawBody ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(new URL(path.replace(/^\//, ''), target.baseUrl), { method, headers, ...(body !== undefined && { body }), redirect: 'manual' });
  const out: Captured = { status: res.status, headers: {}, body: Buffer.from(await res.arrayBuffer()) };
  res.headers.forEach((v, k) => {
    out.headers[k] = v;
  });
  return out;
}

/** How two responses differ, ignoring `date`; undefined when byte-identical. */
export function difference(a: Captured, b: Captured): string | undefined {
  const diffs: string[] = [];
  if (a.status !== b.status) diffs.push(`status ${a.status} vs ${b.status}`);
  const names = new Set([...Object.keys(a.headers), ...Object.keys(b.headers)]);
  names.delete('date');
  for (const n of [...names].sort()) if (a.headers[n] !== b.headers[n]) diffs.push(`header ${n}: ${a.headers[n] ?? '(none)'} vs ${b.headers[n] ?? '(none)'}`);
  if (!a.body.equals(b.body)) diffs.push(`body ${a.body.toString('utf8', 0, 200)} vs ${b.body.toString('utf8', 0, 200)}`);
  return diffs.length ? diffs.join('; ') : undefined;
}

export interface Tally {
  /** Cases the table generates (routes not registered yet included). */
  generated: number;
  /** Cases actually run against registered routes. */
  ran: number;
}

/**
 * One run of the suite over a table and a target, with a victim (A) and an attacker (B), and a
 * throwaway user (C) for the calls that change or destroy what they touch.
 */
export class BolaSuite {
  readonly problems: string[] = [];
  readonly tally: Tally = { generated: 0, ran: 0 };
  readonly pending: string[] = [];
  private readonly registered = new Map<string, RouteEntry>();
  private readonly validators = new Map<string, ValidateFunction | null>();
  private readonly secrets = new Map<string, string[]>();

  constructor(
    readonly target: Target,
    readonly table: readonly RouteCase[],
    readonly victim: Subject,
    readonly attacker: Subject,
    readonly scratch: Subject,
    /** Every subject's numbers (own and counterparts): they must never reach another user. */
    phones: Map<string, string[]>,
  ) {
    for (const r of target.routes) this.registered.set(opKey(r), r);
    for (const u of [victim, attacker, scratch]) {
      this.secrets.set(u.id, [u.id, u.token, u.sessionId, u.grant, ...u.calls, ...u.recordings.map((r) => r.id), ...u.ledger, ...(phones.get(u.id) ?? [])]);
    }
  }

  get ops(): RouteOp[] {
    return routeOps(this.table);
  }

  private problem(msg: string): void {
    this.problems.push(msg);
  }

  /** Registered ops of a kind; the unregistered ones are counted and listed as pending. */
  private live(ops: RouteOp[], casesEach: number | ((op: RouteOp) => number)): RouteOp[] {
    const out: RouteOp[] = [];
    for (const op of ops) {
      this.tally.generated += typeof casesEach === 'number' ? casesEach : casesEach(op);
      if (this.registered.has(opKey(op))) {
        out.push(op);
      } else if (!this.pending.includes(opKey(op))) {
        this.pending.push(opKey(op));
      }
    }
    return out;
  }

  private ran(n = 1): void {
    this.tally.ran += n;
  }

  // ---- the route table itself ----------------------------------------------------------------

  /** Every registered route is in the table with the access it declares; table rows not registered are pending (or fail, strict). */
  checkCoverage(): void {
    const known = new Map(this.ops.map((o) => [opKey(o), o]));
    for (const r of this.target.routes) {
      this.tally.generated++;
      this.ran();
      const row = known.get(opKey(r));
      if (!row) this.problem(`${opKey(r)} is registered but not in the BOLA route table (test/api/route-table.ts): add it with how to attack it`);
      else if (row.access !== r.access) this.problem(`${opKey(r)} declares access ${String(r.access)} but the route table says ${String(row.access)}`);
    }
    for (const o of this.ops) {
      if (this.registered.has(opKey(o))) continue;
      if (!this.pending.includes(opKey(o))) this.pending.push(opKey(o));
      if (STRICT_ROUTE_TABLE) this.problem(`${opKey(o)} is in the route table but not registered`);
    }
  }

  // ---- responses -----------------------------------------------------------------------------

  /** Nothing of another user (ids, numbers, tokens) in a response given to `as` (undefined: anonymous). */
  inspect(op: { method: string; url: string }, res: Captured, as: Subject | undefined, what: string): void {
    const text = res.body.toString('latin1') + '\n' + JSON.stringify(res.headers);
    for (const [owner, list] of this.secrets) {
      if (owner === as?.id) continue;
      for (const s of list) if (text.includes(s)) this.problem(`${opKey(op)} (${what}) shows ${as ? 'another' : 'a'} user's data (${s.slice(0, 12)}…) to ${as ? 'its caller' : 'an anonymous caller'}`);
    }
    if (/(?<![A-Za-z0-9_-])mlt_[A-Za-z0-9_-]{20,}/.test(text)) this.problem(`${opKey(op)} (${what}) shows a bearer token`);
  }

  /** 2xx JSON bodies against the route's own response schema, made strict (no extra property anywhere). */
  validate(op: RouteOp, res: Captured, what: string): void {
    if (res.status < 200 || res.status >= 300 || op.method === 'HEAD' || res.body.length === 0) return;
    if (op.binary) return;
    this.tally.generated++;
    this.ran();
    const route = this.registered.get(opKey(op));
    if (!route) return;
    const v = this.validatorFor(route, res.status);
    if (!v) {
      this.problem(`${opKey(op)} (${what}) answered ${res.status} but declares no response schema for it`);
      return;
    }
    if (!/^application\/json/.test(res.headers['content-type'] ?? '')) {
      this.problem(`${opKey(op)} (${what}) answered ${res.status} as ${res.headers['content-type'] ?? 'no content-type'}, not JSON`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch {
      this.problem(`${opKey(op)} (${what}) answered ${res.status} with a body that is not JSON`);
      return;
    }
    if (!v(body)) this.problem(`${opKey(op)} (${what}) response does not match its strict schema: ${JSON.stringify(v.errors?.slice(0, 3))}`);
  }

  private validatorFor(route: RouteEntry, status: number): ValidateFunction | null {
    const key = `${opKey(route)} ${status}`;
    if (this.validators.has(key)) return this.validators.get(key)!;
    const responses = (route.schema?.response ?? {}) as Record<string, unknown>;
    const schema = responses[String(status)] ?? responses[`${String(status)[0]}xx`] ?? responses.default;
    let v: ValidateFunction | null = null;
    if (schema) {
      const ajv = new Ajv({ allErrors: true, strict: false });
      addFormats(ajv);
      for (const [id, shared] of Object.entries(route.sharedSchemas)) ajv.addSchema(strictSchema(shared) as object, id);
      v = ajv.compile(strictSchema(schema) as object);
    }
    this.validators.set(key, v);
    return v;
  }

  /** The ids in a response that the database says belong to someone other than `as`. */
  private async foreignIds(res: Captured, as: Subject): Promise<{ foreign: string[]; own: number }> {
    const owners = await idOwners(this.target.db);
    const text = res.body.toString('utf8');
    const foreign: string[] = [];
    let own = 0;
    for (const m of text.matchAll(/(?<![A-Za-z0-9_-])[a-z]{2,5}_[A-Za-z0-9_-]{16,64}/g)) {
      const id = m[0];
      const owner = owners.get(id) ?? owners.get(`grant:${grantHash(id)}`);
      if (owner === undefined) continue;
      if (owner === as.id) own++;
      else foreign.push(id);
    }
    return { foreign, own };
  }

  // ---- the attacks ---------------------------------------------------------------------------

  /** A valid request of `op` by `as` on `of`'s objects. */
  private request(op: RouteOp, of: Subject, opts: RequestOptions = {}): Promise<Captured> {
    return send(this.target, op.method, fillUrl(op, (s) => objectOf(of, s)), { body: op.body?.(of), headers: op.headers?.(), ...opts });
  }

  /** Missing, malformed, unknown, revoked and expired tokens: one 401, byte-identical but for date, on every `user` route. */
  async checkUnauthenticated(): Promise<void> {
    const ops = this.live(this.ops.filter((o) => o.access === 'user'), 8);
    if (ops.length === 0) return;
    const revoked = await this.target.tokens.issue(this.victim.id, 3_600_000);
    await this.target.tokens.revoke(revoked.sessionId);
    const expired = await this.target.tokens.issue(this.victim.id, 20);
    await until('the short-lived token expired', () => Date.now() > expired.expiresAt + 1);
    const variants: Array<[string, RequestOptions]> = [
      ['no token', {}],
      ['Basic credentials', { authorization: 'Basic dXNlcjpwYXNzd29yZA==' }],
      ['Bearer without a token', { authorization: 'Bearer' }],
      ['a valid token under another scheme', { authorization: `Token ${this.victim.token}` }],
      ['an over-long token', { authorization: `Bearer mlt_${'x'.repeat(300)}` }],
      ['a random token', { token: `mlt_${randomBytes(32).toString('base64url')}` }],
      ['a revoked token', { token: revoked.token }],
      ['an expired token', { token: expired.token }],
    ];
    const reference = new Map<string, Captured>();
    for (const op of ops) {
      for (const [name, v] of variants) {
        this.ran();
        const res = await this.request(op, this.victim, v);
        this.inspect(op, res, undefined, name);
        const refKey = op.method === 'HEAD' ? 'HEAD' : 'other';
        const ref = reference.get(refKey);
        if (!ref) {
          if (res.status !== 401 || (op.method !== 'HEAD' && !res.body.toString().includes('"UNAUTHENTICATED"'))) this.problem(`${opKey(op)} with ${name} answered ${res.status} ${res.body.toString()}, not the 401 UNAUTHENTICATED`);
          reference.set(refKey, res);
          continue;
        }
        const d = difference(ref, res);
        if (d) this.problem(`${opKey(op)} with ${name}: not the same 401 as every other: ${d}`);
      }
    }
  }

  /**
   * The attacker on the victim's ids answers exactly what a random well-formed id and malformed ids
   * answer (404), changes nothing of the victim's, and the attacker's own id works (so the 404 is not
   * just a broken route).
   */
  async checkForeignIds(): Promise<void> {
    const sample = malformedIdsFor('call', this.victim).length;
    // foreign, random, each malformed, then the victim's rows and read-back (changing calls) or the caller's own id.
    const ops = this.live(this.ops.filter((o) => o.kind === 'object'), (o) => 2 + sample + (o.mutates ? 2 : 1));
    for (const op of ops) {
      const readBack = this.readBackOp(op);
      const before = readBack ? await this.request(readBack, this.victim, { token: this.victim.token }) : undefined;
      const snapBefore = op.mutates ? await victimSnapshot(this.target.db, this.victim) : undefined;

      this.ran();
      const foreign = await this.request(op, this.victim, { token: this.attacker.token });
      this.inspect(op, foreign, this.attacker, 'foreign id');
      this.validate(op, foreign, 'foreign id');
      if (foreign.status !== 404) this.problem(`${opKey(op)} with another user's id answered ${foreign.status}, not 404: ${foreign.body.toString('utf8', 0, 200)}`);

      const fillWith = (value: (s: NonNullable<RouteCase['params']>[string]) => string) =>
        send(this.target, op.method, fillUrl(op, (s) => value(s)), { token: this.attacker.token, body: op.body?.(this.attacker), headers: op.headers?.() });
      const random = await fillWith(randomIdFor);
      this.ran();
      const dr = difference(foreign, random);
      if (dr) this.problem(`${opKey(op)}: another user's id and a random id answer differently: ${dr}`);
      const source = Object.values(op.params ?? {})[0] ?? 'call';
      for (const [name, bad] of malformedIdsFor(source, this.victim)) {
        this.ran();
        const res = await fillWith(() => bad);
        this.inspect(op, res, this.attacker, name);
        const d = difference(foreign, res);
        if (d) this.problem(`${opKey(op)}: another user's id and a malformed id (${name}) answer differently: ${d}`);
      }

      if (snapBefore !== undefined) {
        this.ran();
        const after = await victimSnapshot(this.target.db, this.victim);
        if (after !== snapBefore) this.problem(`${opKey(op)} by another user changed the victim's data:\n  before ${snapBefore.slice(0, 400)}\n  after  ${after.slice(0, 400)}`);
      }
      if (readBack && before) {
        this.ran();
        const again = await this.request(readBack, this.victim, { token: this.victim.token });
        const d = difference(before, again);
        if (d) this.problem(`${opKey(op)} by another user: the victim's ${opKey(readBack)} reads differently afterwards: ${d}`);
        if (before.status !== 200 && before.status !== 206) this.problem(`${opKey(readBack)} by its owner answered ${before.status}`);
      }

      // The attacker's own object answers (destroying and state-changing calls: the throwaway user's, later).
      if (!op.mutates) {
        this.ran();
        const own = await this.request(op, this.attacker, { token: this.attacker.token });
        this.inspect(op, own, this.attacker, 'own id');
        this.validate(op, own, 'own id');
        if (own.status < 200 || own.status >= 300) this.problem(`${opKey(op)} on the caller's own id answered ${own.status}: ${own.body.toString('utf8', 0, 200)}`);
      }
    }
  }

  /** The GET of the object a mutating route acts on: the longest GET object route whose url starts its url. */
  private readBackOp(op: RouteOp): RouteOp | undefined {
    if (!op.mutates) return undefined;
    return this.ops
      .filter((o) => o.method === 'GET' && o.kind === 'object' && op.url.startsWith(o.url) && this.registered.has(opKey(o)))
      .sort((a, b) => b.url.length - a.url.length)[0];
  }

  /** Every list answers only the caller's objects, page after page, and another user's cursor shows nothing of theirs. */
  async checkLists(): Promise<void> {
    const ops = this.live(this.ops.filter((o) => o.kind === 'list' && o.method === 'GET'), 3);
    for (const op of ops) {
      const firstCursor = new Map<string, string>();
      for (const u of [this.victim, this.attacker]) {
        this.ran();
        const items: string[] = [];
        let own = 0;
        let cursor: string | undefined;
        for (let page = 0; page < 100; page++) {
          const q = new URLSearchParams(op.query ?? {});
          if (op.paged) q.set('limit', '1');
          if (cursor) q.set('cursor', cursor);
          const res = await send(this.target, 'GET', `${op.url}${q.size ? `?${q}` : ''}`, { token: u.token });
          this.inspect(op, res, u, `page ${page + 1}`);
          this.validate(op, res, `page ${page + 1}`);
          if (res.status !== 200) {
            this.problem(`${opKey(op)} page ${page + 1} for its owner answered ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
            break;
          }
          const ids = await this.foreignIds(res, u);
          own += ids.own;
          for (const id of ids.foreign) this.problem(`${opKey(op)} lists ${id}, which is not the caller's`);
          const body = JSON.parse(res.body.toString('utf8')) as { items?: Array<{ id?: unknown }>; nextCursor?: unknown };
          if (!op.paged) break;
          if (!Array.isArray(body.items)) {
            this.problem(`${opKey(op)} is paged but has no items array`);
            break;
          }
          for (const it of body.items) if (typeof it.id === 'string') items.push(it.id);
          if (page === 0 && typeof body.nextCursor === 'string') firstCursor.set(u.id, body.nextCursor);
          if (typeof body.nextCursor !== 'string') break;
          cursor = body.nextCursor;
        }
        if (own === 0) this.problem(`${opKey(op)} showed the caller none of their own objects: the list check proves nothing`);
        const expected = op.expectIds?.(u);
        if (expected && JSON.stringify([...items].sort()) !== JSON.stringify([...expected].sort())) {
          this.problem(`${opKey(op)} listed ${JSON.stringify(items)} for a user who has ${JSON.stringify(expected)}`);
        }
      }
      // The victim's cursor in the attacker's hands.
      const victimCursor = firstCursor.get(this.victim.id);
      if (op.paged && victimCursor) {
        this.ran();
        const res = await send(this.target, 'GET', `${op.url}?limit=1&cursor=${encodeURIComponent(victimCursor)}`, { token: this.attacker.token });
        this.inspect(op, res, this.attacker, "another user's cursor");
        if (res.status === 200) for (const id of (await this.foreignIds(res, this.attacker)).foreign) this.problem(`${opKey(op)} with another user's cursor lists ${id}`);
      } else {
        this.ran();
      }
    }
  }

  /**
   * Media grants: the victim's grant is served to anyone who holds it, and it serves the victim's
   * recording, nothing else; unknown and malformed grants give one 404; the attacker cannot get a grant
   * for the victim's recording.
   */
  async checkGrants(): Promise<void> {
    const ops = this.live(this.ops.filter((o) => o.kind === 'grant'), 4 + malformedIdsFor('grant', this.victim).length);
    for (const op of ops) {
      for (const [who, token] of [['the attacker', this.attacker.token], ['anyone', undefined]] as const) {
        this.ran();
        const res = await send(this.target, op.method, fillUrl(op, () => this.victim.grant), token === undefined ? {} : { token });
        this.inspect(op, res, this.victim, `grant held by ${who}`);
        if (res.status !== 200 && res.status !== 206) this.problem(`${opKey(op)}: the victim's grant fetched by ${who} answered ${res.status}`);
        else if (op.method === 'GET' && !res.body.equals(this.victim.recordings[0]!.ogg)) this.problem(`${opKey(op)}: the victim's grant served ${res.body.length} bytes that are not its recording`);
      }
      const random = await send(this.target, op.method, fillUrl(op, () => randomIdFor('grant')), { token: this.attacker.token });
      this.ran();
      if (random.status !== 404) this.problem(`${opKey(op)} with an unknown grant answered ${random.status}`);
      const anonymous = await send(this.target, op.method, fillUrl(op, () => randomIdFor('grant')));
      this.ran();
      const da = difference(random, anonymous);
      if (da) this.problem(`${opKey(op)}: an unknown grant answers differently with and without a token: ${da}`);
      for (const [name, bad] of [...malformedIdsFor('grant', this.victim), ['the victim’s recording id', this.victim.recordings[0]!.id] as [string, string]]) {
        this.ran();
        const res = await send(this.target, op.method, fillUrl(op, () => bad), { token: this.attacker.token });
        const d = difference(random, res);
        if (d) this.problem(`${opKey(op)}: an unknown grant and a malformed one (${name}) answer differently: ${d}`);
      }
    }
    // Whatever the routes, no grant for the victim's recordings may belong to anyone else.
    this.tally.generated++;
    this.ran();
    const recs = this.victim.recordings.map((r) => r.id);
    const stolen = await this.target.db.selectFrom('grants').select(['id', 'user_id']).where('recording_id', 'in', recs).where('user_id', '!=', this.victim.id).execute();
    if (stolen.length) this.problem(`grants for the victim's recordings were issued to another user: ${JSON.stringify(stolen)}`);
  }

  /** Public routes show no user's data to anyone. */
  async checkPublic(): Promise<void> {
    const ops = this.live(this.ops.filter((o) => o.kind === 'public' && !o.url.includes('*')), 1);
    for (const op of ops) {
      this.ran();
      const res = await send(this.target, op.method, op.url);
      this.inspect(op, res, undefined, 'anonymous');
    }
  }

  /**
   * Each `user` route called successfully by its owner (the attacker for reads, the throwaway user for
   * changes, destroying calls last): 2xx, and the body matches the strict schema.
   */
  async checkOwnCalls(): Promise<void> {
    const ops = this.live(this.ops.filter((o) => (o.kind === 'self' || o.kind === 'list' || o.kind === 'object') && o.access === 'user'), 1);
    const ordered = [...ops.filter((o) => !o.destructive), ...ops.filter((o) => o.destructive)];
    for (const op of ordered) {
      const u = op.mutates ? this.scratch : this.attacker;
      this.ran();
      const res = await this.request(op, u, { token: u.token });
      this.inspect(op, res, u, 'own call');
      this.validate(op, res, 'own call');
      if (res.status < 200 || res.status >= 300) this.problem(`${opKey(op)} by its owner answered ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
    }
  }
}

/**
 * A copy of a JSON schema in which every object schema refuses properties it does not name (a schema
 * that gives `additionalProperties` a schema of its own, a typed map, keeps it).
 */
export function strictSchema(schema: unknown): unknown {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' || k === 'patternProperties' || k === '$defs' || k === 'definitions' ? mapValues(v, walk) : walk(v);
    const isObject = out.type === 'object' || (out.type === undefined && out.properties !== undefined);
    if (isObject && (out.additionalProperties === undefined || out.additionalProperties === true) && out.patternProperties === undefined) out.additionalProperties = false;
    return out;
  };
  return walk(JSON.parse(JSON.stringify(schema)));
}

function mapValues(v: unknown, f: (x: unknown) => unknown): unknown {
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, f(x)]));
}

/** The tables of the current database (schema, on PostgreSQL) and their columns. */
export async function tablesOf(db: Db): Promise<Array<{ name: string; columns: Set<string> }>> {
  const tables = await db.introspection.getTables();
  let schema: string | undefined;
  if (tables.some((t) => t.schema !== undefined)) {
    schema = (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s;
  }
  return tables.filter((t) => !t.isView && (schema === undefined || t.schema === schema)).map((t) => ({ name: t.name, columns: new Set(t.columns.map((c) => c.name)) }));
}

/** Owner of every id in the database (tables with `id` and `user_id`), and of every grant by token hash. */
async function idOwners(db: Db): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of await tablesOf(db)) {
    if (t.name === 'users') {
      for (const r of (await sql<{ id: string }>`select id from users`.execute(db)).rows) out.set(r.id, r.id);
      continue;
    }
    if (!t.columns.has('id') || !t.columns.has('user_id')) continue;
    for (const r of (await sql<{ id: string; user_id: string }>`select id, user_id from ${sql.table(t.name)}`.execute(db)).rows) out.set(String(r.id), r.user_id);
    if (t.columns.has('token_hash') && t.name === 'grants') {
      for (const r of (await sql<{ token_hash: string; user_id: string }>`select token_hash, user_id from grants`.execute(db)).rows) out.set(`grant:${r.token_hash}`, r.user_id);
    }
  }
  return out;
}

const grantHash = (token: string) => createHash('sha256').update(token).digest('base64url');

/**
 * Everything stored about the victim: their user row and every row of any table that names them, their
 * calls or their recordings (tables added later included). Compared before and after an attack.
 */
export async function victimSnapshot(db: Db, victim: Subject): Promise<string> {
  const parts: string[] = [];
  const recs = victim.recordings.map((r) => r.id);
  for (const t of (await tablesOf(db)).sort((a, b) => a.name.localeCompare(b.name))) {
    const conds = [];
    if (t.name === 'users') conds.push(sql`id = ${victim.id}`);
    if (t.columns.has('user_id')) conds.push(sql`user_id = ${victim.id}`);
    if (t.columns.has('recording_id')) conds.push(sql`recording_id in (${sql.join(recs)})`);
    if (t.columns.has('call_id')) conds.push(sql`call_id in (${sql.join(victim.calls)})`);
    if (t.name === 'recordings') conds.push(sql`id in (${sql.join(recs)})`);
    if (t.name === 'calls') conds.push(sql`id in (${sql.join(victim.calls)})`);
    if (conds.length === 0) continue;
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(t.name)} where ${sql.join(conds, sql` or `)}`.execute(db)).rows;
    parts.push(`${t.name}: ${rows.map((r) => JSON.stringify(r)).sort().join(', ')}`);
  }
  return parts.join('\n');
}
