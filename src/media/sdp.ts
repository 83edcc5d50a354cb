/**
 * SDP checks and small rewrites around rtpengine, with sdp-transform. Everything that comes from a dialer
 * or a trunk is validated here before it is sent to rtpengine, so that bad input gets a clear BAD_SDP.
 */
import * as sdpTransform from 'sdp-transform';
import type { MediaDescription, SessionDescription } from 'sdp-transform';
import { MonologueError } from '../errors.js';

/** Codecs a trunk leg may carry, in the names rtpengine and SDP use. */
export type TrunkCodec = 'PCMU' | 'PCMA' | 'opus';

/**
 * SRTP towards the trunk (SDES keys in the SDP, so only safe over TLS signalling). `sdes`: the trunk leg is
 * RTP/SAVP both ways and a plain answer or offer is refused; `sdes-optional`: we offer SRTP as RFC 8643
 * opportunistic SRTP (RTP/AVP with a=crypto) and take plain RTP from a trunk that does not do it.
 */
export type TrunkSrtp = 'off' | 'sdes' | 'sdes-optional';

/** Which side an SDP came from: the dialer speaks WebRTC, the trunk plain RTP. */
export type SdpSide = 'dialer' | 'trunk';

/** Largest SDP we accept: the ng request must fit in one UDP datagram. */
const MAX_SDP_BYTES = 32 * 1024;

/**
 * Parse and check an SDP from `side`; throw MonologueError('BAD_SDP') when it cannot work.
 * Requires: `v=0`, exactly one m-line and it is audio with a non-zero port and at least one payload,
 * a connection address; WebRTC SDP also needs ICE credentials and a DTLS fingerprint.
 */
export function validateSdp(sdp: unknown, side: SdpSide): SessionDescription {
  if (typeof sdp !== 'string' || sdp.trim() === '') throw bad(side, 'empty');
  if (Buffer.byteLength(sdp) > MAX_SDP_BYTES) throw bad(side, `larger than ${MAX_SDP_BYTES} bytes`);
  if (!/^v=0\r?$/m.test(sdp.split('\n', 1)[0] ?? '')) throw bad(side, 'does not start with v=0');
  const badLine = sdp.split(/\r?\n/).findIndex((l) => l !== '' && !/^[a-z]=/.test(l));
  if (badLine >= 0) throw bad(side, `line ${badLine + 1} is not of the form <letter>=<value>`);
  let parsed: SessionDescription;
  try {
    parsed = sdpTransform.parse(sdp);
  } catch (err) {
    throw new MonologueError('BAD_SDP', `${side} SDP does not parse: ${String(err)}`);
  }
  const media = parsed.media ?? [];
  if (media.length !== 1) throw bad(side, `has ${media.length} m-lines, expected exactly one audio m-line`);
  const m = media[0] as MediaDescription;
  if (m.type !== 'audio') throw bad(side, `m-line is ${m.type}, expected audio`);
  if (!Number.isInteger(m.port) || m.port <= 0 || m.port > 65535) throw bad(side, 'audio m-line has no usable port');
  if (payloadTypes(m).length === 0) throw bad(side, 'audio m-line lists no payload types');
  if (!m.connection?.ip && !parsed.connection?.ip) throw bad(side, 'has no connection address (c=)');
  if (side === 'dialer') {
    if (!(m.iceUfrag ?? parsed.iceUfrag) || !(m.icePwd ?? parsed.icePwd)) throw bad(side, 'has no ICE credentials');
    if (!(m.fingerprint ?? parsed.fingerprint)) throw bad(side, 'has no DTLS fingerprint');
    if (!rtpmapNames(m).includes('opus')) throw bad(side, 'does not offer Opus');
  } else {
    const known = rtpmapNames(m).filter((n) => n === 'pcmu' || n === 'pcma' || n === 'opus');
    const staticPts = payloadTypes(m).filter((pt) => pt === 0 || pt === 8);
    if (known.length === 0 && staticPts.length === 0) throw bad(side, 'offers none of PCMU, PCMA, Opus');
  }
  return parsed;
}

/**
 * The trunk's SDP against `media.trunkSrtp`: under `sdes` it must be RTP/SAVP with a usable a=crypto line
 * (a plain answer is a downgrade, refused with MEDIA_SRTP_REQUIRED rather than sent in cleartext). Under any
 * SRTP mode a crypto line that does not encrypt (a NULL cipher, UNENCRYPTED_SRTP) is refused.
 */
export function checkTrunkSrtp(parsed: SessionDescription, mode: TrunkSrtp): void {
  if (mode === 'off') return;
  const m = parsed.media[0] as MediaDescription;
  const crypto = m.crypto ?? [];
  const weak = crypto.find((c) => /^NULL_/i.test(c.suite) || /UNENCRYPTED_SRTP\b/i.test(c.sessionConfig ?? ''));
  if (weak) throw new MonologueError('MEDIA_SRTP_REQUIRED', `trunk SDP offers SRTP suite ${weak.suite} without encryption; media.trunkSrtp needs encrypted SRTP`);
  if (mode === 'sdes' && (m.protocol !== 'RTP/SAVP' || crypto.length === 0)) {
    throw new MonologueError('MEDIA_SRTP_REQUIRED', `trunk SDP is ${m.protocol}${crypto.length === 0 ? ' without a=crypto' : ''}: media.trunkSrtp "sdes" needs RTP/SAVP with SDES keys (use "sdes-optional" to accept plain RTP)`);
  }
}

/**
 * rtpengine 10.5 does not emit BUNDLE; browsers (and libwebrtc with max-bundle) want it.
 * Add `a=mid:0` if missing and `a=group:BUNDLE <mid>` (replacing any BUNDLE group; other groups stay).
 * Line edits rather than a parse and rewrite: on every answered call, a full sdp-transform round trip of
 * rtpengine's WebRTC SDP cost ~150 µs (measured), about 4% of the service's CPU per call setup.
 */
export function addBundle(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(eol);
  const first = lines.findIndex((l) => l.startsWith('m='));
  if (first < 0) return sdp;
  let end = lines.findIndex((l, i) => i > first && l.startsWith('m='));
  if (end < 0) end = lines.length;
  // The media section's last line (a trailing empty string is the final line break, not a line).
  while (end > first + 1 && lines[end - 1] === '') end--;
  const midAt = lines.findIndex((l, i) => i > first && i < end && l.startsWith('a=mid:'));
  let mid = midAt >= 0 ? lines[midAt]!.slice('a=mid:'.length).trim() : '';
  if (mid === '') {
    mid = '0';
    if (midAt >= 0) lines[midAt] = 'a=mid:0';
    else lines.splice(end, 0, 'a=mid:0');
  }
  const session = lines.slice(0, first).filter((l) => !/^a=group:BUNDLE(\s|$)/.test(l));
  return [...session, `a=group:BUNDLE ${mid}`, ...lines.slice(first)].join(eol);
}

/**
 * Shape rtpengine's offer for a SIP trunk: the trunk codecs first in the configured order, then whatever else
 * rtpengine offered (telephone-event, CN); trunk codecs that are not configured are dropped. WebRTC-only
 * attributes are removed (see `stripWebRtcAttributes`).
 */
export function sdpForTrunk(sdp: string, codecs: readonly TrunkCodec[]): string {
  const parsed = sdpTransform.parse(sdp);
  const m = parsed.media?.[0];
  if (!m) return sdp;
  stripWebRtcAttributes(parsed);
  const wanted = codecs.map((c) => c.toLowerCase());
  const names = new Map<number, string>();
  for (const r of m.rtp ?? []) names.set(r.payload, r.codec.toLowerCase());
  const nameOf = (pt: number): string => names.get(pt) ?? (pt === 0 ? 'pcmu' : pt === 8 ? 'pcma' : '');
  const isTrunkCodec = (n: string): boolean => n === 'pcmu' || n === 'pcma' || n === 'opus';
  const pts = payloadTypes(m).filter((pt) => !isTrunkCodec(nameOf(pt)) || wanted.includes(nameOf(pt)));
  const rank = (pt: number): number => {
    const i = wanted.indexOf(nameOf(pt));
    return i >= 0 ? i : wanted.length;
  };
  const ordered = pts
    .map((pt, i) => ({ pt, i }))
    .sort((a, b) => rank(a.pt) - rank(b.pt) || a.i - b.i)
    .map((x) => x.pt);
  const keep = new Set(ordered);
  m.payloads = ordered.join(' ');
  m.rtp = (m.rtp ?? []).filter((r) => keep.has(r.payload));
  m.fmtp = (m.fmtp ?? []).filter((f) => keep.has(f.payload));
  return sdpTransform.write(parsed);
}

/** rtpengine's answer for a SIP trunk, with WebRTC-only attributes removed; codecs untouched. */
export function answerForTrunk(sdp: string): string {
  const parsed = sdpTransform.parse(sdp);
  if (!parsed.media?.[0]) return sdp;
  stripWebRtcAttributes(parsed);
  return sdpTransform.write(parsed);
}

/**
 * Remove what rtpengine passes through from the browser but means nothing on plain RTP/AVP (msid, ssrc, mid,
 * BUNDLE, extmap-allow-mixed, RTCP feedback): some SBCs choke on them.
 */
function stripWebRtcAttributes(parsed: SessionDescription): void {
  delete parsed.msidSemantic;
  delete parsed.groups;
  delete parsed.extmapAllowMixed;
  for (const m of parsed.media ?? []) {
    delete m.msid;
    delete m.ssrcs;
    delete m.ssrcGroups;
    delete m.mid;
    delete m.extmapAllowMixed;
    delete m.rtcpFb;
  }
}

/** An SDP media direction (RFC 3264 §5.1). */
export type MediaFlow = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

const FLOWS: readonly string[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

/**
 * What the sender of `sdp` asks for on its audio line: the media-level attribute, else the session-level
 * one, else sendrecv. The old way of holding (RFC 2543: `c=0.0.0.0`) means "do not send to me", so it
 * takes away the receive half whatever the attribute says.
 */
export function mediaFlow(sdp: string): MediaFlow {
  const parsed = sdpTransform.parse(sdp);
  const m = parsed.media?.[0];
  const attr = m?.direction ?? parsed.direction;
  let flow: MediaFlow = attr && FLOWS.includes(attr) ? attr : 'sendrecv';
  const ip = m?.connection?.ip ?? parsed.connection?.ip;
  if (ip === '0.0.0.0') flow = flow === 'sendrecv' || flow === 'sendonly' ? 'sendonly' : 'inactive';
  return flow;
}

/** True when an offer puts us on hold: the far end will not receive (sendonly, inactive, or c=0.0.0.0). */
export function isHold(offerSdp: string): boolean {
  const flow = mediaFlow(offerSdp);
  return flow === 'sendonly' || flow === 'inactive';
}

/** The direction an answer must carry for an offer (RFC 3264 §6.1): sendonly ↔ recvonly, the rest as offered. */
export function answerDirection(offerSdp: string): MediaFlow {
  const flow = mediaFlow(offerSdp);
  return flow === 'sendonly' ? 'recvonly' : flow === 'recvonly' ? 'sendonly' : flow;
}

/** `sdp` with its audio line's direction set to `flow` (and no session-level direction left to contradict it). */
export function withDirection(sdp: string, flow: MediaFlow): string {
  const parsed = sdpTransform.parse(sdp);
  const m = parsed.media?.[0];
  if (!m) return sdp;
  delete parsed.direction;
  m.direction = flow;
  return sdpTransform.write(parsed);
}

/**
 * `sdp` (the browser's offer) restated as the answer it turned into: `a=setup:actpass` replaced by the DTLS
 * role the browser took opposite `relayAnswer` (rtpengine's answer to it). Re-used as an answer later, an
 * actpass would leave rtpengine free to pick a role again on a DTLS session that is already up.
 */
export function withSettledDtlsRole(sdp: string, relayAnswer: string): string {
  const theirs = sdpTransform.parse(relayAnswer);
  const relayRole = theirs.media?.[0]?.setup ?? theirs.setup;
  if (relayRole !== 'active' && relayRole !== 'passive') return sdp;
  const parsed = sdpTransform.parse(sdp);
  const role = relayRole === 'active' ? 'passive' : 'active';
  if (parsed.setup) parsed.setup = role;
  for (const m of parsed.media ?? []) if (m.setup) m.setup = role;
  return sdpTransform.write(parsed);
}

/** Payload types of the audio m-line in order. */
export function payloadTypes(m: MediaDescription): number[] {
  return String(m.payloads ?? '')
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n >= 0 && n <= 127);
}

/** Lower-case codec names of the audio m-line, in payload order (static PCMU/PCMA included); an SDP already parsed is not parsed again. */
export function codecNames(sdp: string | SessionDescription): string[] {
  const m = (typeof sdp === 'string' ? sdpTransform.parse(sdp) : sdp).media?.[0];
  if (!m) return [];
  const names = new Map<number, string>();
  for (const r of m.rtp ?? []) names.set(r.payload, r.codec.toLowerCase());
  return payloadTypes(m).map((pt) => names.get(pt) ?? (pt === 0 ? 'pcmu' : pt === 8 ? 'pcma' : String(pt)));
}

function rtpmapNames(m: MediaDescription): string[] {
  return (m.rtp ?? []).map((r) => r.codec.toLowerCase());
}

function bad(side: SdpSide, what: string): MonologueError {
  return new MonologueError('BAD_SDP', `${side} SDP ${what}`);
}
