/**
 * Types for npm `sip` (kirm/sip.js 0.0.6) as we use it: messages, the stack instance from `create`,
 * and the digest helpers of `sip/digest`. The shapes follow node_modules/sip/sip.js and digest.js.
 */

export interface SipUri {
  schema: string;
  user?: string;
  password?: string;
  host: string;
  /** NaN or undefined when absent. */
  port?: number;
  params: Record<string, string | null>;
  headers: Record<string, string>;
}

/** To, From, Contact: `uri` is kept as text by the parser. */
export interface NameAddr {
  name?: string;
  uri: string;
  params: Record<string, string | null | undefined>;
}

/** Route, Record-Route: the parser parses `uri`; we may write either form. */
export interface RouteEntry {
  name?: string;
  uri: SipUri | string;
  params: Record<string, string | null | undefined>;
}

export interface Via {
  version?: string;
  protocol?: string;
  host?: string;
  port?: number;
  params: Record<string, string | null | undefined>;
}

export interface CSeq {
  seq: number;
  method: string;
}

/** One WWW-Authenticate / Authorization (and proxy variants) entry. */
export interface AuthParams {
  scheme?: string;
  [param: string]: string | undefined;
}

export interface SipHeaders {
  via?: Via[];
  to?: NameAddr;
  from?: NameAddr;
  'call-id'?: string;
  cseq?: CSeq;
  contact?: NameAddr[] | '*';
  route?: RouteEntry[];
  'record-route'?: RouteEntry[];
  'content-length'?: number;
  'content-type'?: string;
  'max-forwards'?: number | string;
  'www-authenticate'?: AuthParams[];
  'proxy-authenticate'?: AuthParams[];
  authorization?: AuthParams[];
  'proxy-authorization'?: AuthParams[];
  /** Any other header: text (repeated headers are joined with commas). */
  [name: string]: unknown;
}

export interface SipRequest {
  method: string;
  uri: string | SipUri;
  version?: string;
  headers: SipHeaders;
  content?: string;
  status?: undefined;
}

export interface SipResponse {
  status: number;
  reason: string;
  version?: string;
  headers: SipHeaders;
  content?: string;
  method?: undefined;
  /** Patched: set on the 503 the stack makes up when the transport failed (no trunk sent it). */
  transportError?: string;
}

export type SipMessage = SipRequest | SipResponse;

/** Where a message came from or goes to. */
export interface SipRemote {
  protocol: string;
  address: string;
  port: number;
  local?: { address: string; port: number };
}

export type SocketKind = 'udp' | 'tcp-server' | 'tcp-conn' | 'tls-server' | 'tls-conn';

/** Options of `create`. The `on*` hooks exist only in our patched load (stack.ts). */
export interface SipStackOptions {
  address?: string;
  port?: number;
  publicAddress?: string;
  hostname?: string;
  udp?: boolean;
  tcp?: boolean;
  rport?: boolean;
  maxBytesHeaders?: number;
  maxContentLength?: number;
  'max-forwards'?: number;
  logger?: {
    error?(err: unknown): void;
    send?(m: SipMessage, target: SipRemote): void;
    recv?(m: SipMessage, remote: SipRemote): void;
  };
  /** Patched: every UDP datagram before parsing; return false to drop it. `reply` sends raw bytes back. */
  rawFilter?(data: Buffer, rinfo: { address: string; port: number }, reply: (bytes: Buffer) => void): boolean;
  /** Patched: the UDP socket, the TCP and TLS servers and each outgoing TCP or TLS connection, as they are created. */
  onSocket?(kind: SocketKind, socket: unknown): void;
  /** Options of the TLS transport; its presence turns the transport on (a server only with `tls_port`). */
  tls?: import('node:tls').TlsOptions;
  /** Port of the TLS server; unset: outgoing TLS only. */
  tls_port?: number;
  /** Patched: opens each outgoing TLS connection; `hostname` is the URI's host the address came from. */
  tlsConnect?(port: number, address: string, hostname: string | undefined): import('node:tls').TLSSocket;
  /** Patched: every parsed request (both transports) before transaction lookup; false drops it unanswered. */
  admit?(rq: SipRequest, remote: SipRemote): boolean;
}

export type ResponseCallback = (rs: SipResponse) => void;
export type RequestCallback = (rq: SipRequest, remote: SipRemote) => void;

/** One stack instance (`sip.create`). */
export interface SipStack {
  /** Requests start a client transaction (responses reach `onResponse`); responses go through the server transaction. */
  send(m: SipRequest, onResponse?: ResponseCallback): void;
  send(m: SipResponse): void;
  hostname(): string;
  destroy(): void;
}

export interface SipModule {
  create(options: SipStackOptions, onRequest: RequestCallback): SipStack;
  /** Module-global variant of `create`; avoid (one endpoint per process). */
  start(options: SipStackOptions, onRequest: RequestCallback): void;
  stop?(): void;
  makeResponse(rq: SipRequest, status: number, reason?: string, extension?: { headers?: SipHeaders; content?: string }): SipResponse;
  /** Parse one whole message (datagram); undefined when the start line or a header line is unreadable. */
  parse(data: string | Buffer): SipMessage | undefined;
  stringify(m: SipMessage): string;
  parseUri(s: string | SipUri): SipUri | undefined;
  stringifyUri(uri: string | SipUri): string;
  generateBranch(): string;
  copyMessage<T extends SipMessage>(m: T, deep?: boolean): T;
}

export interface DigestCredentials {
  user: string;
  password?: string;
  /** MD5(user:realm:password), instead of password. */
  hash?: string;
  /** Pick the challenge of this realm; first challenge otherwise. */
  realm?: string;
}

/** Mutable client/server digest state; the helpers fill it in. */
export interface DigestContext {
  proxy?: boolean;
  realm?: string;
  nonce?: string;
  cnonce?: string;
  nc?: number;
  qop?: string;
  algorithm?: string;
  opaque?: string;
  user?: string;
  uri?: string;
  ha1?: string;
  userhash?: string;
  domain?: string;
}

export interface DigestModule {
  /** Server: add a challenge to `rs` (401 → WWW-Authenticate, 407 → Proxy-Authenticate). */
  challenge(ctx: DigestContext, rs: SipResponse): SipResponse;
  /** Server: check the request's credentials against `ctx`. */
  authenticateRequest(ctx: DigestContext, rq: SipRequest, creds: DigestCredentials): boolean;
  signResponse(ctx: DigestContext, rs: SipResponse): SipResponse;
  /**
   * Client: add Authorization (or Proxy-Authorization after a 407) to `rq`, answering `rs`'s challenge.
   * Throws when `rs` carries no usable challenge. Writes `algorithm` in lower case (we fix that).
   */
  signRequest(ctx: DigestContext | null | undefined, rq: SipRequest, rs?: SipResponse, creds?: DigestCredentials): DigestContext | null;
  authenticateResponse(ctx: DigestContext, rs: SipResponse): boolean | undefined;
  calculateHA1(ctx: DigestContext): string;
  calculateDigest(ctx: Record<string, string | undefined>): string;
  kd(...parts: string[]): string;
}
