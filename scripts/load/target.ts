/**
 * Target mode: a deployment that is already running. Signaling at `--target` + `v1/signal`; accounts from
 * `--tokens FILE` or created through `--admin URL --admin-key KEY`; CPU and memory from its `--metrics`
 * endpoint (process_cpu_seconds_total, monologue_rtpengine_cpu_seconds_total,
 * process_resident_memory_bytes), null where it has none. The trunk emulator binds at `--trunk`, the
 * address the deployment's trunk config points at.
 */
import { MonologueError } from '../../src/errors.js';
import { adminAccounts, tokensFile, type DialerAccount, type Deployment, type HostPort } from './deployment.js';
import { scrape } from './metrics.js';

export interface TargetOptions {
  target: URL;
  trunk: HostPort;
  sip: HostPort | undefined;
  metrics: URL | undefined;
  tokens: string | undefined;
  admin: { url: URL; key: string } | undefined;
}

export function targetDeployment(o: TargetOptions): Deployment {
  const signal = new URL('v1/signal', o.target);
  signal.protocol = o.target.protocol === 'https:' ? 'wss:' : 'ws:';
  const metricsUrl = o.metrics?.href;
  const fromMetrics = (name: string) => async (): Promise<number | undefined> => {
    const seconds = (await scrape(metricsUrl))?.sum(name);
    return seconds === undefined ? undefined : seconds * 1000;
  };
  const notes = metricsUrl ? [] : ['no --metrics URL: CPU, RSS, recorder packets, event-loop delay and open handles are null'];
  let fromFile: DialerAccount[] | undefined;
  return {
    mode: 'target',
    signalUrl: signal.href,
    sip: o.sip,
    trunk: o.trunk,
    metricsUrl,
    cpu: new Map([
      ['service', fromMetrics('process_cpu_seconds_total')],
      ['rtpengine', fromMetrics('monologue_rtpengine_cpu_seconds_total')],
    ]),
    serviceRss: async () => (await scrape(metricsUrl))?.sum('process_resident_memory_bytes'),
    async accounts(count, record) {
      if (o.admin) return adminAccounts(o.admin.url.href, o.admin.key, o.target.href, count, record);
      fromFile ??= await tokensFile(o.tokens!);
      if (fromFile.length < count) {
        throw new MonologueError('USAGE', `--tokens ${o.tokens} has ${fromFile.length} tokens; this run needs ${count} (one per concurrent call or socket)`);
      }
      return fromFile.slice(0, count);
    },
    profileDir: undefined,
    notes,
    close: async () => undefined,
  };
}
