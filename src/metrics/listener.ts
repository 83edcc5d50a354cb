import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { MonologueError, errorMessage } from '../errors.js';
import type { Metrics } from './metrics.js';

export interface MetricsListener {
  /** `http://host:port/metrics` */
  readonly url: string;
  readonly port: number;
  /** Stop listening and end open connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * `GET /metrics` on its own socket, never the public listener, so that a proxy or firewall mistake on the
 * dialer's port cannot expose it. Everything else answers 404 (405 for another method on /metrics).
 * Port 0 takes any free port.
 */
export async function listenMetrics(metrics: Metrics, opts: { host: string; port: number; log: Logger }): Promise<MetricsListener> {
  const log = opts.log.child({ mod: 'metrics' });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics\n');
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        log.error({ err }, 'metrics could not be collected');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics could not be collected: ${errorMessage(err)}\n`);
      },
    );
  });
  // A scraper keeps its connection: close() must not wait for it.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new MonologueError('METRICS_LISTEN_FAILED', `metrics listener cannot listen on ${opts.host}:${opts.port} (${err.code ?? errorMessage(err)}): set metrics.port to a free port, 0 for any, or metrics.enabled false`, { cause: err })));
    server.listen({ host: opts.host, port: opts.port }, () => resolve());
  });
  server.on('error', (err) => log.error({ err }, 'metrics listener error'));
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  log.info({ host: opts.host, port }, 'metrics listening (keep it off public networks)');
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
