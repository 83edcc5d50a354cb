/**
 * Run real Kamailio (Debian `kamailio`, 5.6) as a record-routing proxy between the service and sipp, and
 * as the TLS front of a test trunk (sipp 3.6.1 has no TLS). The config is generated into a temp dir:
 *
 *   const k = await startKamailio({ address: '127.0.0.3', udpPort, sippPort, servicePort, tls: { port, certFile, keyFile } });
 *   ... await k.waitForLog(/REQ BYE/); k.log ...; await k.stop();
 *
 * Routing: a new request from sipp (127.0.0.1:sippPort) goes to the service, any other to sipp; every
 * dialog-creating request is record-routed; in-dialog requests follow their Route (loose routing) and
 * are refused 404 without one, so a request that skipped the route set shows. Each request is logged
 * as `REQ <method> <r-uri> from <proto>:<ip>:<port> route=<Route> cid=<Call-ID>`; INVITE bodies as `BODY <sdp>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const KAMAILIO_BIN = process.env.KAMAILIO_BIN ?? '/usr/sbin/kamailio';
const MODULE_DIRS = ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/aarch64-linux-gnu/kamailio/modules', '/usr/lib/kamailio/modules'];

export interface KamailioOptions {
  /** Where Kamailio listens (a 127.0.0.x address other than the service's and sipp's, so each hop shows). */
  address: string;
  udpPort: number;
  /** sipp, on 127.0.0.1, UDP. */
  sippPort: number;
  /** The service's SIP port on 127.0.0.1 (UDP, or TLS with `serviceTransport`). */
  servicePort: number;
  /** How new requests from sipp reach the service; default udp. */
  serviceTransport?: 'udp' | 'tls';
  /** A TLS listener too (the TLS front of the trunk). */
  tls?: { port: number; certFile: string; keyFile: string };
}

export interface Kamailio {
  /** Everything Kamailio logged so far. */
  readonly log: string;
  /** Where the log is now: pass it to `waitForLog` to look only at what comes after. */
  mark(): number;
  waitForLog(re: RegExp, since?: number, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startKamailio(o: KamailioOptions): Promise<Kamailio> {
  const dir = mkdtempSync(join(tmpdir(), 'kamailio-'));
  const mpath = MODULE_DIRS.find((d) => existsSync(join(d, 'tm.so')));
  if (!mpath) throw new Error('kamailio modules not found (install kamailio; scripts/system-deps.sh does)');
  const cfg = join(dir, 'kamailio.cfg');
  writeFileSync(cfg, config(o, mpath));
  const child = spawn(KAMAILIO_BIN, ['-f', cfg, '-DD', '-E', '-m', '32', '-M', '8', '-Y', dir, '-P', join(dir, 'kamailio.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const waiters: { re: RegExp; since: number; resolve: (line: string) => void }[] = [];
  const onData = (d: Buffer): void => {
    log += d.toString();
    for (const w of [...waiters]) {
      const m = w.re.exec(log.slice(w.since));
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  try {
    await waitBound(child, o.udpPort, 'udp', () => log);
    if (o.tls) await waitBound(child, o.tls.port, 'tcp', () => log);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    get log() {
      return log;
    },
    mark() {
      return log.length;
    },
    waitForLog(re, since = 0, timeoutMs = 10_000) {
      const m = re.exec(log.slice(since));
      if (m) return Promise.resolve(m[0]);
      return new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`kamailio never logged ${re}; log:\n${log.slice(-4000)}`)), timeoutMs);
        waiters.push({ re, since, resolve: (l) => { clearTimeout(t); resolve(l); } });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function config(o: KamailioOptions, mpath: string): string {
  const tls = o.tls;
  return `#!KAMAILIO
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=1
tcp_children=1
auto_aliases=no
listen=udp:${o.address}:${o.udpPort}
${tls ? `enable_tls=yes\nlisten=tls:${o.address}:${tls.port}\n# connections to the service come from the proxy's own address (the service allows only it)\ntcp_source_ipv4=${o.address}` : 'disable_tcp=yes'}
mpath="${mpath}"
${tls ? 'loadmodule "tls.so"' : ''}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
${tls ? `modparam("tls", "certificate", "${tls.certFile}")\nmodparam("tls", "private_key", "${tls.keyFile}")\nmodparam("tls", "tls_method", "TLSv1.2+")\nmodparam("tls", "verify_certificate", 0)\nmodparam("tls", "require_certificate", 0)` : ''}

request_route {
  xlog("L_NOTICE", "REQ $rm $ru from $pr:$si:$sp route=$hdr(Route) cid=$ci\\n");
  if (is_method("INVITE") && has_body("application/sdp")) xlog("L_NOTICE", "BODY $rb\\n");
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { route(RELAY); }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    xlog("L_NOTICE", "NOROUTE $rm\\n");
    sl_send_reply("404", "Not here");
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { route(RELAY); } exit; }
  t_check_trans();
  remove_hf("Route");
  record_route();
  if ($si == "127.0.0.1" && $sp == ${o.sippPort}) {
    $du = "sip:127.0.0.1:${o.servicePort};transport=${o.serviceTransport ?? 'udp'}";
  } else {
    $du = "sip:127.0.0.1:${o.sippPort};transport=udp";
  }
  route(RELAY);
}

route[RELAY] {
  if (!t_relay()) { sl_reply_error(); }
  exit;
}

onreply_route {
  xlog("L_NOTICE", "RPL $rs $rm from $pr:$si:$sp\\n");
  if (has_body("application/sdp")) xlog("L_NOTICE", "RBODY $rb\\n");
}
`;
}

async function waitBound(child: ChildProcess, port: number, proto: 'udp' | 'tcp', log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`kamailio exited before binding ${proto} ${port}:\n${log().slice(-4000)}`);
    const table = readFileSync(`/proc/net/${proto}`, 'utf8').split('\n').slice(1);
    if (table.some((l) => {
      const [, local, , state] = l.trim().split(/\s+/);
      return local?.endsWith(hex) === true && (proto === 'udp' || state === '0A');
    })) return;
    if (Date.now() > deadline) throw new Error(`kamailio did not bind ${proto} ${port} within 15 s:\n${log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
