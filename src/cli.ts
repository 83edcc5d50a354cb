#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from './config/load.js';
import { createLogger } from './log.js';
import { MonologueError, errorMessage } from './errors.js';
import { openStore, startService } from './service.js';

const USAGE = `usage:
  monologue serve [--config FILE]
  monologue user create --phone +15550001111 [--enrolled] [--config FILE]
  monologue token issue --user USER_ID [--ttl-hours N] [--config FILE]
  monologue token revoke --session SESSION_ID [--config FILE]`;

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
      'ttl-hours': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const config = loadConfig({ file: values.config });
  const [noun = 'serve', verb] = positionals;
  if (noun === 'serve') return serve(config);

  const store = await openStore(config);
  try {
    const out = await runStoreCommand(store, config, noun, verb, values);
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  } finally {
    await store.db.close();
  }
}

type Store = Awaited<ReturnType<typeof openStore>>;

async function runStoreCommand(
  store: Store,
  config: Config,
  noun: string,
  verb: string | undefined,
  values: { phone?: string; enrolled?: boolean; user?: string; session?: string; 'ttl-hours'?: string },
): Promise<Record<string, unknown>> {
  const need = (v: string | undefined, flag: string): string => {
    if (!v) throw new MonologueError('USAGE', `missing --${flag}\n${USAGE}`);
    return v;
  };
  if (noun === 'user' && verb === 'create') {
    const user = await store.users.create({ phone: need(values.phone, 'phone'), enrolled: values.enrolled ?? false });
    return { id: user.id, enrolled: user.enrolled, createdAt: new Date(user.createdAt).toISOString() };
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

async function serve(config: Config): Promise<number> {
  const log = createLogger(config.log.level);
  // Last line of defence for "bad input never crashes the process": every transport already
  // catches its own errors; anything that still escapes is logged, not fatal.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (kept running)'));
  const service = await startService(config, log);
  log.info({ url: service.url }, 'monologue is up');
  process.stdout.write(`Monologue dialer: ${service.url}\n`);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = err instanceof MonologueError ? err.code : 'FAILED';
    process.stderr.write(JSON.stringify({ code, message: errorMessage(err) }) + '\n');
    process.exit(code === 'USAGE' ? 2 : 1);
  },
);
