/**
 * The `Range` request header for one representation of `size` bytes (RFC 9110 §14.1.2, §14.2), as the
 * media route answers it:
 *   none     no usable Range: answer 200 with the whole file. Also for a header that does not parse,
 *            another unit than `bytes`, and more than one range (the RFC lets a server ignore Range;
 *            a multipart/byteranges body is not worth its complexity for audio players, which ask for one).
 *   range    one satisfiable range, clamped to the file: answer 206 with `Content-Range: bytes a-b/size`.
 *   unsatisfiable  one range that selects nothing (first byte at or past the end, a zero-length suffix,
 *            any range of an empty file): answer 416 with `Content-Range: bytes *\/size`.
 */
export type RangeAnswer = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

const SPEC = /^bytes=([^,]*)$/i;
const ONE = /^(\d*)-(\d*)$/;
/** Longer digit strings than this are not a byte position any file here has (and would lose precision). */
const MAX_DIGITS = 15;

export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'none' };
  const spec = SPEC.exec(header.trim());
  if (!spec) return { kind: 'none' };
  const m = ONE.exec((spec[1] as string).trim());
  if (!m) return { kind: 'none' };
  const [, a = '', b = ''] = m;
  if (a.length > MAX_DIGITS || b.length > MAX_DIGITS) return { kind: 'none' };
  if (a === '') {
    // bytes=-n: the last n bytes
    if (b === '') return { kind: 'none' };
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return { kind: 'none' }; // invalid per the RFC: ignored, not refused
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: b === '' ? size - 1 : Math.min(Number(b), size - 1) };
}
