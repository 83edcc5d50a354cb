import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/load.js';
import { packageRoot } from './config/load.js';
import type { Logger } from './log.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { loadOrCreateKey } from './crypto/key-file.js';
import { createPhoneVault, type PhoneVault } from './crypto/phone-vault.js';
import { resealLegacyPhones } from './accounts/reseal-phones.js';
import { createUsers, type Users } from './accounts/users.js';
import { createTokens, type Tokens } from './accounts/tokens.js';
import { createTokenWatch, type TokenWatch } from './accounts/token-watch.js';
import { createCallRecords, type CallRecords } from './calls/records.js';
import { Switchboard } from './calls/switchboard.js';
import { recordAnsweredCalls, type ConsentPolicy } from './calls/recording-hook.js';
import { counterpartAction, ensureAnnounceFile, loadConsentText } from './recordings/consent-policy.js';
import { createMediaWatch, createNgClient, createRtpengineProcess, createRtpengineRelay, type NgClient, type RtpengineProcess, type RtpengineRelay } from './media/index.js';
import { createSipEndpoint, type SipEndpoint, type SipTrunkOptions } from './sip/endpoint.js';
import { createSignaling, type Signaling } from './signaling/server.js';
import { createHttp, type RouteEntry } from './api/http.js';
import { ownerApi } from './api/owner-api.js';
import type { ApiDeps, LiveControl } from './api/deps.js';
import { adminEnabled, createAdminHttp } from './api/admin.js';
import { createAuditLog, type AuditLog } from './audit/audit-log.js';
import { createRecordingCatalog, type RecordingCatalog } from './recordings/catalog.js';
import { Recordings } from './recordings/recordings.js';
import { createGrants, type Grants } from './recordings/grants.js';
import { createShredder } from './recordings/shred.js';
import { createRetention, type Retention } from './recordings/retention.js';
import { openKeyringOrNone, openObjectStore, spoolDir } from './recordings/storage-setup.js';
import { openSpool, type Spool } from './storage/spool.js';
import type { ObjectStore } from './storage/object-store.js';
import { createLedger, createSettler, type Settler, type Ledger } from './payouts/index.js';
import { createCallPayouts } from './payouts/call-payouts.js';
import { webhooksPlugin } from './webhooks/plugin.js';
import { startOutgoingEvents } from './events/service-events.js';
import { emitCallEnded } from './events/call-events.js';
import { createMetrics, listenMetrics, observeSettler, watchCalls, watchNg, watchRecordings, watchRtpengineCpu, watchSpool, webhookVerdicts, type Metrics } from './metrics/index.js';

/** How often expired and used-up media grants are closed and audited. */
const GRANT_SWEEP_MS = 30_000;

/** A running Monologue: every role in one process (DESIGN §1). */
export interface Service {
  readonly config: Config;
  readonly url: string;
  readonly httpPort: number;
  /** The admin API's base URL (`http://admin.host:port/`); undefined while it is off (config `admin`). */
  readonly adminUrl: string | undefined;
  /** Prometheus text at `http://metrics.host:port/metrics`; undefined while `metrics.enabled` is false. */
  readonly metricsUrl: string | undefined;
  /** The service's own metrics registry and counters (docs/metrics.md), kept even while the listener is off. */
  readonly metrics: Metrics;
  readonly db: DatabaseHandle;
  readonly users: Users;
  /** Revoking through these closes the token's live sockets at once; other processes' revocations within accounts.tokenCheckIntervalMs. */
  readonly tokens: Tokens;
  readonly tokenWatch: TokenWatch;
  readonly records: CallRecords;
  readonly switchboard: Switchboard;
  readonly media: RtpengineRelay;
  /** The supervised local rtpengine; undefined with `media.rtpengine.spawn: false`. */
  readonly rtpengine: RtpengineProcess | undefined;
  readonly vault: PhoneVault;
  readonly catalog: RecordingCatalog;
  readonly objects: ObjectStore;
  readonly spool: Spool;
  readonly ledger: Ledger;
  readonly settler: Settler;
  readonly audit: AuditLog;
  readonly grants: Grants;
  /** The retention sweeper (recording.retentionDays); `retention.sweep()` runs one now. */
  readonly retention: Retention;
  /** Every HTTP route registered, with its declared access (the BOLA suite's route table). */
  readonly routes: readonly RouteEntry[];
  /** Stop taking calls, let live ones finish (up to calls.drainMs), then release everything. */
  close(): Promise<void>;
}

/** Open the data layer alone: the CLI's user and token commands need nothing more. */
export async function openStore(config: Config): Promise<{ db: DatabaseHandle; vault: PhoneVault; users: Users; tokens: Tokens }> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const vault = createPhoneVault(loadOrCreateKey(config.secrets.phoneKeyFile || join(dataDir, 'keys', 'phone.key')));
  const db = await openDatabase(config.database.url || join(dataDir, 'monologue.db'));
  await resealLegacyPhones(db.db, vault);
  return { db, vault, users: createUsers(db.db, vault), tokens: createTokens(db.db) };
}

/** `now`: the server's clock for the API (grant expiry); tests move it. */
export async function startService(config: Config, log: Logger, now: () => number = Date.now): Promise<Service> {
  const cleanup: Array<() => Promise<void> | void> = [];
  const undo = async () => {
    for (const fn of cleanup.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  };
  try {
    const store = await openStore(config);
    cleanup.push(() => store.db.close());
    const records = createCallRecords(store.db.db, store.vault);
    const metrics = createMetrics();

    const r = config.media.rtpengine;
    let rtpengine: RtpengineProcess | undefined;
    let ng: NgClient;
    if (r.spawn) {
      rtpengine = createRtpengineProcess({
        log,
        binary: r.binary,
        interface: r.interface,
        recorderInterface: r.recorderInterface,
        ngHost: r.ngAddress,
        ngPort: r.ngPort,
        portMin: r.portMin,
        portMax: r.portMax,
        // Its own timeout (all streams silent) stays behind ours (either leg silent), so that a dead call
        // is ours to end `media-timeout`, with a BYE, before rtpengine forgets it.
        rtpTimeoutSec: config.media.timeoutSeconds + 10,
      });
      cleanup.push(() => rtpengine?.stop());
      await rtpengine.start();
      ng = rtpengine.ng;
    } else {
      ng = createNgClient({ host: r.ngAddress, port: r.ngPort, log, retryIntervalMs: Math.max(100, Math.floor(config.media.ngTimeoutMs / 3)) });
      cleanup.push(() => ng.close());
    }
    // After start(): the pings of rtpengine's own boot are no ng failures.
    watchNg(metrics, ng);
    if (rtpengine) watchRtpengineCpu(metrics, rtpengine);
    const watch = createMediaWatch({ ng, timeoutMs: config.media.timeoutSeconds * 1000, unreachableMs: config.media.unreachableSeconds * 1000, log });
    cleanup.push(() => watch.close());
    const supervised = rtpengine;
    const media = createRtpengineRelay({
      ng,
      trunkCodecs: config.media.trunkCodecs,
      trunkSrtp: config.media.trunkSrtp,
      log,
      watch,
      ...(supervised && { available: () => supervised.up }),
    });
    // A restarted rtpengine knows none of the old calls: they end now, with a BYE, rather than in silence.
    supervised?.on('exit', ({ restarting }) => {
      const lost = media.loseAll('media-failed');
      if (lost > 0) log.error({ calls: lost, restarting }, 'rtpengine exited with live calls; they end media-failed');
    });

    const events = startOutgoingEvents(store.db.db, config.events, log, now);
    cleanup.push(() => events.stop());
    const catalog = createRecordingCatalog(store.db.db, config.nodeId || hostname(), now, events.sink);
    const interrupted = await catalog.markInterrupted();
    if (interrupted.length) log.warn({ recordings: interrupted }, 'recordings interrupted by the last stop are marked incomplete');
    const objects = openObjectStore(config);
    // Opening the spool uploads whatever a previous process left in it.
    const spool = await openSpool({
      dir: spoolDir(config),
      store: objects,
      log,
      minBackoffMs: config.storage.spoolMinBackoffMs,
      maxBackoffMs: config.storage.spoolMaxBackoffMs,
    });
    cleanup.push(() => spool.close());
    watchSpool(metrics, spool);
    const keyring = openKeyringOrNone(config, log);
    const recordings = config.recording.enabled ? new Recordings({ catalog, keyring, spool, log }, config.recording) : undefined;
    if (recordings) watchRecordings(metrics, recordings);
    const audit = createAuditLog(store.db.db, now);
    const grants = createGrants(store.db.db, audit, { ttlMs: config.api.grantTtlSeconds * 1000, maxRequests: config.api.grantMaxRequests, now });
    const shredder = createShredder({ db: store.db.db, grants, objects, spool, audit, log, now, events: events.sink });
    const retention = createRetention({ db: store.db.db, shredder, log, now }, { retentionDays: config.recording.retentionDays, sweepMinutes: config.recording.retentionSweepMinutes });
    retention.start();
    cleanup.push(() => retention.close());
    // Grants that expired or are used up are closed, each one's reads becoming one audit entry.
    let sweeping: Promise<unknown> = Promise.resolve();
    const sweeper = setInterval(() => {
      sweeping = grants.sweep().catch((err: unknown) => log.warn({ err }, 'grant sweep failed; the next one retries'));
    }, GRANT_SWEEP_MS);
    sweeper.unref();
    cleanup.push(async () => {
      clearInterval(sweeper);
      await sweeping;
    });

    const ledger = createLedger(store.db.db);
    const settler = observeSettler(metrics, createSettler({ db: store.db.db, ledger, config: config.payouts, log, events: events.sink }));
    const payouts = createCallPayouts({ db: store.db.db, settler, users: store.users, vault: store.vault, config: config.payouts, log });

    const switchboard = new Switchboard({ users: store.users, records, media, log }, config.calls);
    watchCalls(metrics, switchboard);
    const consentText = loadConsentText(config.recording.consent);
    const consentPolicy: ConsentPolicy = {
      version: consentText.version,
      counterpart: (number) => counterpartAction(config.recording.counterpartPolicy, number),
      announceFile: ensureAnnounceFile(resolve(config.recording.announceFile || join(config.dataDir, 'announce.wav'))),
    };
    switchboard.on('call', recordAnsweredCalls({ recordings, payouts, users: store.users, log, policy: consentPolicy }));
    if (events.on) switchboard.on('call', emitCallEnded({ db: store.db.db, events: events.sink, log }));
    const sip: SipEndpoint = await createSipEndpoint(
      {
        listen: {
          address: config.sip.listenAddress,
          port: config.sip.port,
          udp: config.sip.udp,
          tcp: config.sip.tcp,
          ...(config.sip.tls.port > 0 && { tls: config.sip.tls }),
        },
        publicAddress: config.sip.publicAddress || undefined,
        trunks: sipTrunks(config, log),
        trunkAttemptTimeoutMs: config.sip.trunkAttemptTimeoutMs,
        inviteTimeoutMs: config.sip.inviteTimeoutMs,
        // The interval we ask for is never below the one we would refuse.
        sessionTimers: { seconds: Math.max(config.sip.sessionTimers.seconds, config.sip.sessionTimers.minSeconds), minSeconds: config.sip.sessionTimers.minSeconds },
        tcpLimits: { maxConnectionsPerSource: config.sip.tcpMaxConnectionsPerSource, idleTimeoutMs: config.sip.tcpIdleTimeoutMs },
      },
      log,
      switchboard.incoming,
    );
    cleanup.push(() => sip.close());
    switchboard.trunk = sip.trunk;

    const tokenWatch = createTokenWatch({ tokens: store.tokens, log }, { intervalMs: config.accounts.tokenCheckIntervalMs });
    cleanup.push(() => tokenWatch.close());
    const tokens: Tokens = {
      ...store.tokens,
      async revoke(sessionId) {
        const revoked = await store.tokens.revoke(sessionId);
        tokenWatch.revoked(sessionId);
        return revoked;
      },
    };
    const signaling: Signaling = createSignaling({ tokens, watch: tokenWatch, switchboard, log }, config.signaling);

    const root = packageRoot();
    const { app: http, routes } = await createHttp({
      log,
      webSourceDir: join(root, 'src', 'web'),
      webBuildDir: join(root, 'dist', 'web'),
      bodyLimitBytes: config.http.bodyLimitBytes,
      ready: async () => ({ database: await store.db.ping(), rtpengine: await media.ready(), accepting: !switchboard.isDraining }),
    });
    const live: LiveControl = {
      consentRevoked: async (userId) => {
        const calls = switchboard.callsOf(userId);
        await Promise.all(calls.map((c) => c.stopRecording('consent-revoked')));
        if (calls.length > 0) log.info({ userId, calls: calls.length }, 'consent withdrawn: the live calls go on unrecorded');
      },
      sessionsRevoked: (sessionIds) => {
        for (const id of sessionIds) tokenWatch.revoked(id);
      },
    };
    const apiDeps: ApiDeps = { config, log, db: store.db.db, users: store.users, tokens, vault: store.vault, catalog, objects, spool, keyring, ledger, audit, grants, live, now, events: events.sink };
    await http.register(async (scope) => ownerApi(scope, apiDeps), { prefix: '/v1' });
    await http.register(webhooksPlugin({ db: store.db.db, config: config.webhooks, log, onEvent: (e) => payouts.providerEvent(e), onVerdict: webhookVerdicts(metrics) }));
    http.server.on('upgrade', (req, socket, head) => {
      if (!signaling.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await http.listen({ host: config.http.host, port: config.http.port });
    cleanup.push(() => http.close());
    // Upgraded WebSockets count as open HTTP connections: close them first or http.close() waits on them.
    cleanup.push(() => signaling.close());
    const port = (http.server.address() as AddressInfo).port;
    const url = config.http.publicUrl || `http://${config.http.host}:${port}/`;
    const adminUrl = await listenAdmin(config, log, apiDeps, cleanup);
    let metricsUrl: string | undefined;
    if (config.metrics.enabled) {
      const listener = await listenMetrics(metrics, { host: config.metrics.host, port: config.metrics.port, log });
      cleanup.push(() => listener.close());
      metricsUrl = listener.url;
    }

    let closing: Promise<void> | undefined;
    return {
      config,
      url,
      httpPort: port,
      adminUrl,
      metricsUrl,
      metrics,
      db: store.db,
      users: store.users,
      tokens,
      tokenWatch,
      records,
      switchboard,
      media,
      rtpengine,
      vault: store.vault,
      catalog,
      objects,
      spool,
      ledger,
      settler,
      audit,
      grants,
      retention,
      routes,
      close() {
        closing ??= (async () => {
          sip.drain();
          await switchboard.drain();
          await recordings?.settle();
          // Give the last chunks a moment to reach storage; whatever is left stays spooled for next start.
          await spool.drain(Math.min(10_000, config.calls.drainMs + 2000)).catch((err: unknown) => log.warn({ err }, 'spool not drained at shutdown'));
          await undo();
        })();
        return closing;
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

/** The admin listener (api/admin.ts) when configured; its base URL, or undefined when off. */
async function listenAdmin(config: Config, log: Logger, deps: ApiDeps, cleanup: Array<() => Promise<void> | void>): Promise<string | undefined> {
  const a = config.admin;
  if (!adminEnabled(a)) {
    if (a.port > 0 || a.keyHash !== '') log.warn({ code: 'ADMIN_OFF' }, 'the admin API is off: it needs both admin.port and admin.keyHash');
    return undefined;
  }
  const admin = await createAdminHttp(deps);
  cleanup.push(() => admin.close());
  await admin.listen({ host: a.host, port: a.port });
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  log.info({ host: a.host, port: a.port }, 'admin API listening (keep it off public networks)');
  return `http://${host}:${a.port}/`;
}

/** `sip.trunks`, or `sip.trunk` alone, as the SIP layer takes them (empty strings mean unset). */
function sipTrunks(config: Config, log: Logger): SipTrunkOptions[] {
  const list = config.sip.trunks.length > 0 ? config.sip.trunks : [config.sip.trunk];
  return list.map((t) => {
    // SDES keys ride in the SDP: over cleartext SIP anyone on the path reads them and the SRTP is void.
    if (config.media.trunkSrtp !== 'off' && t.transport !== 'tls') {
      log.warn({ code: 'SRTP_KEYS_IN_CLEARTEXT', trunk: `${t.host}:${t.port}` }, 'media.trunkSrtp is on but this trunk is not TLS: its SRTP keys travel in cleartext SIP; set its transport to tls');
    }
    if (t.tls?.rejectUnauthorized === false) {
      log.warn({ code: 'TLS_VERIFY_OFF', trunk: `${t.host}:${t.port}` }, 'trunk TLS certificate verification is off (tls.rejectUnauthorized false): anyone on the path can impersonate the trunk');
    }
    return {
      host: t.host,
      port: t.port,
      transport: t.transport,
      ...(t.scheme && { scheme: t.scheme }),
      ...(t.username && { username: t.username }),
      ...(t.password && { password: t.password }),
      ...(t.domain && { domain: t.domain }),
      allowedSources: t.allowedSources ?? [],
      ...(t.tls && {
        tls: {
          ...(t.tls.caFile && { caFile: t.tls.caFile }),
          ...(t.tls.servername && { servername: t.tls.servername }),
          ...(t.tls.rejectUnauthorized === false && { rejectUnauthorized: false }),
        },
      }),
    };
  });
}
