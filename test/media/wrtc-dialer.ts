/**
 * A WebRTC "dialer" for media tests, on @roamhq/wrtc (real libwebrtc in Node): sends a sine tone as
 * 10 ms frames of 48 kHz PCM through `nonstandard.RTCAudioSource`, and collects what it receives through
 * `nonstandard.RTCAudioSink`.
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
 *   segfault (see the beforeExit hook below).
 */
import wrtc from '@roamhq/wrtc';
import { sine } from '../helpers/tone.js';

const { RTCPeerConnection, nonstandard } = wrtc;

// Once a track of RTCAudioSource was stopped, Node's environment cleanup at a natural exit segfaults inside
// wrtc (node-webrtc#636, still in @roamhq/wrtc 0.10), and the test file then fails with SIGSEGV. An explicit
// process.exit() skips that cleanup. beforeExit fires after node:test has written its last report (stdout to a
// pipe is synchronous on Linux), so nothing is lost; the exit code node:test set is kept.
process.once('beforeExit', () => process.exit(process.exitCode ?? 0));

export interface WrtcDialer {
  /** Create an offer, wait for ICE gathering to complete, return the full SDP. */
  offer(): Promise<string>;
  /** Apply a remote offer, create the answer, wait for ICE gathering, return it. */
  answer(remoteOffer: string): Promise<string>;
  /** Apply the remote answer to our offer. */
  accept(remoteAnswer: string): Promise<void>;
  /** Resolve when the connection is 'connected' (ICE + DTLS done). */
  connected(timeoutMs?: number): Promise<void>;
  /** Mono 48 kHz PCM received so far (first channel), skipping the first `skipMs`. */
  pcm(skipMs?: number): Int16Array;
  readonly sampleRate: number;
  /** Milliseconds of audio received. */
  receivedMs(): number;
  close(): void;
}

export function createWrtcDialer(tone: number): WrtcDialer {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
  const source = new nonstandard.RTCAudioSource();
  const track = source.createTrack();
  pc.addTrack(track);
  const chunks: Int16Array[] = [];
  let rate = 48000;
  let sink: InstanceType<typeof nonstandard.RTCAudioSink> | undefined;
  pc.ontrack = (ev: { track: unknown }) => {
    sink = new nonstandard.RTCAudioSink(ev.track as never);
    sink.ondata = (d: { samples: Int16Array; sampleRate: number; channelCount?: number }) => {
      rate = d.sampleRate;
      const ch = d.channelCount ?? 1;
      if (ch === 1) chunks.push(Int16Array.from(d.samples));
      else {
        const mono = new Int16Array(Math.floor(d.samples.length / ch));
        for (let i = 0; i < mono.length; i++) mono[i] = d.samples[i * ch]!;
        chunks.push(mono);
      }
    };
  };
  let sample = 0;
  const timer = setInterval(() => {
    source.onData({ samples: sine(tone, 48000, 480, 0.3, sample), sampleRate: 48000 });
    sample += 480;
  }, 10);

  const gathered = (): Promise<void> =>
    new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const check = (): void => {
        if (pc.iceGatheringState === 'complete') resolve();
      };
      pc.onicegatheringstatechange = check;
      pc.onicecandidate = (e: { candidate: unknown }) => {
        if (!e.candidate) resolve();
      };
    });

  return {
    async offer() {
      const o = await pc.createOffer();
      await pc.setLocalDescription(o);
      await gathered();
      return pc.localDescription!.sdp;
    },
    async answer(remoteOffer: string) {
      await pc.setRemoteDescription({ type: 'offer', sdp: remoteOffer });
      const a = await pc.createAnswer();
      await pc.setLocalDescription(a);
      await gathered();
      return pc.localDescription!.sdp;
    },
    async accept(remoteAnswer: string) {
      await pc.setRemoteDescription({ type: 'answer', sdp: remoteAnswer });
    },
    connected(timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`not connected in ${timeoutMs} ms: ${pc.connectionState}/${pc.iceConnectionState}`)),
          timeoutMs,
        );
        const check = (): void => {
          if (pc.connectionState === 'connected') {
            clearTimeout(t);
            resolve();
          } else if (pc.connectionState === 'failed') {
            clearTimeout(t);
            reject(new Error('connection failed'));
          }
        };
        pc.onconnectionstatechange = check;
        check();
      });
    },
    pcm(skipMs = 0) {
      const all = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        all.set(c, o);
        o += c.length;
      }
      return all.subarray(Math.min(all.length, Math.round((skipMs * rate) / 1000)));
    },
    get sampleRate() {
      return rate;
    },
    receivedMs() {
      return (chunks.reduce((n, c) => n + c.length, 0) * 1000) / rate;
    },
    close() {
      clearInterval(timer);
      sink?.stop();
      track.stop();
      pc.close();
    },
  };
}
