/** Shared set-up for the SIP tests: an endpoint on a free port and listeners that record events. */
import { after } from 'node:test';
import type { InboundLeg, InboundListener, InboundOffer, OutboundListener } from '../../src/calls/ports.js';
import { createLogger, type Logger } from '../../src/log.js';
import { createSipEndpoint, type SipEndpoint, type SipOptions } from '../../src/sip/endpoint.js';
import { freePort, startSipp, type SippResult } from '../helpers/sipp.js';

export const log = createLogger(process.env.LOG_LEVEL ?? 'silent');

/** The SDP our side offers (outbound calls) and answers with (inbound calls) in these tests. */
export const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
export const ANSWER = 'v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
export const CALL = { to: '+15550001111', from: '+15550002222', sdp: SDP };

/** Teardowns a test file pushes as it goes; all run, newest first, after the file's tests. */
export function cleanupsAfterAll(): (() => unknown)[] {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return cleanups;
}

export interface Recorder<E> {
  events: E[];
  /** Resolves with the first event matching, waiting up to `ms`. */
  waitFor(pred: (e: E) => boolean, ms?: number): Promise<E>;
}

function recorder<E>(): Recorder<E> & { push(e: E): void } {
  const events: E[] = [];
  const waiters: { pred: (e: E) => boolean; res: (e: E) => void }[] = [];
  return {
    events,
    push(e: E) {
      events.push(e);
      for (const w of [...waiters]) if (w.pred(e)) { waiters.splice(waiters.indexOf(w), 1); w.res(e); }
    },
    waitFor(pred, ms = 20_000) {
      const hit = events.find(pred);
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise<E>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out waiting; events so far: ${JSON.stringify(events)}`)), ms);
        waiters.push({ pred, res: (e) => { clearTimeout(t); res(e); } });
      });
    },
  };
}

export type OutEvent =
  | { type: 'ringing' }
  | { type: 'early'; sdp: string }
  | { type: 'answered'; sdp: string }
  | { type: 'failed'; status: number }
  | { type: 'ended'; reason: string }
  | { type: 'offer'; sdp: string };

/** What a leg's mid-call offer is answered with in these tests: the offer itself, as if the media side agreed. */
export const echoAnswer = (sdp: string): Promise<string> => Promise.resolve(sdp);

export function outboundRecorder(): OutboundListener & Recorder<OutEvent> {
  const r = recorder<OutEvent>();
  return {
    events: r.events,
    waitFor: r.waitFor,
    ringing: () => r.push({ type: 'ringing' }),
    answered: (sdp) => r.push({ type: 'answered', sdp }),
    earlyMedia: (sdp) => r.push({ type: 'early', sdp }),
    failed: (_reason, status) => r.push({ type: 'failed', status }),
    ended: (reason) => r.push({ type: 'ended', reason }),
    remoteOffer: (sdp) => {
      r.push({ type: 'offer', sdp });
      return echoAnswer(sdp);
    },
  };
}

export type InEvent =
  | { type: 'offer'; offer: InboundOffer; leg: InboundLeg }
  | { type: 'cancelled'; callId: string }
  | { type: 'confirmed'; callId: string }
  | { type: 'unconfirmed'; callId: string }
  | { type: 'ended'; callId: string; reason: string }
  | { type: 'reoffer'; callId: string; sdp: string };

/** An incoming-call handler that records offers and listener events; `behaviour` decides what to do with the leg. */
export function inboundRecorder(behaviour: (offer: InboundOffer, leg: InboundLeg) => void): {
  handler: (offer: InboundOffer, leg: InboundLeg) => InboundListener;
} & Recorder<InEvent> {
  const r = recorder<InEvent>();
  return {
    events: r.events,
    waitFor: r.waitFor,
    handler: (offer, leg) => {
      r.push({ type: 'offer', offer, leg });
      const listener: InboundListener = {
        cancelled: () => r.push({ type: 'cancelled', callId: offer.sipCallId }),
        confirmed: () => r.push({ type: 'confirmed', callId: offer.sipCallId }),
        unconfirmed: () => r.push({ type: 'unconfirmed', callId: offer.sipCallId }),
        ended: (reason) => r.push({ type: 'ended', callId: offer.sipCallId, reason }),
        remoteOffer: (sdp) => {
          r.push({ type: 'reoffer', callId: offer.sipCallId, sdp });
          return echoAnswer(sdp);
        },
      };
      behaviour(offer, leg);
      return listener;
    },
  };
}

export interface TestEndpoint {
  ep: SipEndpoint;
  port: number;
  sippPort: number;
}

export async function startEndpoint(
  onIncoming: Parameters<typeof createSipEndpoint>[2],
  opts: {
    transport?: 'udp' | 'tcp';
    allowedSources?: string[];
    /** Default 127.0.0.1, where sipp listens (and so always an allowed source). */
    trunkHost?: string;
    inviteTimeoutMs?: number;
    username?: string;
    password?: string;
    tcpLimits?: SipOptions['tcpLimits'];
    /** Instead of the shared silent logger (tests that count log lines). */
    log?: Logger;
    sessionTimers?: SipOptions['sessionTimers'];
  } = {},
): Promise<TestEndpoint> {
  const port = await freePort();
  let sippPort = await freePort();
  while (sippPort === port) sippPort = await freePort();
  const options: SipOptions = {
    listen: { address: '127.0.0.1', port, udp: true, tcp: true },
    trunk: {
      host: opts.trunkHost ?? '127.0.0.1',
      port: sippPort,
      transport: opts.transport ?? 'udp',
      username: opts.username ?? 'monologue',
      password: opts.password ?? 'secret',
      domain: 'monologue.test',
      allowedSources: opts.allowedSources ?? ['127.0.0.1'],
    },
    inviteTimeoutMs: opts.inviteTimeoutMs ?? 10_000,
    ...(opts.tcpLimits && { tcpLimits: opts.tcpLimits }),
    ...(opts.sessionTimers && { sessionTimers: opts.sessionTimers }),
  };
  const ep = await createSipEndpoint(options, opts.log ?? log, onIncoming);
  return { ep, port, sippPort };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * An outbound call from a fresh endpoint to a sipp UAS `scenario`, hung up as soon as it is answered.
 * Resolves with sipp's result and the listener's events; endpoint and sipp go on `cleanups`.
 */
export async function dialAndHangUp(
  cleanups: (() => unknown)[],
  scenario: string,
  opts: { keys?: Record<string, string>; endpoint?: Parameters<typeof startEndpoint>[1] } = {},
): Promise<{ t: TestEndpoint; result: SippResult; events: OutEvent[] }> {
  const t = await startEndpoint(() => {
    throw new Error('no inbound call expected');
  }, opts.endpoint);
  cleanups.push(() => t.ep.close());
  const run = startSipp({ scenario, port: t.sippPort, remote: `127.0.0.1:${t.port}`, keys: opts.keys });
  cleanups.push(() => run.kill());
  await run.ready;
  const l = outboundRecorder();
  const leg = t.ep.trunk.dial(CALL, l);
  await l.waitFor((e) => e.type === 'answered');
  leg.end();
  return { t, result: await run.done, events: l.events };
}
