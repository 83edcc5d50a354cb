/** Minimal typings for bencode@2.0.3 (the package ships none). */
declare module 'bencode' {
  /** Values bencode can carry; strings decode as Buffers unless an encoding is given. */
  export type BencodeValue = number | string | Buffer | Uint8Array | BencodeValue[] | { [key: string]: BencodeValue };
  export function encode(data: unknown, buffer?: Buffer, offset?: number): Buffer;
  export function decode(data: Buffer | Uint8Array | string, start?: number, end?: number, encoding?: string): unknown;
  export function byteLength(data: unknown): number;
  export function encodingLength(data: unknown): number;
  const bencode: { encode: typeof encode; decode: typeof decode; byteLength: typeof byteLength; encodingLength: typeof encodingLength };
  export default bencode;
}
