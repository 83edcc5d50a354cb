/**
 * Queries built and compiled by Kysely once, then run with fresh values.
 *
 * Why: Kysely builds a query tree and compiles it to SQL on every execution. The call-setup path runs the same
 * handful of statements for every call (the owner's row, the daily tally, the call record's insert and updates),
 * and building and compiling them measured ~5% of the service's CPU in `monologue-load cps`. Here a query is
 * built once with named slots in place of its values; Kysely compiles it to SQL whose parameters are those slots,
 * and each run sends that SQL with the values put where their slots were. The SQL is Kysely's own, for whichever
 * dialect the database speaks; the values stay bound parameters, never text in the SQL.
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';

/** A value's stand-in while the query is compiled. */
class Slot {
  constructor(readonly name: string) {}
}

/** What `build` gets: `slot('name')` stands for `args.name`. */
export type SlotOf<A> = <K extends keyof A & string>(name: K) => A[K];

export interface Prepared<A, R> {
  execute(args: A): Promise<QueryResult<R>>;
}

/**
 * `build(slot)` makes the query with `slot('name')` wherever a value of `args` goes (each slot as a whole value:
 * not inside an array, not transformed). It is compiled on the first run. Any other value in the query is a
 * constant: the one it had then is sent every time. Every slot must end up a parameter: a query whose compiled
 * SQL leaves one out (a slot used in a condition rather than as a value) is refused on that first run.
 */
export function prepare<DB, A extends Record<string, unknown>, R>(
  db: Kysely<DB>,
  build: (slot: SlotOf<A>) => Compilable<R>,
): Prepared<A, R> {
  let compiled: { sql: string; params: ReadonlyArray<Slot | { value: unknown }> } | undefined;
  const compile = () => {
    const used = new Set<string>();
    const query = build(<K extends keyof A & string>(name: K) => {
      used.add(name);
      return new Slot(name) as unknown as A[K];
    }).compile();
    const slots = new Set(query.parameters.flatMap((p) => (p instanceof Slot ? [p.name] : [])));
    for (const name of used) if (!slots.has(name)) throw new Error(`prepare: slot ${name} is not a parameter of ${query.sql}`);
    return { sql: query.sql, params: query.parameters.map((p) => (p instanceof Slot ? p : { value: p })) };
  };
  return {
    execute(args: A): Promise<QueryResult<R>> {
      try {
        compiled ??= compile();
      } catch (err) {
        return Promise.reject(err);
      }
      const { sql, params } = compiled;
      return db.executeQuery<R>(CompiledQuery.raw(sql, params.map((p) => (p instanceof Slot ? args[p.name as keyof A] : p.value))));
    },
  };
}
