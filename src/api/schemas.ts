import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { badRequest } from './replies.js';

/**
 * Shared route schemas. Ids are checked for shape only here; a wrong shape answers the same 404 as an
 * unknown id (replies.ts), so the schema never tells a user which ids exist.
 */
export const idPattern = (prefix: string) => `^${prefix}_[A-Za-z0-9_-]{16,43}$`;
export const IdParam = <K extends string>(name: K, prefix: string) =>
  Type.Object({ [name]: Type.String({ pattern: idPattern(prefix) }) } as Record<K, ReturnType<typeof Type.String>>, { additionalProperties: false });

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });
/** The body of a page of `T` items (what the web page reads: `PageOf<typeof CallItem>`). */
export type PageOf<T extends TSchema> = Static<ReturnType<typeof Page<T>>>;

/** Times in responses are ISO 8601 UTC strings from the server's clock. */
export const Timestamp = Type.String({ format: 'date-time' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
export const iso = (ms: number) => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

/** Keyset position (newest first): the creation time and id of the last item served. Opaque to clients. */
export interface Cursor {
  at: number;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id])).toString('base64url');
}

export function decodeCursor(s: string | undefined): Cursor | undefined {
  if (s === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string' && v[1].length <= 64) return { at: v[0] as number, id: v[1] };
  } catch {
    // falls through to the error below
  }
  throw badRequest('BAD_CURSOR', 'cursor is not one this API gave out; start again without it');
}
