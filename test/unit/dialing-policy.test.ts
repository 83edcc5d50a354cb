import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createTokens } from '../../src/accounts/tokens.js';
import { DialingPolicy, destinationRefusal, utcDayStart, type DialingPolicyOptions } from '../../src/calls/policy.js';
import { loadConfig } from '../../src/config/load.js';
import { databaseKinds, withAccountStore } from '../helpers/db.js';

const OPTIONS: DialingPolicyOptions = {
  allowedCountryCodes: ['1', '44'],
  deniedPrefixes: ['+1900', '+44070'],
  maxCallSeconds: 600,
  dailyMaxCallAttempts: 3,
  dailyMaxMinutes: 10,
};

test('destinations: allowed countries only, denied prefixes inside them, never the own number', () => {
  const code = (to: string) => destinationRefusal(to, '+15550001111', OPTIONS)?.code ?? 'ok';
  assert.equal(code('+15550002222'), 'ok');
  assert.equal(code('+447700900123'), 'ok');
  assert.equal(code('+33612345678'), 'DESTINATION_NOT_ALLOWED');
  assert.equal(code('+8816123456'), 'DESTINATION_NOT_ALLOWED');
  assert.equal(code('+19005550100'), 'DESTINATION_NOT_ALLOWED');
  assert.equal(code('+440701234567'), 'DESTINATION_NOT_ALLOWED');
  assert.equal(code('+15550001111'), 'DESTINATION_NOT_ALLOWED');
  assert.match(destinationRefusal('+33612345678', '', OPTIONS)!.message, /country codes \+1, \+44/);
  assert.match(destinationRefusal('+15550002222', '', { ...OPTIONS, allowedCountryCodes: [] })!.message, /country codes none/);
});

test('the default configuration protects out of the box', () => {
  const c = loadConfig({ env: {} }).calls;
  for (const to of ['+19005550100', '+19765550100', '+18095550100', '+18765550100', '+12685550100', '+447700900123', '+881612345678', '+870773100000']) {
    assert.equal(destinationRefusal(to, '+15550001111', c)?.code, 'DESTINATION_NOT_ALLOWED', to);
  }
  assert.equal(destinationRefusal('+12125550100', '+15550001111', c), undefined);
  assert.equal(c.maxCallSeconds, 7200);
});

for (const [kind, fresh] of databaseKinds) {
  describe(`daily caps on ${kind}`, () => {
    test('concurrent admissions of one user never pass more attempts than the cap; other users are not held up', () =>
      withAccountStore(fresh, async ({ users, records }) => {
        const alice = await users.create({ phone: '+15550001111', enrolled: true });
        const bob = await users.create({ phone: '+15550003333', enrolled: true });
        const policy = new DialingPolicy(records, OPTIONS);
        let n = 0;
        const attempt = async (userId: string) => {
          const admission = await policy.admit(userId);
          if (admission.refusal) return admission.refusal.code;
          await records.create({ id: `call_${userId}_${n++}`, userId, direction: 'outbound', counterpart: '+15550002222', createdAt: Date.now() });
          admission.done();
          return 'admitted';
        };
        const results = await Promise.all([...Array.from({ length: 12 }, () => attempt(alice.id)), attempt(bob.id)]);
        assert.equal(results.slice(0, 12).filter((r) => r === 'admitted').length, 3);
        assert.equal(results.slice(0, 12).filter((r) => r === 'DAILY_LIMIT').length, 9);
        assert.equal(results[12], 'admitted');
        assert.equal((await records.outboundTally(alice.id, utcDayStart(Date.now()), { now: Date.now(), maxCallMs: 600_000 })).attempts, 3);
      }));

    test('minutes: ended calls count whole, open ones up to now but not past the maximum length; what is left is shared', () =>
      withAccountStore(fresh, async ({ users, records }) => {
        const alice = await users.create({ phone: '+15550001111', enrolled: true });
        const now = Date.now();
        // 10 minutes a day; calls at most 2 minutes long.
        const policy = new DialingPolicy(records, { ...OPTIONS, dailyMaxCallAttempts: 100, maxCallSeconds: 120 }, () => now);
        const seed = async (id: string, answeredAt: number | null, endedAt: number | null) => {
          await records.create({ id, userId: alice.id, direction: 'outbound', counterpart: '+15550002222', createdAt: now });
          await records.update(id, { ...(answeredAt !== null && { answeredAt }), ...(endedAt !== null && { endedAt }) });
        };
        await seed('call_ended', now - 100_000, now - 40_000); // 60 s
        await seed('call_unanswered', null, now); // 0 s
        await seed('call_crashed', now - 3_600_000, null); // open for an hour: counts 120 s, not 3,600
        const first = await policy.admit(alice.id);
        first.done();
        assert.equal(first.refusal, undefined, '180 s of 600 s used');

        // Two live calls here, 30 s each so far: 600 - 180 - 60 = 360 s left, 180 s each.
        const plan = await policy.plan(alice.id, [
          { id: 'call_live1', answeredAt: now - 30_000 },
          { id: 'call_live2', answeredAt: now - 30_000 },
        ]);
        assert.deepEqual(Object.fromEntries(plan), { call_live1: now + 180_000, call_live2: now + 180_000 });

        await seed('call_long', now - 500_000, now - 80_000); // 420 s: 600 s in all
        const second = await policy.admit(alice.id);
        assert.equal(second.refusal?.code, 'DAILY_LIMIT');
        assert.match(second.refusal.message, /at most 10 minutes of calls a day/);
        const exhausted = await policy.plan(alice.id, [{ id: 'call_live3', answeredAt: now }]);
        assert.equal(exhausted.get('call_live3'), now, 'nothing left: the live call ends now');
      }));
  });
}

test('tokens: session() names the session; ended() tells revoked, expired and gone apart in one call', async () => {
  for (const [, fresh] of databaseKinds) {
    await withAccountStore(fresh, async ({ handle, users }) => {
      let clock = 1_000_000;
      const tokens = createTokens(handle.db, () => clock);
      const alice = await users.create({ phone: '+15550001111', enrolled: true });
      const live = await tokens.issue(alice.id, 60_000);
      const revoked = await tokens.issue(alice.id, 60_000);
      const short = await tokens.issue(alice.id, 1000);
      assert.deepEqual(await tokens.session(live.token), { sessionId: live.sessionId, userId: alice.id, expiresAt: live.expiresAt });
      await tokens.revoke(revoked.sessionId);
      clock += 1000;
      const ended = await tokens.ended([live.sessionId, revoked.sessionId, short.sessionId, 'ses_gone']);
      assert.deepEqual(Object.fromEntries(ended), { [revoked.sessionId]: 'revoked', [short.sessionId]: 'expired', ses_gone: 'revoked' });
    });
  }
});
