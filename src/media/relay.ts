/**
 * MediaRelay over rtpengine (DESIGN §2, §8). One rtpengine call per Monologue call (call-id = our call id),
 * with two monologues: the dialer's WebRTC leg (Opus, ICE, DTLS-SRTP, rtcp-mux, BUNDLE) and the trunk's
 * plain-RTP leg (RTP/AVP, the configured G.711/Opus list, telephone-event kept). rtpengine transcodes
 * between them when the codecs differ.
 */
import type { Logger } from '../log.js';
import type { MediaRelay, MediaSession } from '../calls/ports.js';
import { MonologueError, errorMessage } from '../errors.js';
import type { NgClient, NgDict } from './ng-client.js';
import { addBundle, answerForTrunk, checkTrunkSrtp, sdpForTrunk, validateSdp, type TrunkCodec, type TrunkSrtp } from './sdp.js';
import { PUBLIC_INTERFACE, RECORDER_INTERFACE } from './interfaces.js';

export type { TrunkCodec, TrunkSrtp } from './sdp.js';


export interface RtpengineRelayOptions {
  ng: NgClient;
  /** Codecs offered to / accepted from the trunk, in preference order. At least one. */
  trunkCodecs: readonly TrunkCodec[];
  /** Default `off`. */
  trunkSrtp?: TrunkSrtp;
  log: Logger;
}

export interface RtpengineRelay extends MediaRelay {
  open(callId: string): RtpengineSession;
  /** Call-ids rtpengine holds now (ng `list`): for tests and ops. */
  listCalls(): Promise<string[]>;
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
  return {
    open(callId: string): RtpengineSession {
      if (!callId) throw new MonologueError('MEDIA_STATE', 'a media session needs a call id');
      return new Session(callId, ng, flags, opts.trunkCodecs, srtp, log.child({ callId }));
    },
    async ready(): Promise<boolean> {
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
}

/** rtpengine's flag that drops packets not from the leg's signalled endpoint. */
const STRICT_SOURCE = 'strict source';
/** rtpengine's flag that moves a leg's endpoint to where its packets come from (see ngFlags). */
const MEDIA_HANDOVER = 'media handover';

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
      flags: boundToDtlsPeer('strip-extmap', ...trunkExtraFlags),
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
      flags: bound('full-rtcp-attribute'),
    },
    trunkOffer: {
      ...callLegs,
      ICE: 'force',
      'transport-protocol': 'UDP/TLS/RTP/SAVPF',
      'rtcp-mux': ['offer', 'require'],
      SDES: ['off'],
      flags: bound('generate-mid', 'full-rtcp-attribute', ...(srtp === 'sdes-optional' ? ['OSRTP-accept'] : [])),
      replace: ['origin', 'session-connection'],
      codec: { mask: ['all'], transcode: ['opus', 'telephone-event'] },
    },
    dialerAnswer: {
      ...answerToTrunk,
      flags: boundToDtlsPeer('strip-extmap'),
      replace: ['origin', 'session-connection'],
    },
    fork: { ...toPlainRtp, interface: RECORDER_INTERFACE, flags: bound('strip-extmap') },
    forkAnswer: { flags: bound('allow transcoding') },
  };
}

// ---------------------------------------------------------------- session

type Step = 'dialerOffer' | 'trunkAnswer' | 'trunkOffer' | 'dialerAnswer';

/** Which step may follow which: the first offer fixes the direction. */
const NEXT: Record<Step, { after: Step | undefined; direction: MediaDirection }> = {
  dialerOffer: { after: undefined, direction: 'outbound' },
  trunkAnswer: { after: 'dialerOffer', direction: 'outbound' },
  trunkOffer: { after: undefined, direction: 'inbound' },
  dialerAnswer: { after: 'trunkOffer', direction: 'inbound' },
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
  /** Set once a request that may have created the call in rtpengine was sent. */
  #allocated = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Serialises ng requests of this session, so close() runs after an in-flight offer settles. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(callId: string, ng: NgClient, flags: NgFlags, trunkCodecs: readonly TrunkCodec[], srtp: TrunkSrtp, log: Logger) {
    this.callId = callId;
    this.#dialerTag = `${callId}-d`;
    this.#trunkTag = `${callId}-t`;
    this.#forkTag = `${callId}-r`;
    this.#ng = ng;
    this.#flags = flags;
    this.#trunkCodecs = trunkCodecs;
    this.#srtp = srtp;
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
    return this.#step('trunkAnswer', sdp, 'trunk', async (s) => {
      const reply = await this.#ng.answer({
        ...this.#flags.trunkAnswer,
        'call-id': this.callId,
        'from-tag': this.#dialerTag,
        'to-tag': this.#trunkTag,
        sdp: s,
      });
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
      const reply = await this.#ng.answer({
        ...this.#flags.dialerAnswer,
        'call-id': this.callId,
        'from-tag': this.#trunkTag,
        'to-tag': this.#dialerTag,
        sdp: s,
      });
      return answerForTrunk(reply.sdp);
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
      await this.#ng.subscribeAnswer({
        ...this.#flags.forkAnswer,
        'call-id': this.callId,
        'to-tag': this.#forkTag,
        sdp: answer(offer.sdp),
      });
    });
  }

  trunkReoffer(_sdp: string): Promise<string> {
    return Promise.reject(new MonologueError('MEDIA_UNSUPPORTED', 'mid-call offers are not supported yet'));
  }

  sendDtmf(_digits: string): Promise<void> {
    return Promise.reject(new MonologueError('MEDIA_UNSUPPORTED', 'DTMF is not supported yet'));
  }

  onLost(_listener: (reason: 'media-timeout' | 'media-failed') => void): void {
    // Wired by the liveness work.
  }

  close(): Promise<void> {
    this.#closing ??= this.#enqueue(() => this.#delete());
    this.#closed = true;
    return this.#closing;
  }

  /** Check order and input, then run `send` after earlier requests of this session settled. */
  #step(step: Step, sdp: string, side: 'dialer' | 'trunk', send: (sdp: string) => Promise<string>): Promise<string> {
    try {
      if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
      const rule = NEXT[step];
      if (this.#lastStep !== rule.after) {
        throw new MonologueError(
          'MEDIA_STATE',
          `${step} is not allowed ${this.#lastStep ? `after ${this.#lastStep}` : 'before an offer'}`,
        );
      }
      const parsed = validateSdp(sdp, side);
      if (side === 'trunk') checkTrunkSrtp(parsed, this.#srtp);
      this.#lastStep = step;
      this.#direction = rule.direction;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(async () => {
      if (this.#closed) throw new MonologueError('MEDIA_CLOSED', `media session of ${this.callId} is closed`);
      this.#allocated = true;
      try {
        return await send(sdp);
      } catch (err) {
        this.#log.warn({ step, err: errorMessage(err) }, 'rtpengine step failed');
        throw err;
      }
    });
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
