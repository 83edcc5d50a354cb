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
