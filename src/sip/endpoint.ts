/**
 * The SIP endpoint: one npm `sip` stack instance (UDP and/or TCP), our dialog layer, the `Trunk`
 * the call domain dials through, and the door for inbound INVITEs from the trunk.
 *
 * Bad input never escapes: every callback is guarded, datagrams are checked before parsing,
 * answerable bad requests get a 4xx/5xx, the rest is dropped, and logs carry no phone numbers,
 * SDP or credentials.
 *
 * Trust: requests are taken only from the allowed sources (and the trunk's own IP); anything else,
 * OPTIONS included, gets no answer at all (no reflection), only a count and a rate-limited log line
 * (refusals.ts). In-dialog requests must come from the dialog's peer. TCP connections are accepted
 * only from allowed sources, capped per source IP and closed when idle.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIP, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { IncomingCallHandler, OutboundLeg, OutboundListener, OutboundRequest, Trunk } from '../calls/ports.js';
import { MonologueError } from '../errors.js';
import { maskPhone, type Logger } from '../log.js';
import { guarded, type SipCore } from './core.js';
import { keyOfIncoming, type DialogOwner, type Transport } from './dialog.js';
import { InboundCall } from './inbound.js';
import { DEFAULT_SESSION_TIMERS, negotiateAsUas, optionTags, unsupportedRequired, type SessionTimerConfig } from './session-timer.js';
import { ALLOW, SUPPORTED, canAnswer, checkDatagram, hostPort, makeResponse, MAX_MESSAGE_BYTES, requestProblem, tagOf } from './message.js';
import { toE164, uriUser } from './numbers.js';
import { callerId } from '../phone-number.js';
import { Refusals, type DropReason } from './refusals.js';
import { AllowedSources, plainIp } from './sources.js';
import { OutboundCall } from './outbound.js';
import type { SipRemote, SipRequest, SipStackOptions, SocketKind } from './sip-types.js';
import { FailoverDial, TrunkList, type TrunkEntry } from './trunks.js';
import { digestModule, sipModule } from './stack.js';

export type SipTrunkOptions = TrunkEntry & {
  /** IP addresses and CIDR ranges (IPv4, IPv6) allowed to send us requests, besides `host` itself when it is an IP. */
  allowedSources: string[];
};

export interface SipOptions {
  listen: {
    address: string;
    port: number;
    udp: boolean;
    tcp: boolean;
    /** A TLS server for requests from the trunk (in-dialog BYEs over TLS, inbound calls); off when absent. */
    tls?: { port: number; certFile: string; keyFile: string };
  };
  /** Address written into Via/Contact; defaults to listen.address. */
  publicAddress?: string;
  /** A single trunk (shorthand for `trunks: [trunk]`); ignored when `trunks` lists any. */
  trunk?: SipTrunkOptions;
  /** Trunks in order of preference: an outbound call fails over down the list (trunks.ts). */
  trunks?: SipTrunkOptions[];
  /** No response at all to an INVITE within this → the next trunk (when there is one). Default 4000. */
  trunkAttemptTimeoutMs?: number;
  /** Inbound TCP connections: at most this many per source IP; closed after this long without traffic or a transaction. */
  tcpLimits?: { maxConnectionsPerSource: number; idleTimeoutMs: number };
  /** No final answer to an outbound INVITE within this → CANCEL and failed(408). */
  inviteTimeoutMs: number;
  /** Extra headers on every outbound INVITE (name → value). */
  headers?: Record<string, string>;
  /** RFC 4028 session timers; default 1800 s asked, 90 s minimum. */
  sessionTimers?: SessionTimerConfig;
}

/** `Trunk` whose `dial` also takes per-call extra headers (e.g. `X-Monologue-Call`). */
export interface SipTrunk extends Trunk {
  dial(request: OutboundRequest, listener: OutboundListener, headers?: Record<string, string>): OutboundLeg;
}

export interface SipEndpoint {
  readonly trunk: SipTrunk;
  /** Live calls (outbound attempts and inbound INVITEs not yet ended). */
  readonly activeCalls: number;
  /** Requests and TCP connections dropped unanswered, by reason, since start. */
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Stop taking new INVITEs (503); calls in progress go on. */
  drain(): void;
  /** Tear everything down (no BYEs, no listener events); idempotent. */
  close(): Promise<void>;
}

export async function createSipEndpoint(opts: SipOptions, parentLog: Logger, onIncoming: IncomingCallHandler): Promise<SipEndpoint> {
  const endpoint = new Endpoint(opts, parentLog.child({ mod: 'sip' }), onIncoming);
  await endpoint.started;
  return endpoint;
}

const HEADER_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
const HEADER_VALUE = /^[^\r\n\x00]*$/;
/** Headers the dialog layer owns; callers may not override them. */
const RESERVED = new Set(['via', 'to', 'from', 'call-id', 'cseq', 'contact', 'content-length', 'content-type', 'max-forwards', 'route', 'record-route', 'authorization', 'proxy-authorization']);
const DEFAULT_TCP_LIMITS = { maxConnectionsPerSource: 32, idleTimeoutMs: 60_000 };

class Endpoint implements SipEndpoint {
  readonly started: Promise<void>;
  readonly trunk: SipTrunk;
  private readonly sip = sipModule();
  private readonly digest = digestModule();
  private readonly core: SipCore;
  private readonly dialogs = new Map<string, DialogOwner>();
  /** Inbound INVITEs by Call-ID + branch, for CANCEL. */
  private readonly pending = new Map<string, InboundCall>();
  private readonly legs = new Set<{ shutdown(): void }>();
  private readonly sockets = new Set<Socket>();
  private readonly servers: (UdpSocket | Server)[] = [];
  private readonly sources: AllowedSources;
  private readonly refusals: Refusals;
  /** Live inbound TCP connections per source IP. */
  private readonly tcpPerSource = new Map<string, number>();
  private readonly tcpLimits: { maxConnectionsPerSource: number; idleTimeoutMs: number };
  private readonly publicAddress: string;
  private readonly trunkList: TrunkList;
  /** CA bundles by file, read once (the first connection checks the file is there at start already). */
  private readonly caFiles = new Map<string, Buffer>();
  private draining = false;
  private closed = false;

  constructor(
    private readonly opts: SipOptions,
    private readonly log: Logger,
    private readonly onIncoming: IncomingCallHandler,
  ) {
    this.publicAddress = opts.publicAddress ?? opts.listen.address;
    const trunks = opts.trunks && opts.trunks.length > 0 ? opts.trunks : opts.trunk ? [opts.trunk] : [];
    if (trunks.length === 0) throw new MonologueError('CONFIG_INVALID', 'no SIP trunk configured: set sip.trunk or sip.trunks');
    for (const t of trunks) checkTrunk(t);
    this.trunkList = new TrunkList(trunks);
    // Every trunk may call us and send in-dialog requests: their ranges and their own IPs.
    this.sources = new AllowedSources(
      trunks.flatMap((t) => t.allowedSources),
      trunks.map((t) => t.host).filter((h) => isIP(plainIp(h)) !== 0),
    );
    const tlsListen = opts.listen.tls;
    const usesTls = trunks.some((t) => t.transport === 'tls') || tlsListen !== undefined;
    this.refusals = new Refusals(this.log);
    this.tcpLimits = opts.tcpLimits ?? DEFAULT_TCP_LIMITS;
    const globalHeaders = checkHeaders(opts.headers ?? {});
    const waits: Promise<void>[] = [];
    const stackOptions: SipStackOptions = {
      address: opts.listen.address,
      port: opts.listen.port,
      publicAddress: this.publicAddress,
      hostname: this.publicAddress,
      udp: opts.listen.udp,
      tcp: opts.listen.tcp,
      maxBytesHeaders: MAX_MESSAGE_BYTES,
      maxContentLength: MAX_MESSAGE_BYTES,
      logger: { error: (e: unknown) => this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'sip: stack error') },
      rawFilter: (data, rinfo, reply) => this.filterDatagram(data, rinfo, reply),
      onSocket: (kind, s) => waits.push(...this.adopt(kind, s)),
      admit: (rq, remote) => this.admit(rq, remote),
      ...(usesTls && {
        tls: tlsListen ? { cert: readPem(tlsListen.certFile, 'sip.tls.certFile'), key: readPem(tlsListen.keyFile, 'sip.tls.keyFile') } : {},
        ...(tlsListen && { tls_port: tlsListen.port }),
        tlsConnect: (port: number, address: string, hostname: string | undefined) => this.connectTls(trunks, port, address, hostname),
      }),
    };
    const stack = this.sip.create(stackOptions, (rq, remote) => guarded(this.log, 'request', () => this.onRequest(rq, remote)));
    this.core = {
      sip: this.sip,
      stack,
      digest: this.digest,
      log: this.log,
      sessionTimers: opts.sessionTimers ?? DEFAULT_SESSION_TIMERS,
      trusted: (host) => this.sources.has(host),
      contact: (t) =>
        t === 'tls'
          ? `sip:monologue@${hostPort(this.publicAddress, tlsListen?.port ?? 5061)};transport=tls`
          : `sip:monologue@${hostPort(this.publicAddress, opts.listen.port)}${t === 'tcp' ? ';transport=tcp' : ''}`,
      addDialog: (k, o) => this.dialogs.set(k, o),
      removeDialog: (k) => this.dialogs.delete(k),
      track: (l) => this.legs.add(l),
      untrack: (l) => this.legs.delete(l),
    };
    this.started = Promise.all(waits).then(
      () => undefined,
      async (err: unknown) => {
        await this.close();
        throw new MonologueError('sip-listen', `SIP endpoint could not listen on ${opts.listen.address}:${opts.listen.port}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      },
    );
    this.trunk = {
      dial: (request, listener, headers = {}) => {
        if (this.closed) throw new MonologueError('sip-closed', 'SIP endpoint is closed');
        // Our call id rides on every attempt's INVITE so provider webhooks that echo custom headers can name the call.
        const extra = { ...globalHeaders, ...(request.callRef && { 'X-Monologue-Call': request.callRef }), ...checkHeaders(headers) };
        const call = new FailoverDial(
          this.trunkList,
          (t, attemptListener, observe) =>
            new OutboundCall(
              this.core, this.digest,
              { host: t.host, port: t.port, transport: t.transport, username: t.username, password: t.password, domain: t.domain, scheme: t.scheme },
              request, attemptListener, opts.inviteTimeoutMs, extra, observe,
            ),
          listener,
          { attemptTimeoutMs: opts.trunkAttemptTimeoutMs ?? 4000, log: this.log },
        );
        call.start();
        return call;
      },
    };
  }

  get activeCalls(): number {
    return this.legs.size;
  }

  get dropped(): Readonly<Record<DropReason, number>> {
    return this.refusals.counts;
  }

  drain(): void {
    this.draining = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const leg of [...this.legs]) guarded(this.log, 'leg shutdown', () => leg.shutdown());
    this.dialogs.clear();
    this.pending.clear();
    guarded(this.log, 'stack destroy', () => this.core.stack.destroy());
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  // ------------------------------------------------------------ sockets

  /**
   * Each outgoing TLS connection: the settings of the trunk the URI named (a route-set hop that names no
   * trunk gets the first TLS trunk's), SNI and the identity check against the trunk's name, and
   * certificate verification unless that trunk turned it off. A failed check fails the attempt (the
   * stack's 503 with `transportError`): nothing is ever sent in cleartext instead.
   */
  private connectTls(trunks: readonly SipTrunkOptions[], port: number, address: string, hostname: string | undefined): TLSSocket {
    const named = trunks.find((t) => t.transport === 'tls' && (t.host === hostname || t.host === address));
    const t = named ?? trunks.find((x) => x.transport === 'tls');
    const name = t?.tls?.servername || (hostname && isIP(plainIp(hostname)) === 0 ? hostname : undefined);
    const caFile = t?.tls?.caFile;
    let ca: Buffer | undefined;
    if (caFile) {
      ca = this.caFiles.get(caFile) ?? readFileSync(caFile);
      this.caFiles.set(caFile, ca);
    }
    const c = tlsConnect({ host: address, port, ...(name && { servername: name }), ...(ca && { ca }), rejectUnauthorized: t?.tls?.rejectUnauthorized !== false });
    c.once('error', (err: NodeJS.ErrnoException) => {
      this.log.warn({ code: 'SIP_TLS_FAILED', peer: `${address}:${port}`, servername: name, err: err.message, reason: err.code }, 'sip: TLS connection to the trunk failed');
    });
    return c;
  }

  private adopt(kind: SocketKind, s: unknown): Promise<void>[] {
    if (kind === 'tcp-conn' || kind === 'tls-conn') {
      const c = s as Socket;
      this.sockets.add(c);
      c.on('error', () => {});
      c.on('close', () => this.sockets.delete(c));
      return [];
    }
    const server = s as UdpSocket | Server;
    this.servers.push(server);
    const ready = new Promise<void>((resolve, reject) => {
      server.once('listening', () => resolve());
      server.once('error', reject);
    });
    (server as NodeJS.EventEmitter).on('error', (err: Error) => this.log.warn({ err: err.message, kind }, 'sip: socket error'));
    if (kind === 'tcp-server') (server as Server).on('connection', (c: Socket) => this.onConnection(c));
    // A TLS peer is checked at TCP accept, before the handshake costs us anything.
    if (kind === 'tls-server') (server as Server).on('connection', (c: Socket) => this.onConnection(c));
    return [ready];
  }

  /** Runs after npm `sip` has set the stream up, so destroying here cleans its state up too. */
  private onConnection(c: Socket): void {
    c.on('error', () => {});
    const ip = plainIp(c.remoteAddress ?? '');
    if (!this.sources.has(ip)) {
      this.refusals.note(ip, 'source-not-allowed', 'TCP connection');
      c.destroy();
      return;
    }
    const live = this.tcpPerSource.get(ip) ?? 0;
    if (live >= this.tcpLimits.maxConnectionsPerSource) {
      this.refusals.note(ip, 'tcp-connection-limit', 'TCP connection');
      c.destroy();
      return;
    }
    this.tcpPerSource.set(ip, live + 1);
    this.sockets.add(c);
    c.on('close', () => {
      this.sockets.delete(c);
      const left = (this.tcpPerSource.get(ip) ?? 1) - 1;
      if (left > 0) this.tcpPerSource.set(ip, left);
      else this.tcpPerSource.delete(ip);
    });
    // npm `sip` destroys a stream on 'timeout' only while no transaction holds it; Node fires
    // 'timeout' once per idle spell, so re-arm it or a stream idle after a transaction lives forever.
    c.setTimeout(this.tcpLimits.idleTimeoutMs);
    c.on('timeout', () => {
      if (!c.destroyed) c.setTimeout(this.tcpLimits.idleTimeoutMs);
    });
  }

  private filterDatagram(data: Buffer, rinfo: { address: string; port: number }, reply: (b: Buffer) => void): boolean {
    // Responses may come from anywhere: only one matching our random branch reaches a transaction.
    if (!this.sources.has(rinfo.address) && !data.subarray(0, 8).equals(RESPONSE_START)) {
      this.refusals.note(plainIp(rinfo.address), 'source-not-allowed', 'UDP request');
      return false;
    }
    const verdict = checkDatagram(this.sip, data);
    if (verdict === undefined) return true;
    if (verdict === 'drop') {
      this.log.debug({ src: rinfo.address, bytes: data.length }, 'sip: unreadable datagram dropped');
      return false;
    }
    const { problem, request } = verdict;
    this.log.warn({ src: rinfo.address, status: problem.status, why: problem.why }, 'sip: bad datagram');
    if (request && request.method !== 'ACK') {
      const rs = makeResponse(request, problem.status, { reason: problem.reason });
      reply(Buffer.from(this.sip.stringify(rs), 'binary'));
    }
    return false;
  }

  // ------------------------------------------------------------ requests

  /**
   * Before npm `sip` opens a transaction: the source must be allowed (TCP and anything the datagram
   * filter let through), and an in-dialog request or CANCEL must come from its dialog's peer. A request
   * for no known dialog goes on (to its 481).
   */
  private admit(rq: SipRequest, remote: SipRemote): boolean {
    const ip = plainIp(remote.address);
    if (!this.sources.has(ip)) {
      this.refusals.note(ip, 'source-not-allowed', String(rq.method));
      return false;
    }
    if (!canAnswer(rq)) return true;
    const peer = rq.method === 'CANCEL' ? this.pending.get(pendingKey(rq))?.peer : this.dialogOwner(rq)?.peer;
    if (peer === undefined || peer === ip) return true;
    this.refusals.note(ip, 'not-dialog-peer', String(rq.method));
    return false;
  }

  private dialogOwner(rq: SipRequest): DialogOwner | undefined {
    const key = tagOf(rq.headers.to) ? keyOfIncoming(rq) : undefined;
    return key ? this.dialogs.get(key) : undefined;
  }

  private onRequest(rq: SipRequest, remote: SipRemote): void {
    if (this.closed || !canAnswer(rq)) return;
    const problem = requestProblem(this.sip, rq);
    if (problem) {
      this.log.warn({ src: remote.address, status: problem.status, why: problem.why }, 'sip: bad request');
      if (rq.method !== 'ACK') this.reply(rq, problem.status, { reason: problem.reason });
      return;
    }
    if (rq.method === 'CANCEL') return this.onCancel(rq);
    // A To tag: inside a dialog, which answers for itself; for no dialog (unknown, or ended) 481.
    if (tagOf(rq.headers.to)) {
      const owner = this.dialogOwner(rq);
      if (owner) return owner.receive(rq);
      if (rq.method !== 'ACK') this.reply(rq, 481);
      return;
    }
    switch (rq.method) {
      case 'INVITE':
        return this.onInvite(rq, remote);
      case 'ACK':
        return;
      case 'OPTIONS':
        return this.reply(rq, 200, { headers: { allow: ALLOW, accept: 'application/sdp', supported: SUPPORTED } });
      default:
        return this.reply(rq, 405, { headers: { allow: ALLOW } });
    }
  }

  private onInvite(rq: SipRequest, remote: SipRemote): void {
    if (this.draining) return this.reply(rq, 503, { headers: { 'retry-after': '30' } });
    const unsupported = unsupportedRequired(rq.headers);
    if (unsupported.length > 0) {
      this.log.info({ unsupported }, 'sip: INVITE requires an extension we lack, 420');
      return this.reply(rq, 420, { headers: { unsupported: unsupported.join(', ') } });
    }
    const to = dialledNumber(rq);
    if (!to) {
      this.log.info('sip: INVITE for an unparseable number');
      return this.reply(rq, 404);
    }
    const ctype = String(rq.headers['content-type'] ?? '').toLowerCase();
    if (!rq.content || !ctype.startsWith('application/sdp')) return this.reply(rq, 488, { reason: 'SDP Offer Required' });
    // Only a number, or `anonymous`, leaves here: the From header is the caller's to write.
    const from = callerId(toE164(uriUser(rq.headers.from!.uri) ?? '') ?? '');
    const terms = negotiateAsUas(rq, this.core.sessionTimers);
    if ('reject' in terms) {
      this.log.info('sip: INVITE session interval below our minimum, 422');
      return this.reply(rq, terms.reject.status, { headers: terms.reject.headers });
    }
    const proto = remote.protocol.toUpperCase();
    const transport: Transport = proto === 'TCP' ? 'tcp' : proto === 'TLS' ? 'tls' : 'udp';
    this.reply(rq, 100);
    const call = new InboundCall(this.core, rq, remote, transport, {
      session: terms.session,
      sessionHeaders: terms.headers,
      reliableProvisionals: optionTags(rq.headers, 'require').has('100rel'),
    });
    const key = pendingKey(rq);
    this.pending.set(key, call);
    setTimeout(() => this.pending.delete(key), 64 * 500 * 2).unref();
    this.log.info({ sipCallId: call.sipCallId, to: maskPhone(to), from: maskPhone(from) }, 'sip: INVITE in');
    try {
      const listener = this.onIncoming({ sipCallId: call.sipCallId, from, to, sdp: rq.content }, call);
      call.setListener(listener);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'sip: incoming-call handler threw');
      call.reject('failed');
    }
  }

  private onCancel(rq: SipRequest): void {
    const key = pendingKey(rq);
    const call = this.pending.get(key);
    if (!call) return this.reply(rq, 481);
    this.pending.delete(key);
    call.onCancel(rq);
  }

  private reply(rq: SipRequest, status: number, extra: Parameters<typeof makeResponse>[2] = {}): void {
    const toTag = status > 100 && !tagOf(rq.headers.to) ? `x${Math.random().toString(36).slice(2, 10)}` : undefined;
    this.core.stack.send(makeResponse(rq, status, { ...extra, toTag }));
  }
}

/** Certificates and keys are read once at start; a missing file is a configuration error naming its key. */
function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new MonologueError('CONFIG_INVALID', `config key "${key}" names ${JSON.stringify(path)}, which cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function checkTrunk(t: SipTrunkOptions): void {
  if (t.scheme === 'sips' && t.transport !== 'tls') {
    throw new MonologueError('CONFIG_INVALID', `trunk ${t.host}: scheme "sips" needs transport "tls"`);
  }
  if (t.tls?.caFile) readPem(t.tls.caFile, 'sip.trunk.tls.caFile');
}

function checkHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(value) || RESERVED.has(name.toLowerCase())) {
      throw new MonologueError('sip-bad-header', `extra SIP header ${JSON.stringify(name)} is not allowed or has an invalid value`);
    }
    out[name.toLowerCase()] = value;
  }
  return out;
}

/**
 * The number an INVITE is for: the Request-URI's user part first (trunks route on it; To keeps the
 * originally dialled number on a forwarded call), To only when the Request-URI has no number.
 */
function dialledNumber(rq: SipRequest): string | undefined {
  for (const uri of [typeof rq.uri === 'string' ? rq.uri : '', rq.headers.to!.uri]) {
    const user = uriUser(uri);
    const e164 = user === undefined ? undefined : toE164(user);
    if (e164) return e164;
  }
  return undefined;
}

/** A CANCEL matches its INVITE by Call-ID and top Via branch. */
function pendingKey(rq: SipRequest): string {
  return `${rq.headers['call-id']}\u0000${rq.headers.via?.[0]?.params.branch ?? ''}`;
}

const RESPONSE_START = Buffer.from('SIP/2.0 ');
