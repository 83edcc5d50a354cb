import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type Config } from './schema.js';
import { MonologueError } from '../errors.js';

export type { Config };

export interface LoadOptions {
  /** `--config FILE`; falls back to `MONOLOGUE_CONFIG`. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied last: tests and the CLI use it. */
  overrides?: DeepPartial<Config>;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/**
 * Layers, later wins: config/default.json, the config file, environment variables, overrides.
 * Environment: `MONOLOGUE_` + the key path in upper case with `__` between levels
 * (`MONOLOGUE_SIP__TRUNK__HOST`, `MONOLOGUE_DATA_DIR`); words inside a key split by `_`; arrays as JSON or comma lists;
 * `DATABASE_URL` sets `database.url`.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  let merged = readJson(join(packageRoot(), 'config', 'default.json'));
  const file = options.file ?? env.MONOLOGUE_CONFIG;
  if (file) merged = deepMerge(merged, readJson(resolve(file)));
  merged = deepMerge(merged, fromEnv(env, merged));
  if (options.overrides) merged = deepMerge(merged, options.overrides as Record<string, unknown>);
  return validate(merged);
}

export function validate(candidate: unknown): Config {
  const converted = Value.Convert(ConfigSchema, candidate);
  const first = Value.Errors(ConfigSchema, converted).First();
  if (first) {
    const key = first.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    const shown = first.value === undefined ? 'nothing' : JSON.stringify(first.value);
    const expected = (first.schema.description as string | undefined) ?? first.message;
    const hint = first.message.startsWith('Unexpected property') ? 'remove it or check its spelling' : `expected ${expected}`;
    throw new MonologueError('CONFIG_INVALID', `config key "${key}" has ${shown}: ${hint}`);
  }
  const config = converted as Config;
  const r = config.media.rtpengine;
  if (r.portMin > r.portMax) {
    throw new MonologueError('CONFIG_INVALID', `config key "media.rtpengine.portMin" (${r.portMin}) must not exceed media.rtpengine.portMax (${r.portMax})`);
  }
  const trunks = config.sip.trunks.length > 0 ? config.sip.trunks.map((t, i) => ({ t, key: `sip.trunks.${i}` })) : [{ t: config.sip.trunk, key: 'sip.trunk' }];
  for (const { t, key } of trunks) {
    if (t.scheme === 'sips' && t.transport !== 'tls') {
      throw new MonologueError('CONFIG_INVALID', `config key "${key}.scheme" is "sips": that needs "${key}.transport" "tls"`);
    }
  }
  const tls = config.sip.tls;
  if (tls.port > 0 && (!tls.certFile || !tls.keyFile)) {
    throw new MonologueError('CONFIG_INVALID', 'config key "sip.tls.port" is set: "sip.tls.certFile" and "sip.tls.keyFile" must name the PEM certificate and key');
  }
  const m = config.metrics;
  if (m.enabled && m.port > 0) {
    // The metrics listener is its own socket: sharing a port would either fail to bind or put /metrics where it must not be.
    const clash = m.port === config.http.port ? 'http.port' : m.port === config.admin.port ? 'admin.port' : undefined;
    if (clash) throw new MonologueError('CONFIG_INVALID', `config key "metrics.port" (${m.port}) is also ${clash}: give /metrics its own port, or 0 for any free one`);
  }
  if (config.storage.kind === 's3' && !config.storage.s3.bucket) {
    throw new MonologueError('CONFIG_INVALID', 'config key "storage.s3.bucket" is empty: storage.kind "s3" needs a bucket name');
  }
  return config;
}

/** The folder holding package.json, whether we run from src/ (tsx) or dist/ (compiled). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new MonologueError('INSTALL_BROKEN', 'cannot find the Monologue package root (package.json)');
    dir = parent;
  }
  return dir;
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MonologueError('CONFIG_UNREADABLE', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) throw new Error('the top level must be a JSON object');
    return parsed;
  } catch (err) {
    throw new MonologueError('CONFIG_INVALID', `config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function fromEnv(env: NodeJS.ProcessEnv, shape: Json): Json {
  const out: Json = {};
  if (env.DATABASE_URL) out.database = { url: env.DATABASE_URL };
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('MONOLOGUE_') || name === 'MONOLOGUE_CONFIG' || raw === undefined) continue;
    const path = name.slice('MONOLOGUE_'.length).toLowerCase().split('__').map(camel);
    let cursor = out;
    let template: unknown = shape;
    path.forEach((key, i) => {
      template = isObject(template) ? template[key] : undefined;
      if (i === path.length - 1) {
        cursor[key] = Array.isArray(template) ? parseList(raw) : raw;
      } else {
        cursor = (cursor[key] = isObject(cursor[key]) ? cursor[key] : {}) as Json;
      }
    });
  }
  return out;
}

/** `trunk_codecs` → `trunkCodecs`: words split by `_`, levels by `__`. */
function camel(segment: string): string {
  return segment.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function parseList(raw: string): unknown {
  const trimmed = raw.trim();
  if (trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return raw; // validation reports it with the key name
    }
  }
  return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
}

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(base[k]) ? deepMerge(base[k] as Json, v) : v;
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
