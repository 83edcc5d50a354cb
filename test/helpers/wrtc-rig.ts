import { createSocket, type Socket } from 'node:dgram';
import type { Config, DeepPartial } from '../../src/config/load.js';
import { startTestService, type TestService } from './service.js';
import { startSipp, freePort, type SippRun } from './sipp.js';
import { WrtcDialer, type ToneOptions } from './wrtc-dialer.js';

/** A service, a sipp trunk that answers at once (its media dropped), and libwebrtc dialers. */
export interface WrtcRig {
  service: TestService;
  /** A dialer for a new enrolled user (consent v1 unless `consent: false`). */
  dialer(phone: string, opts?: { consent?: boolean; tone?: ToneOptions }): Promise<{ dialer: WrtcDialer; userId: string }>;
  /**
   * Place a call through sipp and wait until media flows. The trunk's media goes to `trunkRtpPort` on
   * 127.0.0.1 (e.g. an RTP peer playing a tone), by default to a sink that drops it.
   */
  call(dialer: WrtcDialer, to?: string, tone?: ToneOptions, trunkRtpPort?: number): Promise<string>;
  hangup(dialer: WrtcDialer, callId: string): Promise<void>;
  /**
   * End every sipp this rig started and wait until each has exited, so the trunk's port is free for another
   * listener (a sipp may still be finishing its last call when the test that used it ends).
   */
  stopTrunk(): Promise<void>;
  close(): Promise<void>;
}

export async function startWrtcRig(
  overrides: DeepPartial<Config> = {},
  database: 'sqlite' | 'postgres' = 'sqlite',
  opts: { mediaPorts?: number } = {},
): Promise<WrtcRig> {
  const sippPort = await freePort();
  const service = await startTestService({ trunkPort: sippPort, database, mediaPorts: opts.mediaPorts, overrides: { recording: { chunkSeconds: 2 }, ...overrides } });
  const sink: Socket = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const dialers: WrtcDialer[] = [];
  const sipps: SippRun[] = [];
  return {
    service,
    async dialer(phone, opts = {}) {
      const user = await service.users.create({ phone, enrolled: true, ...(opts.consent !== false && { consentVersion: 'v1' }) });
      const { token } = await service.tokens.issue(user.id, 3_600_000);
      const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token, opts.tone ?? { toneHz: 440 });
      dialers.push(dialer);
      await dialer.connect();
      return { dialer, userId: user.id };
    },
    async call(dialer, to = '+15550002222', tone, trunkRtpPort = sink.address().port) {
      const sipp = startSipp({ scenario: 'uas-answer', port: sippPort, keys: { rtp_port: String(trunkRtpPort) }, timeoutMs: 120_000 });
      sipps.push(sipp);
      await sipp.ready;
      const call = await dialer.call(to, tone);
      await dialer.waitConnected(call.callId);
      return call.callId;
    },
    async hangup(dialer, callId) {
      dialer.hangup(callId);
      await dialer.waitEnded(callId);
    },
    async stopTrunk() {
      for (const s of sipps) s.kill();
      await Promise.all(sipps.map((s) => s.done));
    },
    async close() {
      for (const d of dialers) d.close();
      for (const s of sipps) s.kill();
      sink.close();
      await service.stop();
    },
  };
}
