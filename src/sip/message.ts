/**
 * Building and checking SIP messages: responses that never share objects with their request
 * (npm `sip`'s makeResponse shares `To`), tags and ids, and the checks that turn bad input into a
 * 4xx instead of a crash.
 */
import { isUtf8 } from 'node:buffer';
import { publicRandomHex } from '../crypto/random-pool.js';
import type { NameAddr, SipHeaders, SipModule, SipRequest, SipResponse } from './sip-types.js';

export const T1 = 500;
export const T2 = 4000;
/** 64*T1: how long a transaction may wait (Timer B/F/H). */
export const TX_TIMEOUT = 64 * T1;

export const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying', 180: 'Ringing', 183: 'Session Progress', 200: 'OK',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 420: 'Bad Extension', 422: 'Session Interval Too Small', 491: 'Request Pending', 404: 'Not Found', 405: 'Method Not Allowed',
  407: 'Proxy Authentication Required', 408: 'Request Timeout', 413: 'Request Entity Too Large',
  415: 'Unsupported Media Type', 480: 'Temporarily Unavailable', 481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here', 500: 'Server Internal Error',
  501: 'Not Implemented', 503: 'Service Unavailable', 505: 'Version Not Supported', 603: 'Decline',
};

export const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK';
/** Option tags we implement (RFC 4028 session timers, RFC 3262 reliable provisionals). */
export const SUPPORTED = 'timer, 100rel';
/** Methods we know; anything else is answered 501. */
export const KNOWN_METHODS = new Set(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'INFO', 'UPDATE', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'MESSAGE', 'PUBLISH']);

/** Largest message we take (UDP datagrams and TCP header sections and bodies). */
export const MAX_MESSAGE_BYTES = 65_000;
export const MAX_HEADER_LINE = 8192;

/** `host:port` as a URI writes it (IPv6 in brackets). */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function newTag(): string {
  return publicRandomHex(8);
}

export function newCallId(host: string): string {
  return `${publicRandomHex(16)}@${host}`;
}

export function cloneNameAddr(a: NameAddr, tag?: string): NameAddr {
  const params = { ...a.params };
  if (tag !== undefined && !params.tag) params.tag = tag;
  return { ...a, params };
}

export function tagOf(a: NameAddr | undefined): string | undefined {
  const t = a?.params.tag;
  return typeof t === 'string' && t.length > 0 ? t : undefined;
}

/** A response to `rq` whose header objects are copies (safe to add a To tag to). */
export function makeResponse(
  rq: SipRequest,
  status: number,
  extra: { reason?: string; toTag?: string; headers?: SipHeaders; content?: string } = {},
): SipResponse {
  const h = rq.headers;
  const headers: SipHeaders = {
    via: (h.via ?? []).map((v) => ({ ...v, params: { ...v.params } })),
    to: h.to ? cloneNameAddr(h.to, extra.toTag) : undefined,
    from: h.from ? cloneNameAddr(h.from) : undefined,
    'call-id': h['call-id'],
    cseq: h.cseq ? { ...h.cseq } : undefined,
    ...extra.headers,
  };
  return { status, reason: extra.reason ?? REASONS[status] ?? 'Unknown', version: '2.0', headers, content: extra.content ?? '' };
}

/** Whether a response can be built for `m` at all (RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq). */
export function canAnswer(m: { headers?: SipHeaders } | undefined): m is { headers: SipHeaders } {
  const h = m?.headers;
  return !!h && Array.isArray(h.via) && h.via.length > 0 && !!h.from && !!h.to && typeof h['call-id'] === 'string' && !!h.cseq;
}

export interface Problem {
  status: number;
  reason?: string;
  /** Short, phone-number-free text for the log. */
  why: string;
}

/**
 * Checks of a datagram before npm `sip` parses it. Returns a problem to answer (400/413/505),
 * 'drop' when nothing can be answered, or undefined when the datagram may go on.
 */
export function checkDatagram(sip: SipModule, data: Buffer): { problem: Problem; request?: SipRequest } | 'drop' | undefined {
  if (data.length === 0) return 'drop';
  const text = data.toString('binary');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  if (/^\s*$/.test(head)) return 'drop';
  let parsed: ReturnType<SipModule['parse']>;
  try {
    parsed = end < 0 ? undefined : sip.parse(data);
  } catch {
    parsed = undefined;
  }
  const problem = headProblem(data, head, end < 0 ? '' : text.slice(end + 4), parsed);
  if (!problem) return parsed ? undefined : 'drop';
  if (!parsed || parsed.status !== undefined || !canAnswer(parsed)) return 'drop';
  return { problem, request: parsed };
}

function headProblem(data: Buffer, head: string, body: string, m: ReturnType<SipModule['parse']>): Problem | undefined {
  if (data.length > MAX_MESSAGE_BYTES) return { status: 413, why: 'message too large' };
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(head)) return { status: 400, reason: 'Bad Characters', why: 'control bytes in headers' };
  if (!isUtf8(Buffer.from(head, 'binary'))) return { status: 400, reason: 'Bad Characters', why: 'invalid UTF-8 in headers' };
  const lines = head.split(/\r\n/);
  if (lines.some((l) => l.length > MAX_HEADER_LINE)) return { status: 400, reason: 'Header Too Long', why: 'header line too long' };
  if (!m) return { status: 400, why: 'unparseable' };
  const cl = lines.filter((l) => /^(content-length|l)\s*:/i.test(l)).map((l) => l.slice(l.indexOf(':') + 1).trim());
  if (cl.length > 1 && new Set(cl).size > 1) return { status: 400, reason: 'Conflicting Content-Length', why: 'duplicate Content-Length' };
  const first = cl[0];
  if (first !== undefined) {
    if (!/^\d+$/.test(first)) return { status: 400, reason: 'Bad Content-Length', why: 'bad Content-Length' };
    if (Number(first) > body.length) return { status: 400, reason: 'Content-Length Too Large', why: 'body shorter than Content-Length' };
  }
  return undefined;
}

/** Semantic checks of a parsed request (both transports). */
export function requestProblem(sip: SipModule, rq: SipRequest): Problem | undefined {
  if (rq.version !== '2.0') return { status: 505, why: 'SIP version' };
  const h = rq.headers;
  if (!KNOWN_METHODS.has(rq.method)) return { status: 501, why: 'unknown method' };
  if (typeof rq.uri !== 'string' || !sip.parseUri(rq.uri)) return { status: 400, reason: 'Bad Request-URI', why: 'request URI' };
  if (!h.from || !parsesAsUri(sip, h.from.uri)) return { status: 400, reason: 'Bad From', why: 'From URI' };
  if (!h.to || !parsesAsUri(sip, h.to.uri)) return { status: 400, reason: 'Bad To', why: 'To URI' };
  if (!h.cseq || !Number.isSafeInteger(h.cseq.seq) || h.cseq.seq < 0 || h.cseq.seq > 2 ** 31) {
    return { status: 400, reason: 'Bad CSeq', why: 'CSeq number' };
  }
  if (h.cseq.method !== rq.method) return { status: 400, reason: 'CSeq Method Mismatch', why: 'CSeq method' };
  const cl = h['content-length'];
  if (cl !== undefined && !(Number.isInteger(cl) && cl >= 0)) return { status: 400, reason: 'Bad Content-Length', why: 'bad Content-Length' };
  return undefined;
}

function parsesAsUri(sip: SipModule, uri: string): boolean {
  if (/^tel:[^\s<>]+$/i.test(uri)) return true;
  return !!sip.parseUri(uri);
}
