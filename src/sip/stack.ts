/**
 * Loads npm `sip` with a few source patches (DESIGN §8), once per process, and its digest helpers.
 * Each patch must match exactly: if the pinned version changes, loading fails loudly instead of
 * running unpatched.
 *
 * Patches:
 * - branch ids: `z9hG4bK` + 96 random bits (upstream: a number below 10^6, collides under load);
 * - timers G (INVITE server, non-2xx retransmits) and E (non-INVITE client) capped at T2 = 4 s;
 * - a request addressed to our own host is sent, not answered 404 (peers on the same IP, tests);
 * - UDP: a raw filter before parsing, no throw out of the datagram handler or out of `send`;
 * - TCP: no throw out of the data handler, no growth on a bad Content-Length, no console output;
 * - sockets handed to `onSocket` so the endpoint can attach error handlers and close connections;
 * - every request offered to `admit` before a server transaction exists, so a request we will not
 *   answer (wrong source) leaves no transaction behind waiting forever for our response;
 * - TLS: outgoing connections made by our `tlsConnect` (per-trunk CA, SNI and verification) with the
 *   URI's host name passed down from the resolver, the TLS server only when `tls_port` is set, and
 *   the TLS port (not the UDP one) in a TLS Via;
 * - a `sips:` URI without a transport parameter resolves to TLS only (upstream: UDP first), so a
 *   secure URI never goes out in cleartext;
 * - the 503 the stack makes up for a transport error (refused connection, failed TLS handshake)
 *   carries that error as `transportError`, so the failover can tell it from a trunk's own 503; and
 *   when the last resolved address answers 503, that response itself (its Retry-After, its
 *   `transportError`) reaches us, not a blank copy made up by the address search.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import vm from 'node:vm';
import type { DigestModule, SipModule } from './sip-types.js';
import { publicRandomHex } from '../crypto/random-pool.js';

const require = createRequire(import.meta.url);

let loaded: SipModule | undefined;

export function sipModule(): SipModule {
  loaded ??= loadPatched();
  return loaded;
}

export function digestModule(): DigestModule {
  return require('sip/digest') as DigestModule;
}

type Patch = readonly [from: string, to: string, count?: number];

const ERR = 'options.logger && options.logger.error && options.logger.error(e);';

const PATCHES: readonly Patch[] = [
  [
    "return ['z9hG4bK',Math.round(Math.random()*1000000)].join('');",
    "return 'z9hG4bK' + randomHex(12);",
  ],
  ['g = setTimeout(retry, t*2, t*2);', 'g = setTimeout(retry, Math.min(t*2, 4000), Math.min(t*2, 4000));'],
  [
    "e = setTimeout(function() { sm.signal('timerE', t*2); }, t*2);",
    "e = setTimeout(function() { sm.signal('timerE', Math.min(t*2, 4000)); }, Math.min(t*2, 4000));",
  ],
  ['if(hop.host === hostname)', 'if(false)', 2],
  [
    'function onMessage(data, rinfo) {',
    `function onMessage(data, rinfo) {
    try {
      if(options.rawFilter && !options.rawFilter(data, rinfo, function(b) {
        try { socket.send(b, 0, b.length, rinfo.port, rinfo.address); } catch(e) { ${ERR} }
      })) return;
      onMessageUnguarded(data, rinfo);
    } catch(e) { ${ERR} }
  }
  function onMessageUnguarded(data, rinfo) {`,
  ],
  [
    "socket.send(new Buffer.from(s, 'binary'), 0, s.length, remote.port, remote.address);",
    `try { var b = Buffer.from(s, 'binary'); socket.send(b, 0, b.length, remote.port, remote.address); } catch(e) { ${ERR} }`,
  ],
  ['socket.bind(port, address);', "options.onSocket && options.onSocket('udp', socket);\n  socket.bind(port, address);"],
  [
    'server.listen(options.port || 5060, options.address);',
    "options.onSocket && options.onSocket('tcp-server', server);\n      server.listen(options.port || 5060, options.address);",
  ],
  [
    'function(port, host, callback) { return net.connect(port, host, callback); },',
    "function(port, host, callback) { var c = net.connect(port, host, callback); options.onSocket && options.onSocket('tcp-conn', c); return c; },",
  ],
  [
    'var t = m.method ? transaction.getServer(m) : transaction.getClient(m);',
    'if(m.method && options.admit && !options.admit(m, remote)) return;\n      var t = m.method ? transaction.getServer(m) : transaction.getClient(m);',
  ],
  [
    'function(port, host, callback) { return tls.connect(port, host, options.tls, callback); },',
    "function(port, host, callback, hostname) { var c = options.tlsConnect ? options.tlsConnect(port, host, hostname) : tls.connect(port, host, options.tls, callback); options.onSocket && options.onSocket('tls-conn', c); return c; },",
  ],
  [
    'var server = tls.createServer(options.tls, callback);\n      server.listen(options.tls_port || 5061, options.address);',
    "if(!options.tls_port) return { close: function() {} };\n      var server = tls.createServer(options.tls, callback);\n      options.onSocket && options.onSocket('tls-server', server);\n      server.listen(options.tls_port, options.address);",
  ],
  ['return init(connect(remote.port, remote.address), remote)(error);', 'return init(connect(remote.port, remote.address, undefined, remote.hostname), remote)(error);'],
  [
    'm.headers.via[0].port = options.port || defaultPort(this.protocol);',
    "m.headers.via[0].port = (this.protocol === 'TLS' ? options.tls_port : options.port) || defaultPort(this.protocol);",
  ],
  [
    'function resolve(uri, action) {',
    'function resolve(uri, action) {\n  var done = action;\n  action = function(a) { a.forEach(function(x) { x.hostname = uri.host; }); done(a); };',
  ],
  ["var protocol = uri.params.transport || 'UDP';", "var protocol = uri.params.transport || (uri.schema === 'sips' ? 'TLS' : 'UDP');"],
  [
    "var protocols = uri.params.transport ? [uri.params.transport] : ['UDP', 'TCP', 'TLS'];",
    "var protocols = uri.params.transport ? [uri.params.transport] : uri.schema === 'sips' ? ['TLS'] : ['UDP', 'TCP', 'TLS'];",
  ],
  [
    "var protocols = uri.params.transport ? [uri.params.transport] : ['tcp', 'udp', 'tls'];",
    "var protocols = uri.params.transport ? [uri.params.transport] : uri.schema === 'sips' ? ['tls'] : ['tcp', 'udp', 'tls'];",
  ],
  [
    'client.message(makeResponse(rq, 503));',
    "var failed = makeResponse(rq, 503); failed.transportError = String((err && err.message) || err || 'transport error'); client.message(failed);",
  ],
  [
    // A connect that throws at once (a socket that cannot even be opened) is a transport failure too.
    'onresponse(address.local ? makeResponse(rq, 430) : makeResponse(rq, 503));',
    "var thrown = makeResponse(rq, address.local ? 430 : 503); thrown.transportError = String((e && e.message) || e || 'transport error'); onresponse(thrown);",
  ],
  ['var lastStatusCode;', 'var lastStatusCode, lastResponse;'],
  ['lastStatusCode = rs.status;', 'lastStatusCode = rs.status; lastResponse = rs;'],
  [
    'onresponse(makeResponse(rq, lastStatusCode || 404));',
    'onresponse(lastResponse && lastResponse.status === lastStatusCode ? lastResponse : makeResponse(rq, lastStatusCode || 404));',
  ],
  ['console.log("Flood attempt, destroying stream");', ''],
  ['console.log("err: ", err);', ''],
  [
    "stream.on('data', makeStreamParser( onMessage, onFlood, maxBytesHeaders, maxContentLength));",
    `var parser = makeStreamParser(onMessage, onFlood, maxBytesHeaders, maxContentLength);
    stream.on('data', function(d) { try { parser(d); } catch(e) { stream.destroy(); } });`,
  ],
  [
    "if (m.headers['content-length'] > maxContentLength) {",
    "if (!(m.headers['content-length'] >= 0 && m.headers['content-length'] <= maxContentLength)) { r = ''; state = function() {}; onFlood(); return; }\n        if (false) {",
  ],
];

function loadPatched(): SipModule {
  const path = require.resolve('sip/sip.js');
  let src = readFileSync(path, 'utf8');
  for (const [from, to, count = 1] of PATCHES) {
    const found = src.split(from).length - 1;
    if (found !== count) throw new Error(`sip.js patch: expected ${count} match(es) of ${JSON.stringify(from)}, found ${found}`);
    src = src.split(from).join(to);
  }
  const wrapper = vm.runInThisContext(`(function (exports, require, module, __filename, __dirname, randomHex) {${src}\n})`, {
    filename: `${path}?patched`,
  }) as (e: object, r: NodeJS.Require, m: { exports: object }, f: string, d: string, randomHex: (n: number) => string) => void;
  const mod = { exports: {} };
  wrapper(mod.exports, createRequire(path), mod, path, dirname(path), publicRandomHex);
  return mod.exports as SipModule;
}
