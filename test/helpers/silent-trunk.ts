import { createSocket } from 'node:dgram';

/**
 * A trunk that listens and never answers: a plain UDP socket on the trunk's port that keeps every SIP
 * request it is sent. What must never reach the trunk can be asserted absent from it.
 */
export interface SilentTrunk {
  /** Request lines of the INVITEs received, one per Call-ID (retransmissions folded). */
  invites(): string[];
  /** Every datagram received. */
  readonly datagrams: number;
  close(): Promise<void>;
}

export async function startSilentTrunk(port: number): Promise<SilentTrunk> {
  const socket = createSocket('udp4');
  const invites = new Map<string, string>();
  let datagrams = 0;
  socket.on('message', (buf) => {
    datagrams++;
    const text = buf.toString('latin1');
    const requestLine = text.slice(0, text.indexOf('\r\n'));
    const callId = /^(?:Call-ID|i)\s*:\s*(.+)$/im.exec(text)?.[1]?.trim() ?? '';
    if (requestLine.startsWith('INVITE ')) invites.set(callId, requestLine);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  return {
    invites: () => [...invites.values()],
    get datagrams() {
      return datagrams;
    },
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}
