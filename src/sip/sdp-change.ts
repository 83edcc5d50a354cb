/**
 * Whether a mid-dialog SDP changes the session. A session refresh (RFC 4028) or a re-INVITE that
 * only re-sends the offer carries the same SDP again; trunks rewrite whitespace, attribute order or
 * the session name, so raw text is no test. The RFC 3264 §8 rule is the o= version: unchanged
 * version, unchanged session. Some trunks bump the version on every refresh, so an unchanged media
 * description (address, port, direction, codecs per m= line) also counts as "no change".
 */
import * as sdpTransform from 'sdp-transform';

export function changesMedia(previous: string | undefined, next: string): boolean {
  if (previous === undefined) return true;
  const a = parse(previous);
  const b = parse(next);
  if (!a || !b) return true;
  if (a.origin === b.origin) return false;
  return a.media !== b.media;
}

function parse(sdp: string): { origin: string; media: string } | undefined {
  try {
    const s = sdpTransform.parse(sdp);
    const o = s.origin;
    if (!o) return undefined;
    const media = (s.media ?? []).map((m) => {
      const c = m.connection?.ip ?? s.connection?.ip ?? '';
      const dir = m.direction ?? s.direction ?? 'sendrecv';
      const codecs = (m.rtp ?? []).map((r) => `${r.payload}/${r.codec.toLowerCase()}/${r.rate ?? ''}`).join(',');
      return `${m.type} ${c}:${m.port} ${m.protocol} ${String(m.payloads ?? '')} ${dir} ${codecs}`;
    });
    return { origin: `${o.username} ${o.sessionId} ${o.sessionVersion} ${o.ipVer} ${o.address}`, media: media.join('\n') };
  } catch {
    return undefined;
  }
}
