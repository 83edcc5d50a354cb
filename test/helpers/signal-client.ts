import { WebSocket } from 'ws';
import type { ServerMessage } from '../../src/signaling/protocol.js';
import { createTonePeer, gatheredSdp } from './wrtc-dialer.js';

/**
 * A raw `/v1/signal` client for tests about the socket itself: it keeps every message, the close code
 * and reason and when the close came, and can connect from any 127.0.0.x source address.
 */
export interface SignalClient {
  readonly ws: WebSocket;
  readonly msgs: ServerMessage[];
  /** Resolves when the socket closes, with the server's code and reason and the local time of the close. */
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  send(msg: Record<string, unknown>): void;
  /** The first message (already received or still to come) matching `pred`. */
  next<T extends ServerMessage>(pred: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  next(pred: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  /** Send `auth` and wait for `ready`. */
  auth(token: string): Promise<void>;
  close(): void;
}

export async function signalClient(port: number, opts: { localAddress?: string } = {}): Promise<SignalClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/signal`, opts.localAddress ? { localAddress: opts.localAddress } : {});
  const msgs: ServerMessage[] = [];
  const waiters = new Set<{ pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }>();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as ServerMessage;
    msgs.push(m);
    for (const w of [...waiters]) {
      if (!w.pred(m)) continue;
      waiters.delete(w);
      w.resolve(m);
    }
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => undefined); // a refused or reset socket shows in `closed`
  const next = (pred: (m: ServerMessage) => boolean, timeoutMs = 10_000): Promise<ServerMessage> => {
    const hit = msgs.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: ServerMessage) => (clearTimeout(timer), resolve(m)) };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(msgs).slice(0, 2000)}`));
      }, timeoutMs);
      waiters.add(w);
    });
  };
  return {
    ws,
    msgs,
    closed,
    send: (msg) => ws.send(JSON.stringify(msg)),
    next: next as SignalClient['next'],
    async auth(token) {
      ws.send(JSON.stringify({ type: 'auth', token }));
      const m = await next((x) => x.type === 'ready' || (x.type === 'error' && !x.ref));
      if (m.type !== 'ready') throw new Error(`auth refused: ${JSON.stringify(m)}`);
    },
    close: () => ws.close(),
  };
}

export const isError =
  (code: string, ref?: string) =>
  (m: ServerMessage): m is Extract<ServerMessage, { type: 'error' }> =>
    m.type === 'error' && m.code === code && (ref === undefined || m.ref === ref);

/** A complete offer from a real libwebrtc peer (ICE gathered), for raw `call.start`s; the peer is closed. */
export async function webrtcOffer(): Promise<string> {
  const peer = createTonePeer();
  try {
    await peer.pc.setLocalDescription(await peer.pc.createOffer());
    return await gatheredSdp(peer.pc);
  } finally {
    peer.close();
  }
}
