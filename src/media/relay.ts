/**
 * MediaRelay over rtpengine (DESIGN §2, §8). One rtpengine call per Monologue call (call-id = our call id),
 * with two monologues: the dialer's WebRTC leg (Opus, ICE, DTLS-SRTP, rtcp-mux, BUNDLE) and the trunk's
 * plain-RTP leg (RTP/AVP, the configured G.711/Opus list, telephone-event kept). rtpengine transcodes
 * between them when the codecs differ.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { DTMF_DIGITS, DTMF_TIMING, type MediaRelay, type MediaSession } from '../calls/ports.js';
import { MonologueError, errorMessage } from '../errors.js';
import type { NgClient, NgDict } from './ng-client.js';
import { addBundle, answerForTrunk, answerDirection, checkTrunkSrtp, codecNames, sdpForTrunk, validateSdp, withDirection, withSettledDtlsRole, type TrunkCodec, type TrunkSrtp } from './sdp.js';
import type { SessionDescription } from 'sdp-transform';
import { PUBLIC_INTERFACE, RECORDER_INTERFACE } from './interfaces.js';
import type { MediaLoss, MediaWatch } from './liveness.js';

export type { TrunkCodec, TrunkSrtp } from './sdp.js';


export interface RtpengineRelayOptions {
  ng: NgClient;
  /** Codecs offered to / accepted from the trunk, in preference order. At least one. */
  trunkCodecs: readonly TrunkCodec[];
  /** Default `off`. */
  trunkSrtp?: TrunkSrtp;
  log: Logger;
  /** Watches answered sessions for dead media (src/media/liveness.ts). Without it, nothing times out. */
  watch?: MediaWatch;
  /**
   * Whether rtpengine is up as far as its supervisor knows. While false, new steps fail at once with
   * MEDIA_UNAVAILABLE instead of waiting out the ng timeout.
   */
  available?: () => boolean;
}

export interface RtpengineRelay extends MediaRelay {
  open(callId: string): RtpengineSession;
  /** Call-ids rtpengine holds now (ng `list`): for tests and ops. */
  listCalls(): Promise<string[]>;
  /**
   * rtpengine is gone (it exited, or restarted and forgot its calls): every session that may hold media
   * there fires its `onLost` with `reason`, once. Returns how many did.
   */
  loseAll(reason: MediaLoss): number;
  /** Sessions that may hold media in rtpengine now. */
  readonly live: number;
}

/** Which way the call was set up; fixed by the first offer. */
export type MediaDirection = 'outbound' | 'inbound';

export interface RtpengineSession extends MediaSession {
  readonly callId: string;
  readonly direction: MediaDirection | undefined;
  readonly closed: boolean;
}

export function createRtpengineRelay(opts: RtpengineRelayOptions): RtpengineRelay {
  if (opts.trunkCodecs.length === 0) throw new MonologueError('CONFIG', 'trunkCodecs must list at least one codec');
  const ng = opts.ng;
  const log = opts.log.child({ mod: 'media' });
  const srtp = opts.trunkSrtp ?? 'off';
  const flags = ngFlags(opts.trunkCodecs, srtp);
  const live = new Set<Session>();
  const env: SessionEnv = { ng, flags, trunkCodecs: opts.trunkCodecs, srtp, watch: opts.watch, available: opts.available, live };
  return {
    open(callId: string): RtpengineSession {
      if (!callId) throw new MonologueError('MEDIA_STATE', 'a media session needs a call id');
      return new Session(callId, env, log.child({ callId }));
    },
    loseAll(reason: MediaLoss): number {
      const lost = [...live];
      for (const session of lost) session.lose(reason);
      return lost.length;
    },
    get live(): number {
      return live.size;
    },
    async ready(): Promise<boolean> {
      if (opts.available && !opts.available()) return false;
      try {
        await ng.ping();
        return true;
      } catch {
        return false;
      }
    },
    listCalls(): Promise<string[]> {
      return ng.list();
    },
  };
}

// ---------------------------------------------------------------- ng flags (DESIGN §8)

interface NgFlags {
  /** Outbound: the browser's offer, rewritten for the trunk. */
  dialerOffer: NgDict;
  /** Outbound: the trunk's answer, rewritten for the browser. */
  trunkAnswer: NgDict;
  /** Inbound: the trunk's offer, rewritten for the browser. */
  trunkOffer: NgDict;
  /** Inbound: the browser's answer, rewritten for the trunk. */
  dialerAnswer: NgDict;
  /** The recorder's subscription to the dialer leg: plain RTP, the leg's own Opus, on the internal interface. */
  fork: NgDict;
  /** The recorder's answer to that subscription. */
  forkAnswer: NgDict;
  /** Any call, mid-call: the trunk's new offer, rewritten for the dialer leg (whose result is not sent anywhere). */
  trunkReoffer: NgDict;
}

/** rtpengine's flag that drops packets not from the leg's signalled endpoint. */
const STRICT_SOURCE = 'strict source';
/** rtpengine's flag that moves a leg's endpoint to where its packets come from (see ngFlags). */
const MEDIA_HANDOVER = 'media handover';
/**
 * rtpengine's flag that routes a call's audio through its codec handlers, which `play DTMF` needs (see sendDtmf).
 * In both offer and answer of each direction. It makes even same-codec legs transcode (CPU, DESIGN §8).
 */
const INJECT_DTMF = 'inject DTMF';
/** Level of generated DTMF, dBm0 below full scale (RFC 4733 volume field); within what carriers expect. */
const DTMF_VOLUME_DBM0 = 10;
/** Time one digit takes on the wire: its tone and the gap after it (rtpengine keeps exactly this, measured). */
const DTMF_SLOT_MS = DTMF_TIMING.toneMs + DTMF_TIMING.gapMs;
/** Digits a call may have waiting to be played: one full `call.dtmf` message. */
const DTMF_MAX_BACKLOG_DIGITS = 32;
const DTMF_MAX_BACKLOG_MS = DTMF_MAX_BACKLOG_DIGITS * DTMF_SLOT_MS;
/** Up to a frame before the first tone starts and a frame of rounding on the last one. */
const DTMF_FRAME_SLACK_MS = 40;
const DTMF_BACKLOG_LEEWAY_MS = 200;

/**
 * SDES suites we never offer the trunk: NULL ciphers authenticate but do not encrypt (a trunk choosing
 * one would get cleartext audio), and F8 is unknown to most SBCs.
 */
const WEAK_SDES = ['no-NULL_HMAC_SHA1_80', 'no-NULL_HMAC_SHA1_32', 'no-F8_128_HMAC_SHA1_80', 'no-F8_128_HMAC_SHA1_32'];

function ngFlags(trunkCodecs: readonly TrunkCodec[], srtp: TrunkSrtp): NgFlags {
  const opusToTrunk = trunkCodecs.includes('opus');
  const transcodeTo = trunkCodecs.filter((c) => c !== 'opus');
  const toPlainRtp: NgDict = {
    ICE: 'remove',
    DTLS: 'off',
    SDES: ['off'],
    'transport-protocol': 'RTP/AVP',
    'rtcp-mux': ['demux'],
  };
  // The trunk leg: plain RTP, SDES-SRTP (RTP/SAVP), or opportunistic SRTP (RTP/AVP with a=crypto).
  const toTrunk: NgDict =
    srtp === 'off'
      ? toPlainRtp
      : { ...toPlainRtp, SDES: WEAK_SDES, 'transport-protocol': srtp === 'sdes' ? 'RTP/SAVP' : 'RTP/AVP' };
  const trunkExtraFlags = srtp === 'sdes-optional' ? ['OSRTP-offer'] : [];
  // Answering the trunk's offer: rtpengine answers in the trunk's own profile (SAVP with its own keys for
  // an SRTP offer); forcing RTP/AVP there would strip the SRTP the trunk asked for.
  const answerToTrunk: NgDict = srtp === 'off' ? toPlainRtp : { ICE: 'remove', DTLS: 'off', 'rtcp-mux': ['demux'] };
  // Every leg takes media only from its signalled peer (DESIGN §4.8); rtpengine runs with
  // --endpoint-learning=off, so that peer is the SDP address, or the pair ICE verified.
  const bound = (...more: string[]): string[] => [STRICT_SOURCE, ...more];
  // The WebRTC leg alone also follows its peer to another address: a browser may send from another
  // ICE-checked pair than the one rtpengine picked (Chromium with several host candidates does, and any
  // network change does), and strict source alone would then drop the user's voice. It is safe there only:
  // rtpengine authenticates each packet as SRTP under the DTLS keys before it looks at the source, so
  // only the DTLS peer can move the leg; plain RTP from anyone else is dropped before that check.
  const boundToDtlsPeer = (...more: string[]): string[] => bound(MEDIA_HANDOVER, ...more);
  const callLegs = { direction: [PUBLIC_INTERFACE, PUBLIC_INTERFACE] };
  return {
    dialerOffer: {
      ...toTrunk,
      ...callLegs,
      flags: boundToDtlsPeer('strip-extmap', INJECT_DTMF, ...trunkExtraFlags),
      replace: ['origin', 'session-connection'],
      'DTLS-reverse': 'passive',
      codec: {
        strip: ['full'],
        except: ['opus', 'telephone-event'],
        ...(opusToTrunk ? {} : { mask: ['opus'] }),
        ...(transcodeTo.length > 0 ? { transcode: [...transcodeTo] } : {}),
      },
    },
    trunkAnswer: {
      ICE: 'force',
      'rtcp-mux': ['require'],
      flags: bound('full-rtcp-attribute', INJECT_DTMF),
    },
    trunkOffer: {
      ...callLegs,
      ICE: 'force',
      'transport-protocol': 'UDP/TLS/RTP/SAVPF',
      'rtcp-mux': ['offer', 'require'],
      SDES: ['off'],
      flags: bound('generate-mid', 'full-rtcp-attribute', INJECT_DTMF, ...(srtp === 'sdes-optional' ? ['OSRTP-accept'] : [])),
      replace: ['origin', 'session-connection'],
      codec: { mask: ['all'], transcode: ['opus', 'telephone-event'] },
    },
    dialerAnswer: {
      ...answerToTrunk,
      flags: boundToDtlsPeer('strip-extmap', INJECT_DTMF),
      replace: ['origin', 'session-connection'],
    },
    // The dialer leg is already up (ICE, DTLS-SRTP, Opus): the re-offer keeps its WebRTC profile, so
    // rtpengine changes only the trunk side (address, codec, direction) and keeps transcoding to Opus.
    // No `mask`: masking the trunk's codecs on a live call rebuilt the dialer leg's codec handlers and
    // the recorder's subscription stopped receiving (measured: 3 packets in 1.5 s after a sendrecv re-offer).
    trunkReoffer: {
      ...callLegs,
      ICE: 'force',
      'transport-protocol': 'UDP/TLS/RTP/SAVPF',
      'rtcp-mux': ['offer', 'require'],
      SDES: ['off'],
      flags: bound('full-rtcp-attribute', INJECT_DTMF),
      replace: ['origin', 'session-connection'],
      codec: { transcode: ['opus', 'telephone-event'] },
    },
    fork: { ...toPlainRtp, interface: RECORDER_INTERFACE, flags: bound('strip-extmap') },
    forkAnswer: { flags: bound('allow transcoding') },
  };
}

// ---------------------------------------------------------------- session

/**
 * rtpengine refuses `play DTMF` while the dialer has sent no RTP yet ("No SSRC context…", "No RTP payload type…"):
 * the user pressed a key before the audio started. That is a wait-and-retry, not a failure of the call.
 */
function dtmfError(err: unknown): unknown {
  if (err instanceof MonologueError && err.code === 'MEDIA_REJECTED' && /SSRC|payload type|codec handler|stream/i.test(err.message)) {
    return new MonologueError('DTMF_NOT_READY', 'the call has no audio from the dialer yet; try the digits again in a moment', { cause: err });
  }
  return err;
}

type Step = 'dialerOffer' | 'trunkAnswer' | 'trunkOffer' | 'dialerAnswer';

/** What every session of one relay shares. */
interface SessionEnv {
  ng: NgClient;
  flags: NgFlags;
  trunkCodecs: readonly TrunkCodec[];
  srtp: TrunkSrtp;
  watch: MediaWatch | undefined;
  available: (() => boolean) | undefined;
  /** Sessions that may hold media in rtpengine: the ones `loseAll` reaches. */
  live: Set<Session>;
}

/**
 * Which step may follow which: the first offer fixes the direction. `trunkAnswer` may repeat: early media
 * (183) answers first, the 200 answers again with what may be another address or codec.
 */
const NEXT: Record<Step, { after: readonly (Step | undefined)[]; direction: MediaDirection }> = {
  dialerOffer: { after: [undefined], direction: 'outbound' },
  trunkAnswer: { after: ['dialerOffer', 'trunkAnswer'], direction: 'outbound' },
  trunkOffer: { after: [undefined], direction: 'inbound' },
  dialerAnswer: { after: ['trunkOffer'], direction: 'inbound' },
};

class Session implements RtpengineSession {
  readonly callId: string;
  /** The dialer's WebRTC leg. A future fork (`subscribe request` from-tag) must use this tag: DESIGN §4.1. */
  readonly #dialerTag: string;
  /** The trunk's plain-RTP leg. */
  readonly #trunkTag: string;
  /** The recorder's subscription to the dialer leg. */
  readonly #forkTag: string;
  readonly #ng: NgClient;
  readonly #flags: NgFlags;
  readonly #trunkCodecs: readonly TrunkCodec[];
  readonly #srtp: TrunkSrtp;
  readonly #log: Logger;
  #direction: MediaDirection | undefined;
  #lastStep: Step | undefined;
  /**
   * The dialer's own SDP as rtpengine last saw it (its offer outbound, its answer inbound). A mid-call
   * offer from the trunk is answered with it, so the browser is never asked to renegotiate.
   */
  #dialerSdp: string | undefined;
  /**
   * rtpengine's answer to a dialer offer that left the DTLS role open (actpass): the role it settles is written
   * into #dialerSdp only when that is next used (a mid-call offer, rare), not on every answered call.
   */
  #dialerRoleFrom: string | undefined;
  /** The codec the trunk leg runs (first of PCMU/PCMA/Opus in the last trunk-facing answer). */
  #trunkCodec: string | undefined;
  /** Which legs' media is held back from the other leg because the trunk's last offer said so. */
  readonly #blocked = { dialer: false, trunk: false };
  /** Whether the trunk's last offer lets the dialer's media through (hold), and whether a prompt plays now (announceToTrunk). */
  #dialerWanted = true;
  #announcing = false;
  /** Set once a request that may have created the call in rtpengine was sent. */
  #allocated = false;
  #closed = false;
  /** A recorder subscription exists in rtpengine (`forkDialerLeg`), until `unforkDialerLeg`. */
  #forked = false;
  #closing: Promise<void> | undefined;
  readonly #env: SessionEnv;
  #lostListener: ((reason: MediaLoss) => void) | undefined;
  #lost = false;
  #unwatch: (() => void) | undefined;
  /** Serialises ng requests of this session, so close() runs after an in-flight offer settles. */
  #queue: Promise<unknown> = Promise.resolve();
  /** DTMF batches one after another, outside #queue: waiting for a batch to play must not hold up close(). */
  #dtmfChain: Promise<unknown> = Promise.resolve();
  /** performance.now() when every admitted digit will have played, gap included (the backlog bound's clock). */
  #dtmfAdmittedUntil = 0;
  /** performance.now() when the digits already handed to rtpengine will have played, gap included. */
  #dtmfPlayedAt = 0;

  constructor(callId: string, env: SessionEnv, log: Logger) {
    this.callId = callId;
    this.#dialerTag = `${callId}-d`;
    this.#trunkTag = `${callId}-t`;
    this.#forkTag = `${callId}-r`;
    this.#env = env;
    this.#ng = env.ng;
    this.#flags = env.flags;
    this.#trunkCodecs = env.trunkCodecs;
    this.#srtp = env.srtp;
    this.#log = log;
  }

  get direction(): MediaDirection | undefined {
    return this.#direction;
  }

  get closed(): boolean {
    return this.#closed;
  }

  dialerOffer(sdp: string): Promise<string> {
    return this.#step('dialerOffer', sdp, 'dialer', async (s) => {
      this.#dialerSdp = s;
      const reply = await this.#ng.offer({
        ...this.#flags.dialerOffer,
        'call-id': this.callId,
        'from-tag': this.#dialerTag,
        sdp: s,
      });
      return sdpForTrunk(reply.sdp, this.#trunkCodecs);
    });
  }

  trunkAnswer(sdp: string): Promise<string> {
    return this.#step('trunkAnswer', sdp, 'trunk', async (s, parsed) => {
      const reply = await this.#ng.answer({
        ...this.#flags.trunkAnswer,
        'call-id': this.callId,
        'from-tag': this.#dialerTag,
        'to-tag': this.#trunkTag,
        sdp: s,
      });
      if (this.#dialerSdp && /a=setup:actpass/.test(this.#dialerSdp)) this.#dialerRoleFrom ??= reply.sdp;
      this.#trunkCodec = firstTrunkCodec(parsed);
      return addBundle(reply.sdp);
    });
  }

  trunkOffer(sdp: string): Promise<string> {
    return this.#step('trunkOffer', sdp, 'trunk', async (s) => {
      const reply = await this.#ng.offer({
        ...this.#flags.trunkOffer,
        'call-id': this.callId,
        'from-tag': this.#trunkTag,
        sdp: s,
      });
      return addBundle(reply.sdp);
    });
  }

  dialerAnswer(sdp: string): Promise<string> {
    return this.#step('dialerAnswer', sdp, 'dialer', async (s) => {
      this.#dialerSdp = s;
      const reply = await this.#ng.answer({
        ...this.#flags.dialerAnswer,
        'call-id': this.callId,
        'from-tag': this.#trunkTag,
        'to-tag': this.#dialerTag,
        sdp: s,
      });
      const trunkSdp = answerForTrunk(reply.sdp);
      this.#trunkCodec = firstTrunkCodec(trunkSdp);
      return trunkSdp;
    });
  }

  forkDialerLeg(answer: (offerSdp: string) => string): Promise<void> {
    if (this.#closed) return Promise.reject(new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`));
    if (this.#lastStep !== 'trunkAnswer' && this.#lastStep !== 'dialerAnswer') {
      return Promise.reject(new MonologueError('MEDIA_STATE', 'a fork needs an answered call'));
    }
    return this.#enqueue(async () => {
      const offer = await this.#ng.subscribeRequest({
        ...this.#flags.fork,
        'call-id': this.callId,
        'from-tag': this.#dialerTag,
        'to-tag': this.#forkTag,
      });
      // From the request on, rtpengine holds a subscription that an unfork must end.
      this.#forked = true;
      await this.#ng.subscribeAnswer({
        ...this.#flags.forkAnswer,
        'call-id': this.callId,
        'to-tag': this.#forkTag,
        sdp: answer(offer.sdp),
      });
    });
  }

  unforkDialerLeg(): Promise<void> {
    if (this.#closed || !this.#forked) return Promise.resolve();
    return this.#enqueue(async () => {
      if (this.#closed || !this.#forked) return;
      try {
        await this.#ng.request('unsubscribe', { 'call-id': this.callId, 'to-tag': this.#forkTag });
        this.#forked = false;
      } catch (err) {
        // The recorder's socket is closed already: what rtpengine still sends it is dropped by the kernel.
        this.#log.warn({ err: errorMessage(err) }, 'rtpengine unsubscribe of the recording fork failed');
      }
    });
  }

  /**
   * ng `play media` with the trunk leg's tag: rtpengine plays the file to the participant that tag names, so the
   * counterpart hears it and the dialer does not. rtpengine 10.5 goes on forwarding the dialer's audio alongside
   * (measured: prompt and voice packets interleaved at the trunk), so the dialer's leg is blocked while the
   * prompt plays and reopened after it. The recorder's fork starts only afterwards, so no prompt is recorded.
   */
  async announceToTrunk(file: string): Promise<void> {
    if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
    let ms: number;
    try {
      ms = await this.#enqueue(async () => {
        if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
        this.#announcing = true;
        await this.#gate('dialer', false);
        const reply = await this.#ng.request('play media', { 'call-id': this.callId, 'from-tag': this.#trunkTag, file });
        return typeof reply.duration === 'number' ? reply.duration : 0;
      });
      // Outside the queue: a hangup while the prompt plays is not held up by it.
      await sleep(ms, undefined, { ref: false });
    } finally {
      await this.#enqueue(async () => {
        this.#announcing = false;
        if (!this.#closed) await this.#gate('dialer', this.#dialerWanted);
      });
    }
  }

  trunkReoffer(sdp: string): Promise<string> {
    try {
      if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
      if (this.#lastStep !== 'trunkAnswer' && this.#lastStep !== 'dialerAnswer') {
        throw new MonologueError('MEDIA_STATE', 'a mid-call offer needs an answered call');
      }
      validateSdp(sdp, 'trunk');
      // rtpengine 10.5 re-offered without codec masking keeps encoding towards the trunk in the codec it
      // had (measured: it answered PCMA and went on sending PCMU), and masking rebuilds the dialer leg's
      // codecs so the recording fork goes silent. A re-offer that drops the running codec is refused
      // (SIP answers 488 and the call keeps its media) rather than answered with a lie.
      if (this.#trunkCodec && !codecNames(sdp).includes(this.#trunkCodec)) {
        throw new MonologueError('MEDIA_CODEC_CHANGE', `a mid-call change of codec away from ${this.#trunkCodec} is not supported`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(async () => {
      if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
      const dialerSdp = this.#settledDialerSdp();
      if (!dialerSdp) throw new MonologueError('MEDIA_STATE', 'no dialer SDP to answer a mid-call offer with');
      try {
        // Outbound calls were offered from the dialer's tag; rtpengine takes an offer from the other
        // side when the tags are swapped, so the same two tags serve both directions.
        await this.#ng.offer({
          ...this.#flags.trunkReoffer,
          'call-id': this.callId,
          'from-tag': this.#trunkTag,
          'to-tag': this.#dialerTag,
          sdp,
        });
        // The dialer "answers" with the SDP it already gave, its direction set to what RFC 3264 requires
        // for this offer: rtpengine then stops sending towards a trunk that put us on hold.
        const direction = answerDirection(sdp);
        const reply = await this.#ng.answer({
          ...this.#flags.dialerAnswer,
          'call-id': this.callId,
          'from-tag': this.#trunkTag,
          'to-tag': this.#dialerTag,
          sdp: withDirection(dialerSdp, direction),
        });
        // rtpengine 10.5 records the direction but keeps forwarding (measured: a held trunk went on
        // receiving the dialer's audio, on the transcoding path), so each half is blocked explicitly.
        this.#dialerWanted = direction === 'sendrecv' || direction === 'sendonly';
        await this.#gate('dialer', this.#dialerWanted && !this.#announcing);
        await this.#gate('trunk', direction === 'sendrecv' || direction === 'recvonly');
        // rtpengine may echo its own idea of the direction; the trunk must see the RFC 3264 one.
        return withDirection(answerForTrunk(reply.sdp), direction);
      } catch (err) {
        this.#log.warn({ step: 'trunkReoffer', err: errorMessage(err) }, 'rtpengine step failed');
        throw err;
      }
    });
  }

  /**
   * One ng `play DTMF` per digit, from the dialer's leg: rtpengine generates the events as if the dialer had
   * sent them, towards the parties that receive the dialer (the trunk; the recorder's fork answered Opus only,
   * so none reach a recording), as RFC 4733 telephone-event on the payload type the trunk accepted (README, DTMF).
   * This resolves once rtpengine has queued the digits, not when they have played.
   */
  sendDtmf(digits: string): Promise<void> {
    if (this.#closed) return Promise.reject(new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`));
    if (!DTMF_DIGITS.test(digits)) {
      return Promise.reject(new MonologueError('BAD_DTMF', 'DTMF digits are 0-9, *, #, A-D'));
    }
    // Only once rtpengine has both legs: before that there is no trunk media to put the events into.
    if (this.#lastStep !== 'trunkAnswer' && this.#lastStep !== 'dialerAnswer') {
      return Promise.reject(new MonologueError('DTMF_NOT_READY', 'digits can be sent once the call has audio (answered or early media)'));
    }
    // The bound on what one call may have waiting: a dialer cannot queue minutes of tones (nor the timers behind them).
    // Some leeway (less than a digit), so that a full message is taken while the end of the one before still plays.
    const now = performance.now();
    const admittedUntil = Math.max(now, this.#dtmfAdmittedUntil, this.#dtmfPlayedAt) + digits.length * DTMF_SLOT_MS;
    if (admittedUntil - now > DTMF_MAX_BACKLOG_MS + DTMF_BACKLOG_LEEWAY_MS) {
      return Promise.reject(
        new MonologueError(
          'DTMF_RATE_LIMITED',
          `too many digits at once: at most ${DTMF_MAX_BACKLOG_DIGITS} may wait to be played (${Math.round(1000 / DTMF_SLOT_MS)} a second); send the rest after these`,
        ),
      );
    }
    this.#dtmfAdmittedUntil = admittedUntil;
    const run = this.#dtmfChain.then(() => this.#playDtmf(digits));
    this.#dtmfChain = run.catch(() => {
      // Refused digits take no time on the wire: only what rtpengine took counts against the bound.
      this.#dtmfAdmittedUntil = this.#dtmfPlayedAt;
    });
    return run;
  }

  /**
   * rtpengine spaces digits it holds in its queue, but a digit sent after the queue ran dry starts right after the
   * last one ended (about 20 ms, measured), too close for receivers that want a pause between digits: so a batch
   * waits for the previous one to play out, gap included, before it is handed over.
   */
  async #playDtmf(digits: string): Promise<void> {
    const wait = this.#dtmfPlayedAt - performance.now();
    if (wait > 0) await sleep(wait, undefined, { ref: false });
    await this.#enqueue(async () => {
      for (const code of digits) {
        if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
        try {
          await this.#ng.playDtmf({
            'call-id': this.callId,
            'from-tag': this.#dialerTag,
            code,
            duration: DTMF_TIMING.toneMs,
            pause: DTMF_TIMING.gapMs,
            // Without it rtpengine 10.5 marks the events -63 dBm0 (silent), which some gateways ignore.
            volume: DTMF_VOLUME_DBM0,
          });
        } catch (err) {
          throw dtmfError(err);
        }
      }
    });
    // The first digit starts with the next audio frame; rtpengine rounds each tone up to whole 20 ms frames.
    this.#dtmfPlayedAt = performance.now() + digits.length * DTMF_SLOT_MS + DTMF_FRAME_SLACK_MS;
  }

  onLost(listener: (reason: MediaLoss) => void): void {
    this.#lostListener = listener;
  }

  /** The media died under this session (the watch, or the relay's `loseAll`): tell the owner, once. */
  lose(reason: MediaLoss): void {
    if (this.#closed || this.#lost) return;
    this.#lost = true;
    this.#stopWatching();
    this.#log.warn({ reason }, 'media lost');
    try {
      this.#lostListener?.(reason);
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'media loss listener threw');
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#enqueue(() => this.#delete());
    this.#closed = true;
    this.#stopWatching();
    return this.#closing;
  }

  /** Media flows from the first answer on: from then, a silent leg or a vanished call ends the session. */
  #startWatching(): void {
    if (this.#unwatch || this.#closed || this.#lost || !this.#env.watch) return;
    this.#unwatch = this.#env.watch.watch({
      callId: this.callId,
      legs: [this.#dialerTag, this.#trunkTag],
      lost: (reason) => this.lose(reason),
    });
  }

  #stopWatching(): void {
    this.#unwatch?.();
    this.#env.live.delete(this);
  }

  /** The dialer's SDP as it stands now, its DTLS role settled (see #dialerRoleFrom). */
  #settledDialerSdp(): string | undefined {
    if (this.#dialerSdp && this.#dialerRoleFrom !== undefined) {
      this.#dialerSdp = withSettledDtlsRole(this.#dialerSdp, this.#dialerRoleFrom);
      this.#dialerRoleFrom = undefined;
    }
    return this.#dialerSdp;
  }

  /** Check order and input, then run `send` (with the SDP as validated, parsed once) after earlier requests of this session settled. */
  #step(step: Step, sdp: string, side: 'dialer' | 'trunk', send: (sdp: string, parsed: SessionDescription) => Promise<string>): Promise<string> {
    let parsed: SessionDescription;
    try {
      if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
      const rule = NEXT[step];
      if (!rule.after.includes(this.#lastStep)) {
        throw new MonologueError(
          'MEDIA_STATE',
          `${step} is not allowed ${this.#lastStep ? `after ${this.#lastStep}` : 'before an offer'}`,
        );
      }
      parsed = validateSdp(sdp, side);
      if (side === 'trunk') checkTrunkSrtp(parsed, this.#srtp);
      this.#lastStep = step;
      this.#direction = rule.direction;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(async () => {
      if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
      if (this.#env.available && !this.#env.available()) {
        throw new MonologueError('MEDIA_UNAVAILABLE', 'rtpengine is down or restarting; try the call again in a moment');
      }
      this.#allocated = true;
      if (!this.#lost) this.#env.live.add(this);
      try {
        const out = await send(sdp, parsed);
        if (step === 'trunkAnswer' || step === 'dialerAnswer') this.#startWatching();
        return out;
      } catch (err) {
        this.#log.warn({ step, err: errorMessage(err) }, 'rtpengine step failed');
        throw err;
      }
    });
  }

  /** Let media from `from` reach the other leg (`open`) or not; ng requests only on a change. */
  async #gate(from: 'dialer' | 'trunk', open: boolean): Promise<void> {
    if (this.#blocked[from] === !open) return;
    const fromTag = from === 'dialer' ? this.#dialerTag : this.#trunkTag;
    // rtpengine 10.5 blocks everything the leg sends, the recorder's copy too (measured, even with a
    // to-tag): a recording pauses while the trunk holds the call and resumes with it.
    await this.#ng.request(open ? 'unblock media' : 'block media', { 'call-id': this.callId, 'from-tag': fromTag });
    this.#blocked[from] = !open;
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #delete(): Promise<void> {
    if (!this.#allocated) return;
    try {
      await this.#ng.delete({ 'call-id': this.callId, 'delete-delay': 0 });
      this.#log.debug('rtpengine call deleted');
    } catch (err) {
      const msg = errorMessage(err);
      if (/unknown call/i.test(msg)) this.#log.debug('rtpengine call was already gone');
      else this.#log.warn({ err: msg }, 'rtpengine delete failed');
    }
  }
}

/** The first codec of a trunk-facing SDP that the trunk leg can run (lower case), if any. */
function firstTrunkCodec(sdp: string | SessionDescription): string | undefined {
  return codecNames(sdp).find((c) => c === 'pcmu' || c === 'pcma' || c === 'opus');
}
