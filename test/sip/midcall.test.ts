/**
 * Mid-call SDP from the trunk (both directions of call) and early media, against real sipp:
 * a changed offer reaches the call's `remoteOffer` and its answer goes back in the 200; a refresh
 * with the same SDP is answered with our SDP without asking the call; a refused offer gets 488 and
 * the call goes on.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSipp } from '../helpers/sipp.js';
import { ANSWER, CALL, cleanupsAfterAll, dialAndHangUp, inboundRecorder, outboundRecorder, SDP, startEndpoint } from './harness.js';


const cleanups = cleanupsAfterAll();

describe('mid-call offers and early media', { concurrency: true }, () => {
  for (const reject of [false, true]) {
    test(`inbound: re-INVITE/UPDATE from the trunk ${reject ? 'refused → 488, call goes on' : '→ remoteOffer → 200 with our answer'}; same SDP again → 200, listener not asked`, async () => {
      const rec = inboundRecorder((_o, leg) => leg.answer(ANSWER));
      const handler = reject
        ? (o: Parameters<typeof rec.handler>[0], leg: Parameters<typeof rec.handler>[1]) => ({ ...rec.handler(o, leg), remoteOffer: () => Promise.reject(new Error('no')) })
        : rec.handler;
      const t = await startEndpoint(handler);
      cleanups.push(() => t.ep.close());
      const res = await startSipp({
        scenario: 'uac-midcall', port: t.sippPort, remote: `127.0.0.1:${t.port}`, service: '+15550001111',
        keys: { rtp_port2: '42010', reject_offers: reject ? '1' : '0' },
      }).done;
      assert.equal(res.code, 0, res.errors + res.stderr);
      const ended = await rec.waitFor((e) => e.type === 'ended');
      assert.deepEqual(ended.type === 'ended' && ended.reason, 'remote-hangup');
      const offers = rec.events.filter((e) => e.type === 'reoffer');
      if (reject) {
        assert.equal(offers.length, 0); // the rejecting listener replaced the recording one
      } else {
        assert.equal(offers.length, 2, JSON.stringify(rec.events.map((e) => e.type)));
        assert.match(offers[0]!.type === 'reoffer' ? offers[0]!.sdp : '', /m=audio 42010 /);
        assert.match(offers[1]!.type === 'reoffer' ? offers[1]!.sdp : '', /a=sendonly/);
      }
      assert.equal(t.ep.activeCalls, 0);
    });

    test(`outbound: re-INVITE/UPDATE from the trunk ${reject ? 'refused → 488' : '→ remoteOffer → 200'}; refresh not passed on`, async () => {
      const t = await startEndpoint(() => { throw new Error('no inbound expected'); }, { username: '' });
      cleanups.push(() => t.ep.close());
      const run = startSipp({ scenario: 'uas-midcall', port: t.sippPort, remote: `127.0.0.1:${t.port}`, keys: { rtp_port2: '42020', reject_offers: reject ? '1' : '0' } });
      cleanups.push(() => run.kill());
      await run.ready;
      const l = outboundRecorder();
      const offers: string[] = [];
      if (reject) l.remoteOffer = (sdp) => { offers.push(sdp); return Promise.reject(new Error('no')); };
      t.ep.trunk.dial(CALL, l);
      const res = await run.done;
      assert.equal(res.code, 0, res.errors + res.stderr);
      await l.waitFor((e) => e.type === 'ended');
      const got = reject ? offers : l.events.flatMap((e) => (e.type === 'offer' ? [e.sdp] : []));
      // Refused or not, exactly the two changed offers reached the call; the refresh did not.
      assert.equal(got.length, 2);
      assert.match(got[0]!, /m=audio 42020 /);
      assert.match(got[1]!, /a=sendonly/);
      assert.deepEqual(l.events.map((e) => e.type).filter((x) => x !== 'offer'), ['answered', 'ended']);
    });
  }

  test('outbound: 183/180 with SDP → earlyMedia once per distinct SDP, ringing each time, then answered', async () => {
    const { result: res, events } = await dialAndHangUp(cleanups, 'uas-early-media', {
      keys: { rtp_port: '42030', early_port: '42032' },
      endpoint: { username: '' },
    });
    assert.equal(res.code, 0, res.errors + res.stderr);
    assert.deepEqual(events.map((e) => e.type), ['ringing', 'early', 'ringing', 'ringing', 'early', 'answered']);
    const early = events.flatMap((e) => (e.type === 'early' ? [e.sdp] : []));
    assert.match(early[0]!, /m=audio 42030 /);
    assert.match(early[1]!, /m=audio 42032 /);
  });
});
