/**
 * One real rtpengine per test file, on free ports: started before the file's tests, stopped after, with a
 * relay over it. Call `useRtpengine` at module level; its fields are set once the `before` hook has run.
 */
import { after, before } from 'node:test';
import type { Logger } from '../../src/log.js';
import { createRtpengineProcess, createRtpengineRelay, type RtpengineProcess, type RtpengineRelay } from '../../src/media/index.js';
import { freeUdpPort, freeUdpPortRange } from './ports.js';

export interface RtpengineRig {
  rtpengine: RtpengineProcess;
  relay: RtpengineRelay;
  /** A fresh call id, unique across files and runs, starting with the rig's prefix. */
  callId(): string;
}

export function useRtpengine(log: Logger, prefix: string, opts: { ports?: number } = {}): RtpengineRig {
  let seq = 0;
  const rig = {
    callId: () => `${prefix}-${process.pid}-${Date.now()}-${++seq}`,
  } as RtpengineRig;
  before(async () => {
    const range = await freeUdpPortRange(opts.ports ?? 60);
    rig.rtpengine = createRtpengineProcess({ log, ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max });
    await rig.rtpengine.start();
    rig.relay = createRtpengineRelay({ ng: rig.rtpengine.ng, trunkCodecs: ['PCMU', 'PCMA'], log });
  });
  after(async () => {
    await rig.rtpengine?.stop();
  });
  return rig;
}
