/**
 * Call setup time: `call.start` sent → `call.answered` received, for outbound calls placed by a real
 * libwebrtc dialer through the whole service (WebSocket, rtpengine offer/answer, SIP INVITE) against a sipp
 * trunk that answers at once. Prints p50/p95/max and, as its last line, one JSON object.
 *
 *   npm run bench:setup            (CALLS=50 by default; needs rtpengine and sipp)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { freeUdpPort, freeUdpPortRange } from '../test/helpers/ports.js';
import { startSipp, freePort } from '../test/helpers/sipp.js';
import { WrtcDialer } from '../test/helpers/wrtc-dialer.js';

const CALLS = Number(process.env.CALLS ?? 50);

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'monologue-bench-'));
  const sippPort = await freePort();
  const range = await freeUdpPortRange(100);
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      log: { level: 'warn' },
      http: { port: 0 },
      metrics: { port: 0 },
      sip: { port: await freeUdpPort(), trunk: { host: '127.0.0.1', port: sippPort } },
      media: { rtpengine: { ngPort: await freeUdpPort(), portMin: range.min, portMax: range.max } },
      calls: { drainMs: 1000 },
    },
  });
  const service = await startService(config, createLogger('warn'));
  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const sipp = startSipp({ scenario: 'uas-answer', port: sippPort, calls: CALLS, keys: { rtp_port: String(sink.address().port) }, timeoutMs: 300_000 });
  const user = await service.users.create({ phone: '+15550001111', enrolled: true });
  const { token } = await service.tokens.issue(user.id, 3_600_000);
  const dialer = new WrtcDialer(`ws://127.0.0.1:${service.httpPort}/v1/signal`, token);
  const samples: number[] = [];
  try {
    await sipp.ready;
    await dialer.connect();
    for (let i = 0; i < CALLS; i++) {
      const call = await dialer.call('+15550002222');
      samples.push(call.setupMs!);
      dialer.hangup(call.callId);
      await dialer.waitEnded(call.callId);
    }
  } finally {
    dialer.close();
    sipp.kill();
    sink.close();
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  samples.sort((a, b) => a - b);
  const pct = (p: number) => samples[Math.min(samples.length - 1, Math.ceil((p / 100) * samples.length) - 1)]!;
  const out = { bench: 'call-setup', calls: samples.length, p50_ms: round(pct(50)), p95_ms: round(pct(95)), max_ms: round(samples.at(-1)!) };
  console.log(`call setup over ${out.calls} calls: p50 ${out.p50_ms} ms, p95 ${out.p95_ms} ms, max ${out.max_ms} ms`);
  console.log(JSON.stringify(out));
}

const round = (n: number) => Math.round(n * 10) / 10;

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
