/**
 * A WebRTC "dialer" for media tests with no signaling server: the tone peer of test/helpers/wrtc-dialer.ts
 * (real libwebrtc, a sine through `RTCAudioSource`, received audio metered through `RTCAudioSink`), driven
 * by raw offers and answers, with `max-bundle` so the relay's BUNDLE handling is checked.
 *
 * wrtc quirks seen with rtpengine 10.5 (checked by removing the lines the relay adds):
 * - Outbound, libwebrtc's offer carries `a=group:BUNDLE 0`; an answer without the group is refused
 *   ("Answer cannot remove m= section with mid='0' from already-established BUNDLE group"; JSEP forbids
 *   it, so browsers behave alike). rtpengine 10.5 drops the group, so the relay adds it back (with `a=mid`).
 * - Inbound, with bundlePolicy 'max-bundle' an offer without a BUNDLE group is refused ("max-bundle is used but
 *   no bundle group found"). rtpengine's `generate-mid` numbers the mid 1, not 0; the relay groups that mid.
 * - The sink delivers 10 ms frames and reports sampleRate/channelCount per frame; the helper keeps channel 0.
 * - `iceGatheringState` reaches 'complete' quickly on loopback (host candidates only).
 * - With an RTCAudioSource track that is never stopped, the process never exits; stopping it makes the exit
 *   segfault (importing test/helpers/wrtc-dialer.ts installs the beforeExit workaround).
 */
import { createTonePeer, gatheredSdp, waitConnection } from '../helpers/wrtc-dialer.js';

export interface WrtcDialer {
  /** Create an offer, wait for ICE gathering to complete, return the full SDP. */
  offer(): Promise<string>;
  /** Apply a remote offer, create the answer, wait for ICE gathering, return it. */
  answer(remoteOffer: string): Promise<string>;
  /** Apply the remote answer to our offer. */
  accept(remoteAnswer: string): Promise<void>;
  /** Resolve when the connection is 'connected' (ICE + DTLS done). */
  connected(timeoutMs?: number): Promise<void>;
  /** Mono PCM received so far (first channel), skipping the first `skipMs`. */
  pcm(skipMs?: number): Int16Array;
  readonly sampleRate: number;
  /** Milliseconds of audio received. */
  receivedMs(): number;
  close(): void;
}

/** Media tests last seconds: the meter keeps all of it. */
const KEEP_SECONDS = 60;

export function createWrtcDialer(tone: number): WrtcDialer {
  const { pc, meter, close } = createTonePeer({
    toneHz: tone,
    meterSeconds: KEEP_SECONDS,
    pc: { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' },
  });
  return {
    async offer() {
      await pc.setLocalDescription(await pc.createOffer());
      return gatheredSdp(pc);
    },
    async answer(remoteOffer: string) {
      await pc.setRemoteDescription({ type: 'offer', sdp: remoteOffer });
      await pc.setLocalDescription(await pc.createAnswer());
      return gatheredSdp(pc);
    },
    accept: (remoteAnswer: string) => pc.setRemoteDescription({ type: 'answer', sdp: remoteAnswer }),
    connected: (timeoutMs = 10_000) => waitConnection(pc, timeoutMs),
    pcm(skipMs = 0) {
      const all = meter.recent(KEEP_SECONDS * 1000);
      return all.subarray(Math.min(all.length, Math.round((skipMs * meter.sampleRate) / 1000)));
    },
    get sampleRate() {
      return meter.sampleRate;
    },
    receivedMs: () => (meter.received * 1000) / meter.sampleRate,
    close,
  };
}
