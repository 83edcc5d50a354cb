/**
 * `cps`: call setup and teardown as fast as asked, no media: each call is `call.start` (one gathered libwebrtc
 * offer, reused for every call: no media flows, and rtpengine treats each call-id on its own), answered by
 * the trunk at once, hung up as soon as `call.answered` arrives, done at `call.ended`.
 * Closed loop (default): K sockets each keep one call in flight. Open loop (`--rate R`): a call starts every
 * 1/R s whatever is still in flight, spread over the K sockets.
 */
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/signaling/messages.js';
import type { DialerAccount } from './deployment.js';
import { mapLimit, sleep, type Harness } from './harness.js';
import { startProgress } from './progress.js';
import { cpuReport, reportHead, type Report } from './report.js';
import { percentiles, Tally } from './stats.js';

export interface CpsOptions {
  sockets: number;
  /** Open loop at this many calls/s; undefined: closed loop. */
  rate: number | undefined;
  durationS: number;
  /** Stop after this many calls even if time is left. */
  maxCalls: number | undefined;
  to: string;
}

const ATTEMPT_TIMEOUT_MS = 15_000;

type Outcome = { ok: true; setupMs: number } | { ok: false; reason: string };

export async function runCps(h: Harness, o: CpsOptions): Promise<Report> {
  const startedAt = new Date();
  const accounts = await h.deployment.accounts(o.sockets, false);
  const sdp = await gatheredOffer();
  const sockets = await mapLimit(accounts, 8, (a) => SetupSocket.open(h.deployment.signalUrl, a));
  const failed = new Tally();
  const setups: number[] = [];
  let attempted = 0;
  let inFlight = 0;
  const limit = o.maxCalls ?? Number.POSITIVE_INFINITY;
  const serviceRssStart = await h.deployment.serviceRss();
  let t0 = performance.now();
  const progress = startProgress(o.rate ? `cps ${o.rate}/s` : `cps x${o.sockets}`, async () => ({
    done: Math.round((performance.now() - t0) / 1000),
    total: o.durationS,
    live: inFlight,
    answered: setups.length,
    failed: failed.total,
    setupP95: percentiles(setups.slice(-500)).p95,
    ...(await h.liveCpu()),
  }));
  const attempt = async (socket: SetupSocket): Promise<void> => {
    attempted++;
    inFlight++;
    const r = await socket.call(o.to, sdp);
    inFlight--;
    if (r.ok) setups.push(r.setupMs);
    else failed.add(r.reason);
  };

  const idle = await h.idleCpu();
  const meter = h.cpuMeter();
  await meter.begin();
  t0 = performance.now();
  const deadline = t0 + o.durationS * 1000;
  const going = (): boolean => !h.abort.aborted && performance.now() < deadline && attempted < limit;
  if (o.rate === undefined) {
    await Promise.all(sockets.map(async (s) => {
      while (going()) await attempt(s);
    }));
  } else {
    const pending: Array<Promise<void>> = [];
    for (let i = 0; going(); i++) {
      await sleep(t0 + (i * 1000) / o.rate - performance.now(), h.abort);
      if (!going()) break;
      pending.push(attempt(sockets[i % sockets.length]!));
    }
    await Promise.all(pending);
  }
  const window = await meter.end();
  progress.stop();
  for (const s of sockets) s.close();
  const answered = setups.length;
  return {
    ...reportHead(h, 'cps', startedAt, { ...o, loop: o.rate === undefined ? 'closed' : 'open', achievedCallsPerS: Math.round((answered / (window.wallMs / 1000)) * 10) / 10 }),
    calls: { attempted, answered, recorded: 0, failed: failed.toJSON(), failedTotal: failed.total },
    setupMs: percentiles(setups),
    setupInboundMs: null,
    cpu: cpuReport('run', window, { liveCalls: null, setups: answered }, idle),
    rss: { serviceStartBytes: serviceRssStart ?? null, serviceEndBytes: (await h.deployment.serviceRss()) ?? null },
    recorder: null,
    audio: null,
    metrics: (await h.metrics()) !== undefined,
  };
}

/** A complete offer from a real libwebrtc peer (ICE gathered); the peer is closed at once. */
async function gatheredOffer(): Promise<string> {
  const { webrtcOffer } = await import('../../test/helpers/signal-client.js');
  return webrtcOffer();
}

interface Attempt {
  sentAt: number;
  callId?: string;
  setupMs?: number;
  timer: NodeJS.Timeout;
  settle(o: Outcome): void;
}

/** One authenticated /v1/signal socket that runs calls by ref and call id, several at once if asked. */
class SetupSocket {
  private readonly byRef = new Map<string, Attempt>();
  private readonly byCall = new Map<string, Attempt>();
  private refs = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('close', () => {
      for (const a of [...this.byRef.values(), ...this.byCall.values()]) a.settle({ ok: false, reason: 'socket-closed' });
    });
    ws.on('error', () => undefined); // shows as the close above
  }

  static async open(url: string, account: DialerAccount): Promise<SetupSocket> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "ready" from ${url} within 10 s`)), 10_000);
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token: account.token })));
      ws.on('message', function first(data) {
        const m = JSON.parse(data.toString()) as ServerMessage;
        if (m.type !== 'ready' && m.type !== 'error') return;
        clearTimeout(timer);
        ws.off('message', first);
        if (m.type === 'ready') resolve();
        else reject(new Error(`auth refused: ${m.code} ${m.message}`));
      });
    });
    return new SetupSocket(ws);
  }

  call(to: string, sdp: string): Promise<Outcome> {
    const ref = `c${++this.refs}`;
    return new Promise<Outcome>((resolve) => {
      const attempt: Attempt = {
        sentAt: performance.now(),
        timer: setTimeout(() => {
          if (attempt.callId && this.ws.readyState === WebSocket.OPEN) this.send({ type: 'call.hangup', callId: attempt.callId });
          attempt.settle({ ok: false, reason: attempt.setupMs === undefined ? 'timeout:answer' : 'timeout:ended' });
        }, ATTEMPT_TIMEOUT_MS),
        settle: (o) => {
          clearTimeout(attempt.timer);
          this.byRef.delete(ref);
          if (attempt.callId) this.byCall.delete(attempt.callId);
          resolve(o);
        },
      };
      this.byRef.set(ref, attempt);
      if (this.ws.readyState !== WebSocket.OPEN) return attempt.settle({ ok: false, reason: 'socket-closed' });
      this.send({ type: 'call.start', ref, to, sdp });
    });
  }

  close(): void {
    this.ws.close(1000);
  }

  private send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg));
  }

  private onMessage(text: string): void {
    let m: ServerMessage;
    try {
      m = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    if (m.type === 'call.created') {
      const a = this.byRef.get(m.ref);
      if (!a) return;
      a.callId = m.callId;
      this.byCall.set(m.callId, a);
    } else if (m.type === 'call.answered') {
      const a = this.byCall.get(m.callId);
      if (!a || a.setupMs !== undefined) return;
      a.setupMs = performance.now() - a.sentAt;
      this.send({ type: 'call.hangup', callId: m.callId });
    } else if (m.type === 'call.ended') {
      const a = this.byCall.get(m.callId);
      if (!a) return;
      a.settle(a.setupMs === undefined ? { ok: false, reason: m.reason } : { ok: true, setupMs: a.setupMs });
    } else if (m.type === 'error' && m.ref) {
      this.byRef.get(m.ref)?.settle({ ok: false, reason: m.code });
    }
  }
}
