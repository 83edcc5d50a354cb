#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from './config/load.js';
import { createLogger } from './log.js';
import { destination } from 'pino';
import { MonologueError } from './errors.js';
import { runCliMain } from './cli-main.js';
import { openStore, startService } from './service.js';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { createRecordingCatalog } from './recordings/catalog.js';
import { Archive } from './recordings/archive.js';
import { createAuditLog } from './audit/audit-log.js';
import { createGrants } from './recordings/grants.js';
import { createShredder } from './recordings/shred.js';
import { createRetention } from './recordings/retention.js';
import { changeConsent } from './accounts/consent.js';
import { kekDir, openObjectStore } from './recordings/storage-setup.js';
import { openKeyring, retireKek, rotateKeyring } from './crypto/kek.js';
import { atomicWrite, errno, FILE_MODE } from './storage/fs-util.js';
import { createLedger, createSettler, createWithdrawals, earningsReport, type PayoutState } from './payouts/index.js';
import { runEventsCommand } from './events/cli-events.js';
import { eventSink } from './events/outbox.js';
import { generateAdminKey, hashAdminKey } from './api/admin-key.js';

const USAGE = `usage:
  monologue serve [--config FILE]
  monologue user create --phone +15550001111 [--enrolled] [--consent VERSION] [--config FILE]
  monologue user consent --user USER_ID (--version VERSION | --revoke) [--config FILE]
  monologue recording decrypt RECORDING_ID --out FILE.opus [--force] [--config FILE]
  monologue recording verify RECORDING_ID [--config FILE]
  monologue retention sweep [--config FILE]
  monologue keys rotate [--config FILE]
  monologue keys retire KEK_ID [--config FILE]
  monologue review list | release CALL_ID | reject CALL_ID [--config FILE]
  monologue earnings --user USER_ID [--config FILE]
  monologue payouts list [--state pending|paid|failed] | mark-paid PAYOUT_ID | fail PAYOUT_ID [--reason TEXT] [--config FILE]
  monologue token issue --user USER_ID [--ttl-hours N] [--config FILE]
  monologue token revoke --session SESSION_ID [--config FILE]
  monologue admin hash-key            (reads the admin key on stdin; prints the admin.keyHash for it)
  monologue admin hash-key --generate (makes a strong key; prints it and its hash)
  monologue audit verify [--config FILE]
  monologue events list [--state pending|delivered|failed] | redeliver EVENT_ID [--config FILE]`;

/** Operator commands print one JSON object on stdout; failures print {code, message} on stderr. */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      phone: { type: 'string' },
      enrolled: { type: 'boolean', default: false },
      user: { type: 'string' },
      session: { type: 'string' },
      consent: { type: 'string' },
      version: { type: 'string' },
      revoke: { type: 'boolean', default: false },
      out: { type: 'string' },
      force: { type: 'boolean', default: false },
      'ttl-hours': { type: 'string' },
      generate: { type: 'boolean', default: false },
      state: { type: 'string' },
      reason: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [noun = 'serve', verb, target] = positionals;
  // Needs no config: the key is hashed here and pasted into the config by hand.
  if (noun === 'admin') return adminCommand(verb, values.generate === true);
  const config = loadConfig({ file: values.config });
  if (noun === 'serve') return serve(config);

  const store = await openStore(config);
  try {
    const command: Command = { store, config, noun, verb, target, values };
    if (noun === 'audit') return await runAuditCommand(command);
    const out =
      noun === 'recording' || noun === 'keys'
        ? await runRecordingCommand(command)
        : noun === 'events'
          ? await runEventsCommand(store.db.db, verb, target, values.state, USAGE)
          : noun === 'retention'
          ? await runRetentionCommand(command)
          : noun === 'review' || noun === 'earnings' || noun === 'payouts'
          ? await runPayoutCommand(command)
          : await runStoreCommand(command);
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  } finally {
    await store.db.close();
  }
}

type Store = Awaited<ReturnType<typeof openStore>>;
/** One parsed operator command: `monologue NOUN VERB [TARGET] --flags`. */
interface Command {
  store: Store;
  config: Config;
  noun: string;
  verb: string | undefined;
  target: string | undefined;
  values: CliValues;
}
interface CliValues {
  phone?: string;
  enrolled?: boolean;
  user?: string;
  session?: string;
  'ttl-hours'?: string;
  consent?: string;
  force?: boolean;
  version?: string;
  revoke?: boolean;
  out?: string;
  state?: string;
  reason?: string;
}

function need(v: string | undefined, flag: string): string {
  if (!v) throw new MonologueError('USAGE', `missing ${flag.startsWith('<') ? flag : `--${flag}`}\n${USAGE}`);
  return v;
}

/** Review of held calls, the earnings read model and payouts (mark paid, fail). Amounts are integer micro-units. */
async function runPayoutCommand({ store, config, noun, verb, target, values }: Command): Promise<Record<string, unknown>> {
  const db = store.db.db;
  const ledger = createLedger(db);
  // Operator decisions are events too; the running service's worker delivers them.
  const events = config.events.url ? eventSink() : undefined;
  const settler = createSettler({ db, ledger, config: config.payouts, log: createLogger('warn'), ...(events && { events }) });
  const reviewer = `operator:${userInfo().username}`;
  if (noun === 'earnings') {
    const userId = need(values.user, 'user');
    return { userId, ...(await earningsReport(db, userId)) };
  }
  if (noun === 'payouts') {
    const withdrawals = createWithdrawals({ db, audit: createAuditLog(db), minimumPayoutMicros: config.payouts.minimumPayoutMicros, ...(events && { events }) });
    if (verb === 'list') {
      const state = values.state;
      if (state !== undefined && !PAYOUT_STATES.includes(state as PayoutState)) throw new MonologueError('USAGE', `--state is one of ${PAYOUT_STATES.join(', ')}`);
      return { payouts: (await withdrawals.listAll(state === undefined ? {} : { state: state as PayoutState })).map(printable) };
    }
    if (verb === 'mark-paid') return { payout: printable((await withdrawals.markPaid(need(target, '<PAYOUT_ID>'), reviewer)).payout) };
    if (verb === 'fail') {
      const r = await withdrawals.markFailed(need(target, '<PAYOUT_ID>'), reviewer, values.reason);
      return { payout: printable(r.payout), compensationId: r.compensationId };
    }
    throw new MonologueError('USAGE', `unknown command "${[noun, verb].filter(Boolean).join(' ')}"\n${USAGE}`);
  }
  if (verb === 'list') return { held: await settler.review.list() };
  if (verb === 'release') return { ...(await settler.review.release(need(target, '<CALL_ID>'), reviewer)) };
  if (verb === 'reject') return { ...(await settler.review.reject(need(target, '<CALL_ID>'), reviewer)) };
  throw new MonologueError('USAGE', `unknown command "${[noun, verb].filter(Boolean).join(' ')}"\n${USAGE}`);
}

const PAYOUT_STATES: readonly PayoutState[] = ['pending', 'paid', 'failed'];
const printable = (p: { createdAt: number }) => ({ ...p, createdAt: new Date(p.createdAt).toISOString() });

/**
 * `audit verify`: walks the whole hash chain. Prints the verdict on stdout either way; a broken chain
 * also says where on stderr and exits 1, so a cron job or a monitor can alert on it.
 */
async function runAuditCommand({ store, noun, verb }: Command): Promise<number> {
  if (verb !== 'verify') throw new MonologueError('USAGE', `unknown command "${[noun, verb].filter(Boolean).join(' ')}"\n${USAGE}`);
  const verdict = await createAuditLog(store.db.db).verify();
  process.stdout.write(JSON.stringify(verdict) + '\n');
  if (verdict.ok) return 0;
  process.stderr.write(
    JSON.stringify({
      code: 'AUDIT_CHAIN_BROKEN',
      message: `the audit chain is broken at seq ${verdict.brokenAt} (${verdict.reason}); the ${verdict.entries} entries before it verify. Restore audit_log from a backup and compare from that seq on.`,
    }) + '\n',
  );
  return 1;
}

/** Recording and key commands: every read of a recording is written to the audit table. */
async function runRecordingCommand({ store, config, noun, verb, target, values }: Command): Promise<Record<string, unknown>> {
  const catalog = createRecordingCatalog(store.db.db);
  const audit = createAuditLog(store.db.db);
  const actor = `operator:${userInfo().username}`;
  if (noun === 'keys' && verb === 'rotate') {
    const keyring = openKeyring(kekDir(config), { create: true });
    const previous = keyring.currentId;
    const next = rotateKeyring(kekDir(config));
    const rotated = openKeyring(kekDir(config));
    let rewrapped = 0;
    for (const row of await catalog.all()) {
      if (!row.wrappedKey || !row.kekId || row.kekId === next) continue;
      const secrets = rotated.unwrap({ kekId: row.kekId, blob: row.wrappedKey }, row.id);
      const wrapped = rotated.wrap(secrets, row.id);
      await catalog.rewrap(row.id, wrapped.kekId, wrapped.blob);
      rewrapped++;
    }
    await audit.append({ actor, action: 'keys.rotate', detail: `${previous} -> ${next}, ${rewrapped} rewrapped` });
    return { previous, current: next, rewrapped };
  }
  if (noun === 'keys' && verb === 'retire') {
    const kekId = need(target, '<KEK_ID>');
    if (openKeyring(kekDir(config), { create: false }).currentId === kekId) {
      throw new MonologueError('KEK_CURRENT', `${kekId} is the current key-encryption key; run "monologue keys rotate" first`);
    }
    const still = (await catalog.all()).filter((r) => r.kekId === kekId).length;
    if (still > 0) throw new MonologueError('KEK_IN_USE', `${still} recordings are still wrapped by ${kekId}; run "monologue keys rotate" first`);
    retireKek(kekDir(config), kekId);
    await audit.append({ actor, action: 'keys.retire', detail: kekId });
    return { retired: kekId };
  }
  const id = need(target, '<RECORDING_ID>');
  const archive = new Archive(catalog, openObjectStore(config), openKeyring(kekDir(config), { create: false }), audit);
  if (noun === 'recording' && verb === 'decrypt') {
    const out = need(values.out, 'out');
    if (!values.force && existsSync(out)) throw outputExists(out); // before decrypting: no wasted read in the audit log
    const audio = await archive.decrypt(id, actor);
    await writePlaintext(out, audio, values.force === true);
    return { recordingId: id, out, bytes: audio.length };
  }
  if (noun === 'recording' && verb === 'verify') {
    return { ...(await archive.verify(id, actor)) };
  }
  throw new MonologueError('USAGE', `unknown command "${[noun, verb].filter(Boolean).join(' ')}"\n${USAGE}`);
}

/**
 * One retention sweep now, with this process's clock: recordings older than recording.retentionDays
 * are shredded (audited `recording.retention-shred` by `system:retention`), and object removals owed
 * by earlier shreds are retried. The running service's spool is not this process's: removals done here
 * stay marked owed, and the service's own sweeper confirms them, spool included.
 */
async function runRetentionCommand({ store, config, verb }: Command): Promise<Record<string, unknown>> {
  if (verb !== 'sweep') throw new MonologueError('USAGE', `unknown command "retention ${verb ?? ''}"\n${USAGE}`);
  const db = store.db.db;
  const audit = createAuditLog(db);
  const grants = createGrants(db, audit, { ttlMs: config.api.grantTtlSeconds * 1000, maxRequests: config.api.grantMaxRequests, now: Date.now });
  // stderr: stdout carries the one JSON result.
  const log = createLogger('warn', destination(2));
  const shredder = createShredder({ db, grants, objects: openObjectStore(config), audit, log, now: Date.now, ...(config.events.url && { events: eventSink() }) });
  const retention = createRetention({ db, shredder, log, now: Date.now }, { retentionDays: config.recording.retentionDays, sweepMinutes: config.recording.retentionSweepMinutes });
  return { retentionDays: config.recording.retentionDays, ...(await retention.sweep()) };
}

/**
 * Decrypted audio is created owner-only (0600). An existing file is never written into, since it
 * would keep its own, perhaps world-readable, mode: it is refused, or with --force replaced by a new
 * 0600 file renamed over it.
 */
async function writePlaintext(out: string, audio: Buffer, force: boolean): Promise<void> {
  if (force) return atomicWrite(dirname(resolve(out)), resolve(out), audio);
  try {
    await writeFile(out, audio, { flag: 'wx', mode: FILE_MODE });
  } catch (err) {
    throw errno(err) === 'EEXIST' ? outputExists(out) : err;
  }
}

function outputExists(out: string): MonologueError {
  return new MonologueError('OUTPUT_EXISTS', `${out} already exists; choose another --out, or pass --force to replace it`);
}

async function runStoreCommand({ store, config, noun, verb, target, values }: Command): Promise<Record<string, unknown>> {
  if (noun === 'user' && verb === 'create') {
    const user = await store.users.create({ phone: need(values.phone, 'phone'), enrolled: values.enrolled ?? false, consentVersion: values.consent });
    return { id: user.id, enrolled: user.enrolled, consent: user.consent?.version ?? null, createdAt: new Date(user.createdAt).toISOString() };
  }
  if (noun === 'user' && verb === 'consent') {
    if (!values.revoke && !values.version) throw new MonologueError('USAGE', `give --version VERSION or --revoke\n${USAGE}`);
    const userId = need(values.user, 'user');
    const version = values.revoke ? null : values.version!;
    // A running service notices a revocation from here at its next call's answer (it reads consent then);
    // a recording already running goes on until the call ends or the user revokes through the API.
    if (await changeConsent(store.db.db, userId, version, Date.now())) {
      await createAuditLog(store.db.db).append({ actor: `operator:${userInfo().username}`, action: 'user.consent', userId, detail: version === null ? 'withdrawn' : `version ${version}` });
    }
    const user = await store.users.byId(userId);
    if (!user) throw new MonologueError('USER_NOT_FOUND', `no user with id ${userId}`);
    return { id: user.id, consent: user.consent ? { version: user.consent.version, at: new Date(user.consent.at).toISOString() } : null };
  }
  if (noun === 'token' && verb === 'issue') {
    const hours = values['ttl-hours'] === undefined ? config.accounts.tokenTtlHours : Number(values['ttl-hours']);
    if (!Number.isInteger(hours) || hours < 1) throw new MonologueError('USAGE', '--ttl-hours must be a whole number of hours, at least 1');
    const t = await store.tokens.issue(need(values.user, 'user'), hours * 3_600_000);
    return { token: t.token, sessionId: t.sessionId, userId: t.userId, expiresAt: new Date(t.expiresAt).toISOString() };
  }
  if (noun === 'token' && verb === 'revoke') {
    return { revoked: await store.tokens.revoke(need(values.session, 'session')) };
  }
  throw new MonologueError('USAGE', `unknown command "${[noun, verb].filter(Boolean).join(' ')}"\n${USAGE}`);
}

/**
 * `admin hash-key`: the key comes on stdin, never as an argument (arguments show in `ps` and shell
 * history). Only the hash goes into config; the key is printed once, by --generate, for the backend.
 */
async function adminCommand(verb: string | undefined, generate: boolean): Promise<number> {
  if (verb !== 'hash-key') throw new MonologueError('USAGE', `unknown command "admin ${verb ?? ''}"\n${USAGE}`);
  const key = generate ? generateAdminKey() : await readKey();
  const out = generate ? { key, hash: hashAdminKey(key) } : { hash: hashAdminKey(key) };
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

/** The first line of stdin (piped or typed); surrounding whitespace, the newline included, is not part of the key. */
async function readKey(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) process.stderr.write('admin key (then Enter): ');
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (stdin.isTTY && text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0]!.trim();
}

async function serve(config: Config): Promise<number> {
  const log = createLogger(config.log.level);
  // Last line of defence for "bad input never crashes the process": every transport already
  // catches its own errors; anything that still escapes is logged, not fatal.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (kept running)'));
  const service = await startService(config, log);
  log.info({ url: service.url }, 'monologue is up');
  process.stdout.write(`Monologue dialer: ${service.url}\n`);
  if (service.metricsUrl) process.stdout.write(`Metrics: ${service.metricsUrl}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal, drainMs: config.calls.drainMs }, 'draining: no new calls; waiting for live calls');
      void service.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}

runCliMain(main);
