/**
 * The command line of monologue-load: parsed with node:util parseArgs and checked as a whole before
 * anything starts, so a mistake costs no service start-up; errors are USAGE (exit 2) and say what to fix.
 */
import { parseArgs } from 'node:util';
import { MonologueError, errorMessage } from '../../src/errors.js';
import type { CallsOptions } from './calls.js';
import type { CpsOptions } from './cps.js';
import type { HostPort } from './deployment.js';
import type { LocalOptions } from './local-deployment.js';
import type { SoakOptions } from './soak.js';
import type { TargetOptions } from './target.js';

export const USAGE = `usage: monologue-load <calls|cps|soak> [options]

scenarios:
  calls   N concurrent calls from libwebrtc dialers, ramped, held, each checking it hears the trunk's tone
  cps     call setup + immediate teardown, closed loop (--sockets) or open loop (--rate), no media
  soak    calls kept up for a long time, sampling the service's memory, event-loop delay and handles

calls and soak:
  --calls N           concurrent calls (calls: 10; soak: 40)
  --rate R            ramp: calls started per second (5)
  --hold DURATION     how long each call is held (calls: 10s, once all are up; soak: 60s per call)
  --mix OUT:IN        outbound:inbound ratio, e.g. 3:1 (1:0)
  --record | --no-record   users are enrolled with consent (recorded), or not (default --record)
soak:
  --duration DURATION (30m)   --sample DURATION (10s)   --warmup DURATION (2m, at most a third of --duration)
cps:
  --sockets K         signaling sockets, each its own user (10)
  --rate R            open loop at R calls/s over the sockets (default: closed loop, one call per socket)
  --duration DURATION (10s)   --max-calls N  (stop earlier after N calls)

common:
  --to NUMBER         number outbound calls dial (+15550002222)
  --profile           local mode: the service writes a V8 CPU profile into a folder it prints
  --log-level LEVEL   local mode: the service's log level (info)
  --keep              local mode: keep the service's data folder (config, service.log) and print where
  -h, --help

target mode (a running deployment; every address is the operator's):
  --target URL        the service's public base URL (signaling at URL/v1/signal)
  --tokens FILE       one bearer token per line, optionally "TOKEN +1NUMBER" (inbound needs the number)
  --admin URL --admin-key KEY   create users and tokens through the admin API instead
                      (or the key in MONOLOGUE_LOAD_ADMIN_KEY, kept out of ps and shell history)
  --metrics URL       the service's /metrics (CPU, memory, recorder packets); without it those are null
  --trunk HOST:PORT   where the deployment's trunk points: the trunk emulator (sipp) listens there
  --sip HOST:PORT     the service's SIP listener (needed for inbound calls)

DURATION: 500ms, 15s, 5m, 1h or plain seconds.`;

export type Scenario = 'calls' | 'cps' | 'soak';
const SCENARIOS: readonly Scenario[] = ['calls', 'cps', 'soak'];

const OPTIONS = {
  calls: { type: 'string' },
  rate: { type: 'string' },
  hold: { type: 'string' },
  mix: { type: 'string' },
  record: { type: 'boolean' },
  'no-record': { type: 'boolean' },
  duration: { type: 'string' },
  sample: { type: 'string' },
  warmup: { type: 'string' },
  sockets: { type: 'string' },
  'max-calls': { type: 'string' },
  to: { type: 'string' },
  profile: { type: 'boolean' },
  'log-level': { type: 'string' },
  keep: { type: 'boolean' },
  target: { type: 'string' },
  tokens: { type: 'string' },
  admin: { type: 'string' },
  'admin-key': { type: 'string' },
  metrics: { type: 'string' },
  trunk: { type: 'string' },
  sip: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which scenario takes which option (the common and target ones go with all). */
const ONLY: Partial<Record<keyof typeof OPTIONS, readonly Scenario[]>> = {
  calls: ['calls', 'soak'],
  hold: ['calls', 'soak'],
  mix: ['calls', 'soak'],
  record: ['calls', 'soak'],
  'no-record': ['calls', 'soak'],
  duration: ['cps', 'soak'],
  sample: ['soak'],
  warmup: ['soak'],
  sockets: ['cps'],
  'max-calls': ['cps'],
};
const TARGET_ONLY = ['tokens', 'admin', 'admin-key', 'metrics', 'trunk', 'sip'] as const;
const LOCAL_ONLY = ['profile', 'log-level', 'keep'] as const;

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

export interface Plan {
  scenario: Scenario;
  values: Values;
}

export function usage(message: string): MonologueError {
  return new MonologueError('USAGE', `${message}\nrun "monologue-load --help" for every option`);
}

/** argv → a scenario and its checked options; a USAGE error says what to fix. */
export function parse(argv: string[]): Plan | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage(errorMessage(err).replace(/\. To specify a positional argument.*$/s, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const [scenario, ...extra] = positionals;
  if (!scenario) throw usage('name a scenario: calls, cps or soak');
  if (!SCENARIOS.includes(scenario as Scenario)) throw usage(`unknown scenario "${scenario}": use calls, cps or soak`);
  if (extra.length) throw usage(`unexpected argument "${extra[0]}"`);
  for (const [name, scenarios] of Object.entries(ONLY)) {
    if (values[name as keyof Values] !== undefined && !scenarios.includes(scenario as Scenario)) throw usage(`--${name} does not apply to ${scenario} (only to ${scenarios.join(', ')})`);
  }
  if (values.record && values['no-record']) throw usage('give --record or --no-record, not both');
  if (values.target === undefined) {
    for (const name of TARGET_ONLY) if (values[name] !== undefined) throw usage(`--${name} needs --target URL (local mode starts its own service)`);
  } else {
    for (const name of LOCAL_ONLY) if (values[name] !== undefined) throw usage(`--${name} works only in local mode (without --target)`);
  }
  return { scenario: scenario as Scenario, values };
}

/** A whole number in [min, max]. */
function integer(values: Values, name: keyof Values, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`--${name} must be a whole number from ${min} to ${max}, not "${String(raw)}"`);
  return n;
}

function positive(values: Values, name: keyof Values, fallback: number | undefined, max: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw usage(`--${name} must be a number above 0 and at most ${max}, not "${String(raw)}"`);
  return n;
}

/** `500ms`, `15s`, `5m`, `1h` or plain seconds → seconds. */
export function duration(values: Values, name: keyof Values, fallbackS: number, maxS: number): number {
  const raw = values[name];
  if (raw === undefined) return fallbackS;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(raw).trim());
  const s = m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!(s > 0) || s > maxS) throw usage(`--${name} must be a duration such as 500ms, 15s, 5m or 1h, above 0 and at most ${maxS} s, not "${String(raw)}"`);
  return s;
}

function mix(values: Values): { outbound: number; inbound: number } {
  if (values.mix === undefined) return { outbound: 1, inbound: 0 };
  const m = /^(\d+):(\d+)$/.exec(values.mix);
  const [o, i] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || o + i === 0) throw usage(`--mix must be OUTBOUND:INBOUND whole numbers, e.g. 3:1, not "${values.mix}"`);
  return { outbound: o, inbound: i };
}

function hostPort(values: Values, name: 'trunk' | 'sip'): HostPort | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const m = /^([^:\s]+):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw usage(`--${name} must be HOST:PORT, e.g. 127.0.0.1:5080, not "${raw}"`);
  return { host: m[1]!, port };
}

function url(values: Values, name: 'target' | 'admin' | 'metrics'): URL | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw usage(`--${name} must be an http:// or https:// URL, not "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(`--${name} must be an http:// or https:// URL, not "${raw}"`);
  // The base URL's path is kept: relative paths resolve below it.
  if (name !== 'metrics' && !u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** What `plan` asks for, every value checked: the scenario's options and where it runs. */
export type Job =
  | { scenario: 'calls'; options: CallsOptions; where: Where }
  | { scenario: 'soak'; options: SoakOptions; where: Where }
  | { scenario: 'cps'; options: CpsOptions; where: Where };

export type Where = { mode: 'local'; local: Omit<LocalOptions, 'concurrency'> } | { mode: 'target'; target: TargetOptions };

export function job(plan: Plan): Job {
  const v = plan.values;
  const to = v.to ?? '+15550002222';
  if (!/^\+[1-9]\d{6,14}$/.test(to)) throw usage(`--to must be an E.164 number such as +15550002222, not "${to}"`);
  if (plan.scenario === 'cps') {
    const options: CpsOptions = { sockets: integer(v, 'sockets', 10, 1, 1000), rate: positive(v, 'rate', undefined, 5000), durationS: duration(v, 'duration', 10, 3600), maxCalls: v['max-calls'] === undefined ? undefined : integer(v, 'max-calls', 0, 1, 10_000_000), to };
    return { scenario: 'cps', options, where: where(v, false) };
  }
  const soak = plan.scenario === 'soak';
  const base = { calls: integer(v, 'calls', soak ? 40 : 10, 1, 1000), rate: positive(v, 'rate', 5, 1000)!, mix: mix(v), record: v['no-record'] !== true, to };
  const inbound = base.mix.inbound > 0;
  if (!soak) return { scenario: 'calls', options: { ...base, holdS: duration(v, 'hold', 10, 86400) }, where: where(v, inbound) };
  const durationS = duration(v, 'duration', 1800, 7 * 86400);
  const options: SoakOptions = { ...base, holdS: duration(v, 'hold', 60, 86400), durationS, sampleS: duration(v, 'sample', 10, 3600), warmupS: duration(v, 'warmup', Math.min(120, durationS / 3), durationS) };
  if (options.warmupS >= durationS) throw usage('--warmup must be shorter than --duration');
  return { scenario: 'soak', options, where: where(v, inbound) };
}

/** Local mode's options, or the target's checked as a whole. */
function where(v: Values, inbound: boolean): Where {
  const target = url(v, 'target');
  if (!target) {
    const logLevel = v['log-level'] ?? 'info';
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw usage(`--log-level must be one of fatal, error, warn, info, debug, trace, silent, not "${logLevel}"`);
    return { mode: 'local', local: { logLevel, profile: v.profile === true, keep: v.keep === true } };
  }
  const trunk = hostPort(v, 'trunk');
  if (!trunk) throw usage("--target needs --trunk HOST:PORT: where the deployment's trunk points, for the trunk emulator to listen");
  const sip = hostPort(v, 'sip');
  if (inbound && !sip) throw usage("inbound calls (--mix) need --sip HOST:PORT: the service's SIP listener");
  const adminUrl = url(v, 'admin');
  const adminKey = v['admin-key'] ?? process.env.MONOLOGUE_LOAD_ADMIN_KEY;
  if (v.tokens === undefined && !adminUrl) throw usage('--target needs dialer accounts: --tokens FILE, or --admin URL with --admin-key KEY');
  if (v.tokens !== undefined && adminUrl) throw usage('give --tokens or --admin, not both');
  if (adminUrl && !adminKey) throw usage('--admin needs --admin-key KEY (or MONOLOGUE_LOAD_ADMIN_KEY)');
  return { mode: 'target', target: { target, trunk, sip, metrics: url(v, 'metrics'), tokens: v.tokens, admin: adminUrl ? { url: adminUrl, key: adminKey! } : undefined } };
}
