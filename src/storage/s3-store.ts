/**
 * ObjectStore over S3 (or an S3-compatible server) with @aws-sdk/client-s3. Fails fast: short connect and
 * request timeouts, an overall deadline per call and few attempts, because the spool does the retrying.
 * Errors name the endpoint and bucket, never the credentials.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { MonologueError, errorMessage } from '../errors.js';
import { objectNotFound, validateKey, validatePrefix, type ObjectStore } from './object-store.js';

export interface S3StoreOptions {
  /** e.g. `http://127.0.0.1:9000` for MinIO/s3rver; omit for AWS. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** `true` for most S3-compatible servers (`http://host/bucket/key`). */
  forcePathStyle: boolean;
  /** Both or neither; omitted → the SDK's default chain (env, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Deadline for one whole call (all attempts), ms. Default 5000. Connect timeout is min(this, 2000). */
  requestTimeoutMs?: number;
  /** SDK attempts per call (1 = no SDK retry). Default 2. */
  maxAttempts?: number;
  /** ListObjectsV2 page size (1..1000). Default 1000; small values exercise pagination in tests. */
  listPageSize?: number;
}

const DELETE_BATCH = 1000;

function errName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const meta: unknown = err.$metadata;
  if (typeof meta !== 'object' || meta === null || !('httpStatusCode' in meta)) return undefined;
  return typeof meta.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

export function createS3Store(opts: S3StoreOptions): ObjectStore {
  const { bucket } = opts;
  const where = `S3 endpoint ${opts.endpoint ?? `aws (${opts.region})`} bucket ${bucket}`;
  const timeoutMs = opts.requestTimeoutMs ?? 5000;
  const pageSize = Math.max(1, Math.min(1000, opts.listPageSize ?? 1000));
  if ((opts.accessKeyId === undefined) !== (opts.secretAccessKey === undefined)) {
    throw new MonologueError('CONFIG_INVALID', `${where}: give both accessKeyId and secretAccessKey, or neither`);
  }

  const config: S3ClientConfig = {
    region: opts.region,
    forcePathStyle: opts.forcePathStyle,
    maxAttempts: opts.maxAttempts ?? 2,
    requestHandler: { connectionTimeout: Math.min(timeoutMs, 2000), requestTimeout: timeoutMs },
    // Bodies are AES-GCM ciphertext (authenticated end to end); only send checksums where the API requires
    // them, which keeps S3-compatible servers that predate the SDK's default CRC32 trailers working.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (opts.endpoint !== undefined) config.endpoint = opts.endpoint;
  if (opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined) {
    config.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey };
  }
  const client = new S3Client(config);

  const unavailable = (op: string, err: unknown): MonologueError => {
    const status = httpStatus(err);
    // No `cause`: SDK errors can drag request details along; the name, status and message are enough.
    return new MonologueError(
      'STORAGE_UNAVAILABLE',
      `${where}: ${op} failed: ${errName(err)}${status !== undefined ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`,
    );
  };

  /** One call with an overall deadline covering every attempt and body transfer. */
  async function call<T>(op: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await fn(signal);
    } catch (err) {
      if (err instanceof MonologueError) throw err;
      if (signal.aborted) throw unavailable(op, new Error(`timed out after ${timeoutMs} ms`));
      throw unavailable(op, err);
    }
  }

  async function listKeys(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await call('list', (abortSignal) =>
        client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: pageSize, ContinuationToken: token }),
          { abortSignal },
        ),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }

  return {
    kind: 's3',

    async put(key, body) {
      validateKey(key);
      await call('put', (abortSignal) =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentType: 'application/octet-stream',
          }),
          { abortSignal },
        ),
      );
    },

    async get(key) {
      validateKey(key);
      return call('get', async (abortSignal) => {
        try {
          const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
          if (!res.Body) return Buffer.alloc(0);
          return Buffer.from(await res.Body.transformToByteArray());
        } catch (err) {
          if (errName(err) === 'NoSuchKey' || httpStatus(err) === 404) throw objectNotFound(key);
          throw err;
        }
      });
    },

    async peek(key, length) {
      validateKey(key);
      return call('peek', async (abortSignal) => {
        try {
          if (length <= 0) {
            const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
            return { bytes: Buffer.alloc(0), size: head.ContentLength ?? 0 };
          }
          const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${length - 1}` }), { abortSignal });
          const bytes = res.Body ? Buffer.from(await res.Body.transformToByteArray()) : Buffer.alloc(0);
          // `bytes 0-21/1234`: the total is after the slash; a server that ignored the range sent it all.
          const total = /\/(\d+)$/.exec(res.ContentRange ?? '')?.[1];
          return { bytes: bytes.subarray(0, length), size: total !== undefined ? Number(total) : bytes.length };
        } catch (err) {
          if (errName(err) === 'NoSuchKey' || errName(err) === 'NotFound' || httpStatus(err) === 404) throw objectNotFound(key);
          // An empty object has no byte 0: S3 refuses the range (416) rather than answer nothing.
          if (httpStatus(err) === 416 || errName(err) === 'InvalidRange') return { bytes: Buffer.alloc(0), size: 0 };
          throw err;
        }
      });
    },

    list: listKeys,

    async delete(key) {
      validateKey(key);
      await call('delete', (abortSignal) =>
        client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }),
      );
    },

    async deletePrefix(prefix) {
      const keys = await listKeys(prefix);
      let n = 0;
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        const batch = keys.slice(i, i + DELETE_BATCH);
        const res = await call('delete', (abortSignal) =>
          client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: false } }),
            { abortSignal },
          ),
        );
        const failed = res.Errors ?? [];
        if (failed.length > 0) {
          const first = failed[0];
          throw unavailable('delete', new Error(`${failed.length} object(s) not deleted, first ${first?.Key}: ${first?.Code} ${first?.Message}`));
        }
        n += res.Deleted?.length ?? batch.length;
      }
      return n;
    },

    async ping() {
      try {
        await call('ping', (abortSignal) => client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal }));
        return true;
      } catch {
        return false;
      }
    },
  };
}
