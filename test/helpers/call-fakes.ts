/**
 * Hand-driven fakes of the call domain's own ports (src/calls/ports.ts), for Switchboard and Call unit
 * tests: every promise a fake hands out is settled by the test, so each race runs in the order the test
 * chooses. These fake our interfaces, never rtpengine, SIP or the database themselves (e2e tests use those).
 */
import type { User, Users } from '../../src/accounts/users.js';
import type { CallRecord, CallRecordPatch, CallRecords, Direction, OutboundTally } from '../../src/calls/records.js';
import type {
  DialerChannel,
  EndReason,
  InboundLeg,
  MediaRelay,
  MediaSession,
  OutboundLeg,
  OutboundListener,
  OutboundRequest,
  Trunk,
} from '../../src/calls/ports.js';
import { statusForReason } from '../../src/sip/status.js';

/** A promise with its settlers outside, plus whether anyone is waiting on it yet. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Let every already-queued continuation run (promise jobs and the timers queue's current turn). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** A queue of pending requests of one kind: the test awaits the next one and settles it. */
class Pending<T> {
  private readonly items: Deferred<T>[] = [];
  private readonly waiters: Array<(d: Deferred<T>) => void> = [];
  count = 0;

  push(): Promise<T> {
    const d = deferred<T>();
    this.count++;
    const w = this.waiters.shift();
    if (w) w(d);
    else this.items.push(d);
    return d.promise;
  }

  /** The next request made (already or later). */
  next(): Promise<Deferred<T>> {
    const d = this.items.shift();
    if (d) return Promise.resolve(d);
    return new Promise((r) => this.waiters.push(r));
  }
}

export class FakeSession implements MediaSession {
  readonly dialerOffers = new Pending<string>();
  readonly trunkAnswers = new Pending<string>();
  readonly trunkOffers = new Pending<string>();
  readonly dialerAnswers = new Pending<string>();
  forks = 0;
  closes = 0;
  constructor(readonly callId: string) {}
  dialerOffer(): Promise<string> {
    return this.dialerOffers.push();
  }
  trunkAnswer(): Promise<string> {
    return this.trunkAnswers.push();
  }
  trunkOffer(): Promise<string> {
    return this.trunkOffers.push();
  }
  dialerAnswer(): Promise<string> {
    return this.dialerAnswers.push();
  }
  forkDialerLeg(): Promise<void> {
    this.forks++;
    return Promise.resolve();
  }
  unforkDialerLeg(): Promise<void> {
    return Promise.resolve();
  }
  announceToTrunk(): Promise<void> {
    return Promise.resolve();
  }
  trunkReoffer(): Promise<string> {
    return Promise.reject(new Error('not in these tests'));
  }
  sendDtmf(): Promise<void> {
    return Promise.resolve();
  }
  onLost(): void {}
  close(): Promise<void> {
    this.closes++;
    return Promise.resolve();
  }
}

export class FakeMedia implements MediaRelay {
  readonly sessions: FakeSession[] = [];
  open(callId: string): FakeSession {
    const s = new FakeSession(callId);
    this.sessions.push(s);
    return s;
  }
  ready(): Promise<boolean> {
    return Promise.resolve(true);
  }
  session(callId: string): FakeSession {
    const s = this.sessions.find((x) => x.callId === callId);
    if (!s) throw new Error(`no media session for ${callId}`);
    return s;
  }
}

export interface DialedCall {
  request: OutboundRequest;
  listener: OutboundListener;
  ends: number;
}

export class FakeTrunk implements Trunk {
  readonly dialed: DialedCall[] = [];
  dial(request: OutboundRequest, listener: OutboundListener): OutboundLeg {
    const d: DialedCall = { request, listener, ends: 0 };
    this.dialed.push(d);
    return { sipCallId: `sip-${this.dialed.length}`, end: () => void d.ends++ };
  }
}

/** What the SIP layer would do, minus SIP: one final answer, idempotent, 487 after a CANCEL. */
export class FakeInboundLeg implements InboundLeg {
  readonly log: string[] = [];
  finalStatus: number | undefined;
  private done = false;
  private answeredWith: string | undefined;
  ringing(): void {
    if (!this.done && !this.answeredWith) this.log.push('ringing');
  }
  answer(sdp: string): void {
    if (this.done || this.answeredWith) return;
    this.answeredWith = sdp;
    this.log.push('answer');
  }
  reject(reason: EndReason): void {
    if (this.done) return;
    this.done = true;
    if (this.answeredWith) return void this.log.push('bye');
    this.finalStatus = statusForReason(reason);
    this.log.push(`reject:${this.finalStatus}`);
  }
  end(): void {
    if (this.done) return;
    this.done = true;
    this.log.push(this.answeredWith ? 'bye' : 'reject:480');
  }
  /** The trunk's CANCEL: the SIP layer answers 487 itself before it tells the listener. */
  cancelledByTrunk(): void {
    this.done = true;
    this.finalStatus = 487;
    this.log.push('487');
  }
}

export type Sent = { type: string; callId?: string; ref?: string; code?: string; reason?: string; sdp?: string };

export class FakeChannel implements DialerChannel {
  readonly sent: Sent[] = [];
  closed = false;
  authorisedResult: boolean | Deferred<boolean> = true;
  constructor(readonly userId: string) {}
  authorised(): Promise<boolean> {
    const r = this.authorisedResult;
    return typeof r === 'boolean' ? Promise.resolve(r) : r.promise;
  }
  created(ref: string, callId: string): void {
    this.sent.push({ type: 'created', ref, callId });
  }
  ringing(callId: string): void {
    this.sent.push({ type: 'ringing', callId });
  }
  answered(callId: string, sdp: string): void {
    this.sent.push({ type: 'answered', callId, sdp });
  }
  progress(callId: string, sdp: string): void {
    this.sent.push({ type: 'progress', callId, sdp });
  }
  held(callId: string): void {
    this.sent.push({ type: 'held', callId });
  }
  resumed(callId: string): void {
    this.sent.push({ type: 'resumed', callId });
  }
  incoming(callId: string, _from: string, sdp: string): void {
    this.sent.push({ type: 'incoming', callId, sdp });
  }
  ended(callId: string, reason: EndReason): void {
    this.sent.push({ type: 'ended', callId, reason });
  }
  error(code: string, _message: string, ref?: string): void {
    this.sent.push({ type: 'error', code, ref });
  }
  recordingStarted(callId: string): void {
    this.sent.push({ type: 'recording.started', callId });
  }
  recordingStopped(callId: string, reason: string): void {
    this.sent.push({ type: 'recording.stopped', callId, reason });
  }
  recordingPaused(callId: string): void {
    this.sent.push({ type: 'recording.paused', callId });
  }
  recordingResumed(callId: string): void {
    this.sent.push({ type: 'recording.resumed', callId });
  }
  earningsUpdated(callId: string): void {
    this.sent.push({ type: 'earnings', callId });
  }
  types(): string[] {
    return this.sent.map((m) => m.type);
  }
  of(type: string): Sent[] {
    return this.sent.filter((m) => m.type === type);
  }
}

/** Users whose lookups the test may hold: set `hold` and settle the next lookup by hand. */
export class FakeUsers implements Users {
  readonly all: User[] = [];
  readonly lookups = new Pending<User | undefined>();
  hold = false;
  add(phone: string, enrolled = true): User {
    const u: User = { id: `user-${this.all.length + 1}`, phone, enrolled, createdAt: 0, consent: { version: 'v1', at: 0 } };
    this.all.push(u);
    return u;
  }
  create(): Promise<User> {
    return Promise.reject(new Error('not in these tests'));
  }
  setConsent(): Promise<User> {
    return Promise.reject(new Error('not in these tests'));
  }
  byId(id: string): Promise<User | undefined> {
    return this.hold ? this.lookups.push() : Promise.resolve(this.all.find((u) => u.id === id));
  }
  byPhone(e164: string): Promise<User | undefined> {
    return this.hold ? this.lookups.push() : Promise.resolve(this.all.find((u) => u.phone === e164));
  }
}

/** In-memory call records that also count every write, to show a call ended exactly once. */
export class FakeRecords implements CallRecords {
  readonly rows = new Map<string, CallRecord>();
  readonly patches: Array<{ id: string; patch: CallRecordPatch }> = [];
  create(input: { id: string; userId: string; direction: Direction; counterpart: string; createdAt: number }): Promise<void> {
    this.rows.set(input.id, {
      ...input,
      sipCallId: null,
      ringingAt: null,
      answeredAt: null,
      endedAt: null,
      endReason: null,
      sipStatus: null,
      recordingNote: null,
    });
    return Promise.resolve();
  }
  update(id: string, patch: CallRecordPatch): Promise<void> {
    this.patches.push({ id, patch });
    const row = this.rows.get(id);
    if (!row) return Promise.reject(new Error(`update of a call with no record: ${id}`));
    Object.assign(row, patch);
    return Promise.resolve();
  }
  get(userId: string, id: string): Promise<CallRecord | undefined> {
    const r = this.rows.get(id);
    return Promise.resolve(r && r.userId === userId ? r : undefined);
  }
  outboundTally(userId: string, since: number, { now, maxCallMs, except = [] }: { now: number; maxCallMs: number; except?: readonly string[] }): Promise<OutboundTally> {
    const rows = [...this.rows.values()].filter((r) => r.userId === userId && r.direction === 'outbound' && r.createdAt >= since && !except.includes(r.id));
    let answeredMs = 0;
    for (const r of rows) {
      if (r.answeredAt === null) continue;
      const end = r.endedAt ?? Math.min(now, r.answeredAt + maxCallMs);
      answeredMs += Math.max(0, end - r.answeredAt);
    }
    return Promise.resolve({ attempts: rows.length, answeredMs });
  }
  endings(id: string): number {
    return this.patches.filter((p) => p.id === id && p.patch.endReason !== undefined).length;
  }
}
