/** Raw UDP/TCP SIP for tests that must send what no well-behaved stack would. */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

/** Send one datagram from a fresh socket; collect whatever comes back within `ms`. */
export async function udpExchange(port: number, data: string | Buffer, ms = 400): Promise<string[]> {
  const sock = createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('binary')));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const buf = typeof data === 'string' ? Buffer.from(data, 'binary') : data;
  await new Promise<void>((res) => sock.send(buf, port, '127.0.0.1', () => res()));
  await new Promise((r) => setTimeout(r, ms));
  sock.close();
  return got;
}

/** Write `chunks` on a TCP connection (then optionally end it); collect what comes back within `ms`. */
export async function tcpExchange(port: number, chunks: (string | Buffer)[], opts: { end?: boolean; ms?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect(port, '127.0.0.1', () => {
      for (const c of chunks) s.write(typeof c === 'string' ? Buffer.from(c, 'binary') : c);
      if (opts.end) s.end();
    });
    s.on('data', (d) => { got += d.toString('binary'); });
    s.on('error', () => {});
    setTimeout(() => { s.destroy(); resolve(got); }, opts.ms ?? 400);
  });
}

export function statusOf(response: string | undefined): number | undefined {
  const m = /^SIP\/2\.0 (\d{3})/.exec(response ?? '');
  return m ? Number(m[1]) : undefined;
}

let seq = 0;
/** A well-formed request from 127.0.0.1:`fromPort`; `patch` edits the text before sending. */
export function request(method: string, port: number, o: { body?: string; headers?: string; toTag?: string; callId?: string; branch?: string } = {}): string {
  seq += 1;
  const body = o.body ?? '';
  return [
    `${method} sip:+15550001111@127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:9;branch=${o.branch ?? `z9hG4bKraw${seq}${Date.now()}`}`,
    `From: <sip:+15550002222@127.0.0.1>;tag=raw${seq}`,
    `To: <sip:+15550001111@127.0.0.1>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: raw-${seq}-${Date.now()}@test`,
    `CSeq: 1 ${method}`,
    'Max-Forwards: 70',
    ...(o.headers ? [o.headers] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n').replace(/^Call-ID: .*$/m, (l) => (o.callId ? `Call-ID: ${o.callId}` : l));
}

/** A UDP SIP peer on one address (an allowed trunk on 127.0.0.1, a stranger on 127.0.0.5): sends text, keeps all it receives. */
export interface UdpPeer {
  readonly address: string;
  readonly port: number;
  readonly received: string[];
  send(text: string, port: number, host?: string): Promise<void>;
  /** The first message received (so far or within `ms`) that matches. */
  waitFor(what: string, pred: (m: string) => boolean, ms?: number): Promise<string>;
  close(): void;
}

export async function udpPeer(address = '127.0.0.1', port = 0): Promise<UdpPeer> {
  const sock = createSocket('udp4');
  const received: string[] = [];
  const waiters: { pred: (m: string) => boolean; res: (m: string) => void }[] = [];
  sock.on('message', (m) => {
    const text = m.toString('binary');
    received.push(text);
    for (const w of [...waiters]) if (w.pred(text)) { waiters.splice(waiters.indexOf(w), 1); w.res(text); }
  });
  await new Promise<void>((r) => sock.bind(port, address, () => r()));
  return {
    address,
    port: sock.address().port,
    received,
    send: (text, to, host = '127.0.0.1') => new Promise<void>((res) => sock.send(Buffer.from(text, 'binary'), to, host, () => res())),
    waitFor(what, pred, ms = 10_000) {
      const hit = received.find(pred);
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}; got ${received.map(firstLine).join(' | ')}`)), ms);
        waiters.push({ pred, res: (m) => { clearTimeout(t); res(m); } });
      });
    },
    close: () => sock.close(),
  };
}

export function firstLine(m: string): string {
  return m.slice(0, m.indexOf('\r\n'));
}

/** A header's value in a message's text (first occurrence), or undefined. */
export function header(m: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(m)?.[1]?.trim();
}

/** The pieces of one call a raw peer needs to speak in its dialog. */
export interface RawDialog {
  /** Our endpoint's port (on 127.0.0.1). */
  port: number;
  /** The dialled number; default +15550001111. */
  callee?: string;
  callId: string;
  fromTag: string;
  /** Where the peer says it is (Via); the requests really come from the socket that sends them. */
  via: { host: string; port: number };
  /** The To header of our 200 (with our tag), once answered. */
  to?: string;
}

let rawSeq = 0;

/** An INVITE from `d.via` with an SDP offer; `contact` and extra header lines as given. */
export function rawInvite(d: RawDialog, o: { contact?: string; from?: string; headers?: string[]; branch?: string; rtpPort?: number } = {}): string {
  rawSeq += 1;
  const body = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${o.rtpPort ?? 7000} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
  return [
    `INVITE sip:${d.callee ?? '+15550001111'}@127.0.0.1:${d.port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${d.via.host}:${d.via.port};branch=${o.branch ?? `z9hG4bKinv${rawSeq}${Date.now()}`}`,
    `From: ${o.from ?? '<sip:+15550002222@127.0.0.1>'};tag=${d.fromTag}`,
    `To: <sip:${d.callee ?? '+15550001111'}@127.0.0.1>`,
    `Call-ID: ${d.callId}`,
    'CSeq: 1 INVITE',
    `Contact: ${o.contact ?? `<sip:trunk@${d.via.host}:${d.via.port}>`}`,
    'Max-Forwards: 70',
    ...(o.headers ?? []),
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** An in-dialog request (ACK, BYE, re-INVITE, …) of `d`, which must have its `to` by now. */
export function rawInDialog(d: RawDialog, method: string, seq: number): string {
  rawSeq += 1;
  if (!d.to) throw new Error('rawInDialog: no To tag yet (wait for the 200)');
  return [
    `${method} sip:monologue@127.0.0.1:${d.port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${d.via.host}:${d.via.port};branch=z9hG4bKdlg${rawSeq}${Date.now()}`,
    `From: <sip:+15550002222@127.0.0.1>;tag=${d.fromTag}`,
    `To: ${d.to}`,
    `Call-ID: ${d.callId}`,
    `CSeq: ${seq} ${method}`,
    'Max-Forwards: 70',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}
