import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { Logger } from '../log.js';
import { PerSourceLog } from '../per-source-log.js';
import type { Session, SessionEnd, Tokens } from '../accounts/tokens.js';
import type { TokenWatch } from '../accounts/token-watch.js';
import { errorMessage as describe } from '../errors.js';
import type { Switchboard } from '../calls/switchboard.js';
import type { DialerChannel } from '../calls/ports.js';
import { parseClientMessage, type ClientMessage, type ServerMessage } from './protocol.js';

export interface SignalingOptions {
  maxMessageBytes: number;
  authTimeoutMs: number;
  maxMessagesPerSecond: number;
  maxSocketsPerUser: number;
  maxSocketsPerIp: number;
  maxUnauthenticatedSocketsPerIp: number;
}

export const SIGNAL_PATH = '/v1/signal';

/** Close codes (4000-4999 are ours): a client can tell why it was dropped. */
const CLOSE_AUTH_FAILED = 4001; // also: the token was revoked or expired while connected
const CLOSE_AUTH_TIMEOUT = 4002;
const CLOSE_TOO_MANY_FOR_USER = 4003;
const CLOSE_TOO_MANY_FROM_IP = 4004;
const CLOSE_TOO_MANY_UNAUTHENTICATED = 4005;
const CLOSE_RATE_LIMIT = 4008;
const CLOSE_SHUTDOWN = 1001;
/** A peer that does not finish the closing handshake after its session ended is cut off after this. */
const CLOSE_GRACE_MS = 2000;

export interface Signaling {
  /** Call from the HTTP server's `upgrade` event; returns false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  readonly connections: number;
  close(): Promise<void>;
}

export function createSignaling(
  deps: { tokens: Tokens; watch: TokenWatch; switchboard: Switchboard; log: Logger },
  options: SignalingOptions,
): Signaling {
  const log = deps.log.child({ mod: 'signaling' });
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false });
  /** Open sockets per source address (all, and those not yet authenticated), and per user. */
  const fromIp = new Map<string, { all: number; unauthenticated: number }>();
  const ofUser = new Map<string, number>();
  /** Refusals are the caller's to cause at will: one line a minute per address. */
  const refusalLines = new PerSourceLog(4096);
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => admit(ws, req.socket.remoteAddress ?? 'unknown'));
  wss.on('error', (err) => log.warn({ err }, 'websocket server error'));

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      const alive = ws as WebSocket & { alive?: boolean };
      if (alive.alive === false) {
        ws.terminate();
        continue;
      }
      alive.alive = false;
      ws.ping();
    }
  }, 30_000);
  heartbeat.unref();

  /** Apply the per-address caps, then serve; the counts follow the socket until it closes. */
  function admit(ws: WebSocket, ip: string): void {
    const counts = fromIp.get(ip) ?? { all: 0, unauthenticated: 0 };
    const refuse = (code: number, reason: string, message: string) => {
      const line = refusalLines.admit(ip);
      if (line) log.warn({ ip: line.source, reason, refusedSinceLastLine: line.unlogged }, 'socket refused');
      ws.on('error', (err) => log.debug({ err: err.message }, 'websocket error'));
      ws.send(JSON.stringify(errorMessage('TOO_MANY_CONNECTIONS', message)));
      ws.close(code, reason);
    };
    if (counts.all >= options.maxSocketsPerIp) {
      return refuse(CLOSE_TOO_MANY_FROM_IP, 'too many sockets from this address', `at most ${options.maxSocketsPerIp} connections from one address; close one first`);
    }
    if (counts.unauthenticated >= options.maxUnauthenticatedSocketsPerIp) {
      return refuse(
        CLOSE_TOO_MANY_UNAUTHENTICATED,
        'too many unauthenticated sockets',
        `at most ${options.maxUnauthenticatedSocketsPerIp} connections from one address may wait for authentication; authenticate the others first`,
      );
    }
    counts.all++;
    counts.unauthenticated++;
    fromIp.set(ip, counts);
    serve(ws, ip, counts);
  }

  function serve(ws: WebSocket, ip: string, counts: { all: number; unauthenticated: number }): void {
    const state: { channel?: DialerChannel; detach?: () => void; unwatch?: () => void; ended?: boolean } = {};
    let authPending = false;
    const limiter = rateLimiter(options.maxMessagesPerSecond);
    const send = (msg: ServerMessage) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    };
    const error = (code: string, message: string, ref?: string) => send(errorMessage(code, message, ref));

    const authTimer = setTimeout(() => {
      if (state.channel) return;
      error('AUTH_TIMEOUT', `send {"type":"auth","token":…} within ${options.authTimeoutMs} ms of connecting`);
      ws.close(CLOSE_AUTH_TIMEOUT, 'auth timeout');
    }, options.authTimeoutMs);

    ws.on('pong', () => ((ws as WebSocket & { alive?: boolean }).alive = true));
    ws.on('error', (err) => log.debug({ err: err.message }, 'websocket error'));
    ws.on('close', () => {
      clearTimeout(authTimer);
      leave();
      if (--counts.all <= 0) fromIp.delete(ip);
      else if (!state.channel) counts.unauthenticated--;
      if (state.channel) {
        const left = (ofUser.get(state.channel.userId) ?? 1) - 1;
        if (left > 0) ofUser.set(state.channel.userId, left);
        else ofUser.delete(state.channel.userId);
      }
    });

    /** Detach from the switchboard (ending this socket's calls) and stop watching the token; idempotent. */
    function leave(): void {
      state.unwatch?.();
      state.unwatch = undefined;
      state.detach?.();
      state.detach = undefined;
    }

    /** The token stopped holding: no more calls from or to this socket, then close it. */
    function sessionEnded(why: SessionEnd): void {
      if (state.ended) return;
      state.ended = true;
      leave();
      error(why === 'revoked' ? 'TOKEN_REVOKED' : 'TOKEN_EXPIRED', `your token was ${why}; ask for a new one and connect again`);
      ws.close(CLOSE_AUTH_FAILED, `token ${why}`);
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
      log.info({ userId: state.channel?.userId, why }, 'dialer disconnected: its token no longer holds');
    }

    ws.on('message', (data: RawData, isBinary: boolean) => {
      const verdict = limiter();
      if (verdict === 'drop') return error('RATE_LIMITED', `more than ${options.maxMessagesPerSecond} messages a second; slow down`);
      if (verdict === 'close') return ws.close(CLOSE_RATE_LIMIT, 'rate limit');
      if (isBinary) return error('BAD_MESSAGE', 'binary frames are not accepted; send JSON text');
      const parsed = parseClientMessage(data.toString());
      if (!parsed.ok) return error(parsed.code, parsed.message, parsed.ref);
      const msg = parsed.message;
      if (msg.type === 'ping') return send({ type: 'pong' });
      if (msg.type === 'auth') return void authenticate(msg.token);
      if (state.ended) return;
      if (!state.channel) return error('AUTH_REQUIRED', 'authenticate first with {"type":"auth","token":…}', 'ref' in msg ? msg.ref : undefined);
      dispatch(state.channel, msg).catch((err: unknown) => {
        log.error({ err }, 'signaling handler failed');
        error('INTERNAL', 'the server could not handle that message; try again', 'ref' in msg ? msg.ref : undefined);
      });
    });

    async function authenticate(token: string): Promise<void> {
      if (state.channel || authPending) return error('ALREADY_AUTHENTICATED', 'this connection is already authenticated');
      authPending = true;
      const session = await deps.tokens.session(token).catch((err: unknown) => {
        log.error({ err }, 'token lookup failed');
        return undefined;
      });
      authPending = false;
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!session) {
        error('AUTH_FAILED', 'the token is unknown, expired or revoked; ask for a new one');
        ws.close(CLOSE_AUTH_FAILED, 'auth failed');
        return;
      }
      const { userId } = session;
      const sockets = ofUser.get(userId) ?? 0;
      if (sockets >= options.maxSocketsPerUser) {
        log.warn({ userId }, 'socket refused: too many for this user');
        error('TOO_MANY_CONNECTIONS', `at most ${options.maxSocketsPerUser} connections per user; close another dialer first`);
        ws.close(CLOSE_TOO_MANY_FOR_USER, 'too many sockets for this user');
        return;
      }
      clearTimeout(authTimer);
      ofUser.set(userId, sockets + 1);
      counts.unauthenticated--;
      state.channel = channelFor(session, send, authorised, () => state.ended || ws.readyState !== WebSocket.OPEN);
      state.detach = deps.switchboard.attachDialer(state.channel);
      state.unwatch = deps.watch.watch(session, sessionEnded);
      send({ type: 'ready', userId });
      log.info({ userId }, 'dialer connected');
    }

    /** Re-check the token now (before an inbound call rings this socket); a database failure rings nobody. */
    async function authorised(sessionId: string): Promise<boolean> {
      if (state.ended) return false;
      return deps.watch.confirm(sessionId).catch((err: unknown) => {
        log.warn({ err: describe(err) }, 'session check failed; not ringing this dialer');
        return false;
      });
    }
  }

  async function dispatch(channel: DialerChannel, msg: Exclude<ClientMessage, { type: 'auth' | 'ping' }>): Promise<void> {
    switch (msg.type) {
      case 'call.start':
        return deps.switchboard.startCall(channel, msg.ref, msg.to, msg.sdp);
      case 'call.hangup':
        return deps.switchboard.hangup(channel, msg.callId);
      case 'call.accept':
        return deps.switchboard.accept(channel, msg.callId, msg.sdp);
      case 'call.reject':
        return deps.switchboard.reject(channel, msg.callId);
      case 'call.dtmf':
        return deps.switchboard.dtmf(channel, msg.callId, msg.digits);
      case 'recording.pause':
      case 'recording.resume':
        return deps.switchboard.pauseRecording(channel, msg.callId, msg.type === 'recording.pause');
    }
  }

  return {
    handleUpgrade(req, socket, head) {
      const path = (req.url ?? '').split('?')[0];
      if (path !== SIGNAL_PATH) return false;
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return true;
    },
    get connections() {
      return wss.clients.size;
    },
    async close() {
      clearInterval(heartbeat);
      for (const ws of wss.clients) ws.close(CLOSE_SHUTDOWN, 'server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function channelFor(
  session: Session,
  send: (msg: ServerMessage) => void,
  authorised: (sessionId: string) => Promise<boolean>,
  isClosed: () => boolean,
): DialerChannel {
  return {
    userId: session.userId,
    get closed() {
      return isClosed();
    },
    authorised: () => authorised(session.sessionId),
    created: (ref, callId) => send({ type: 'call.created', ref, callId }),
    ringing: (callId) => send({ type: 'call.ringing', callId }),
    answered: (callId, sdp) => send({ type: 'call.answered', callId, sdp }),
    progress: (callId, sdp) => send({ type: 'call.progress', callId, sdp }),
    held: (callId) => send({ type: 'call.held', callId }),
    resumed: (callId) => send({ type: 'call.resumed', callId }),
    incoming: (callId, from, sdp) => send({ type: 'call.incoming', callId, from, sdp }),
    ended: (callId, reason) => send({ type: 'call.ended', callId, reason }),
    error: (code, message, ref) => send(errorMessage(code, message, ref)),
    recordingStarted: (callId) => send({ type: 'recording.started', callId }),
    recordingStopped: (callId, reason) => send({ type: 'recording.stopped', callId, reason }),
    recordingPaused: (callId) => send({ type: 'recording.paused', callId }),
    recordingResumed: (callId) => send({ type: 'recording.resumed', callId }),
    earningsUpdated: (callId, amountMicros, state) => send({ type: 'earnings.updated', callId, amountMicros, state }),
  };
}

function errorMessage(code: string, message: string, ref?: string): ServerMessage {
  return { type: 'error', code, message, ...(ref !== undefined && { ref }) };
}

/** Token bucket of one second's worth; a client far over the limit is disconnected. */
function rateLimiter(perSecond: number): () => 'ok' | 'drop' | 'close' {
  let tokens = perSecond;
  let last = Date.now();
  let dropped = 0;
  return () => {
    const now = Date.now();
    tokens = Math.min(perSecond, tokens + ((now - last) / 1000) * perSecond);
    last = now;
    if (tokens >= 1) {
      tokens -= 1;
      dropped = 0;
      return 'ok';
    }
    dropped++;
    return dropped > perSecond * 5 ? 'close' : 'drop';
  };
}
