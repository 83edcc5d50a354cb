/**
 * The trunk emulator: sipp answering the service's outbound INVITEs at the trunk address the service is
 * configured with (test/sipp/uas-answer.xml), sipp placing inbound calls to a user's number
 * (test/sipp/uac-call.xml, one short-lived sipp per call), and the tone-sending media socket both name in
 * their SDP.
 */
import { join } from 'node:path';
import { packageRoot } from '../../src/config/load.js';
import { freeSipPort } from '../../test/helpers/ports.js';
import { startSipp, type SippRun } from '../../test/helpers/sipp.js';
import type { HostPort } from './deployment.js';
import { startTrunkMedia, type TrunkMedia } from './trunk-media.js';

export interface Trunk {
  readonly media: TrunkMedia;
  /** PID of the sipp answering outbound calls (the trunk's CPU figure). */
  readonly uasPid: number | undefined;
  /** Place an inbound call to `number` at the service's SIP address; it lasts until the service hangs up (or `maxMs`). */
  callIn(number: string, maxMs: number): Promise<SippRun>;
  close(): Promise<void>;
}

export interface TrunkOptions {
  /** Where the service's trunk config points: sipp's UAS binds here. */
  at: HostPort;
  /** The service's SIP listener, for inbound calls. */
  serviceSip: HostPort | undefined;
  /** Outbound calls sipp's UAS takes before it stops (sipp -m). */
  maxCalls: number;
  /** sipp is killed after this long whatever happens. */
  maxMs: number;
}

const scenario = (name: string): string => join(packageRoot(), 'test', 'sipp', `${name}.xml`);

export async function startTrunk(o: TrunkOptions): Promise<Trunk> {
  const media = await startTrunkMedia(o.at.host);
  const keys = { rtp_ip: media.host, rtp_port: String(media.port) };
  // sipp's own helper binds 127.0.0.1; an operator-given trunk address replaces it (sipp takes the last -i).
  const bind = o.at.host === '127.0.0.1' ? [] : ['-i', o.at.host];
  const uas = startSipp({ scenario: scenario('uas-answer'), port: o.at.port, calls: o.maxCalls, keys, timeoutMs: o.maxMs, extraArgs: bind });
  const inbound = new Set<SippRun>();
  try {
    await uas.ready;
  } catch (err) {
    const result = await uas.done;
    await media.close();
    throw new Error(`the trunk emulator (sipp) could not listen on ${o.at.host}:${o.at.port}: ${(err as Error).message}; ${result.stderr.slice(-500)}`);
  }
  return {
    media,
    uasPid: uas.process.pid,
    async callIn(number, maxMs) {
      if (!o.serviceSip) throw new Error('inbound calls need the service SIP address (--sip HOST:PORT)');
      const run = startSipp({
        scenario: scenario('uac-call'),
        port: await freeSipPort(o.at.host),
        remote: `${o.serviceSip.host}:${o.serviceSip.port}`,
        service: number,
        // uac-call hangs up after -d; the load script hangs up first from the dialer, which sipp answers 200.
        pauseMs: maxMs,
        keys,
        timeoutMs: maxMs + 10_000,
        extraArgs: bind,
      });
      inbound.add(run);
      void run.done.then(() => inbound.delete(run));
      return run;
    },
    async close() {
      for (const run of [uas, ...inbound]) run.kill();
      await Promise.all([uas.done, ...[...inbound].map((r) => r.done)]);
      await media.close();
    },
  };
}
