/**
 * What a scenario needs from the service under load, whether the script started it (local-deployment.ts)
 * or an operator points at it (target.ts): where to signal, where its SIP listener and trunk are, how to
 * get dialer accounts, and how to read its CPU and memory.
 */
import { readFile } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { MonologueError } from '../../src/errors.js';
import type { CpuSource } from './cpu.js';

export interface HostPort {
  host: string;
  port: number;
}

/** A dialer's credentials; `phone` is needed only to call the user in (inbound). */
export interface DialerAccount {
  token: string;
  phone?: string;
}

export interface Deployment {
  readonly mode: 'local' | 'target';
  /** ws(s)://…/v1/signal */
  readonly signalUrl: string;
  /** The service's SIP listener (inbound calls are sent there); undefined when unknown. */
  readonly sip: HostPort | undefined;
  /** Where the service's trunk points: the trunk emulator binds here. */
  readonly trunk: HostPort;
  readonly metricsUrl: string | undefined;
  /** CPU counters (ms) of the service and of rtpengine; a source reads undefined when it is not known. */
  readonly cpu: ReadonlyMap<'service' | 'rtpengine', CpuSource>;
  /** The service's resident memory, bytes. */
  serviceRss(): Promise<number | undefined>;
  /** `count` accounts; `record` asks for enrolled users who consented (ignored for a tokens file). */
  accounts(count: number, record: boolean): Promise<DialerAccount[]>;
  /** Where the CPU profile goes (local mode with --profile). */
  readonly profileDir: string | undefined;
  /** Things the report should say (e.g. "no /metrics endpoint"). */
  readonly notes: string[];
  close(): Promise<void>;
}

/**
 * Users and tokens through the admin API (`POST /admin/v1/users`, `POST /admin/v1/users/{id}/tokens`).
 * Recorded users are enrolled and have accepted the consent version in force (read from the public API).
 */
export async function adminAccounts(adminUrl: string, adminKey: string, publicUrl: string, count: number, record: boolean): Promise<DialerAccount[]> {
  const consentVersion = record ? await currentConsentVersion(publicUrl) : undefined;
  const post = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(new URL(path, adminUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, json: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };
  const one = async (): Promise<DialerAccount> => {
    for (let attempt = 0; attempt < 5; attempt++) {
      // 555-01XX-style fictional numbers, random so that repeated runs against one deployment do not collide.
      const phone = `+1555${randomInt(1_000_000, 10_000_000)}`;
      const user = await post('admin/v1/users', { phone, enrolled: record, ...(consentVersion && { consentVersion }) });
      if (user.status === 409) continue;
      if (user.status !== 201) throw new MonologueError('ADMIN_FAILED', `creating a user on ${adminUrl} answered ${user.status} ${JSON.stringify(user.json)}; check --admin and --admin-key`);
      const token = await post(`admin/v1/users/${String(user.json.id)}/tokens`, {});
      if (token.status !== 201) throw new MonologueError('ADMIN_FAILED', `issuing a token answered ${token.status} ${JSON.stringify(token.json)}`);
      return { token: String(token.json.token), phone };
    }
    throw new MonologueError('ADMIN_FAILED', 'five random phone numbers in a row were taken');
  };
  const out: DialerAccount[] = [];
  // A few at a time: the admin listener is rate limited per address.
  for (let i = 0; i < count; i += 8) out.push(...(await Promise.all(Array.from({ length: Math.min(8, count - i) }, one))));
  return out;
}

async function currentConsentVersion(publicUrl: string): Promise<string> {
  const url = new URL('v1/consent/current', publicUrl);
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => {
    throw new MonologueError('TARGET_UNREACHABLE', `${url} did not answer (${err.message}); check --target`);
  });
  const body = (await res.json().catch(() => ({}))) as { version?: unknown };
  if (!res.ok || typeof body.version !== 'string') throw new MonologueError('TARGET_UNREACHABLE', `${url} answered ${res.status} without a consent version; is --target a Monologue base URL?`);
  return body.version;
}

/** `--tokens FILE`: one bearer token per line, optionally followed by whitespace and the user's E.164 number. */
export async function tokensFile(path: string): Promise<DialerAccount[]> {
  const text = await readFile(path, 'utf8').catch((err: Error) => {
    throw new MonologueError('USAGE', `cannot read --tokens ${path}: ${err.message}`);
  });
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [token, phone] = l.split(/\s+/);
      return { token: token!, ...(phone && { phone }) };
    });
}
