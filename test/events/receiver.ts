import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One POST the receiver verified. */
export interface Delivery {
  id: string;
  timestamp: number;
  signature: string;
  body: string;
  receivedAt: number;
}

/**
 * The app backend of the tests: a real HTTP server on 127.0.0.2 that verifies every POST with
 * standardwebhooks' verifier (401 and counted when it fails) and answers 204. `dropNext` makes it take
 * the next N verified deliveries and then cut the connection without an answer: the "processed, but the
 * answer was lost" case that at-least-once delivery turns into a duplicate.
 */
export class Receiver {
  readonly deliveries: Delivery[] = [];
  rejected = 0;
  dropNext = 0;
  #server: Server | undefined;
  #port = 0;
  #waiters: Array<() => void> = [];
  readonly #webhook: Webhook;

  constructor(secret: string) {
    this.#webhook = new Webhook(secret);
  }

  get url(): string {
    return `http://127.0.0.2:${this.#port}/monologue-events`;
  }

  /** Listens on the same port as before once it has had one. */
  async open(): Promise<void> {
    const server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        const h = (n: string) => String(req.headers[n] ?? '');
        const headers = { 'webhook-id': h('webhook-id'), 'webhook-timestamp': h('webhook-timestamp'), 'webhook-signature': h('webhook-signature') };
        try {
          this.#webhook.verify(body, headers);
        } catch {
          this.rejected++;
          res.writeHead(401).end();
          return;
        }
        this.deliveries.push({ id: headers['webhook-id'], timestamp: Number(headers['webhook-timestamp']), signature: headers['webhook-signature'], body, receivedAt: Date.now() });
        for (const w of this.#waiters.splice(0)) w();
        if (this.dropNext > 0) {
          this.dropNext--;
          req.socket.destroy();
          return;
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.2', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Down: the port refuses connections. */
  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Resolves once `ok()` holds, re-checked at every delivery; rejects after `ms`. */
  async until(ok: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
