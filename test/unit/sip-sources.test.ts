import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MonologueError } from '../../src/errors.js';
import { AllowedSources } from '../../src/sip/sources.js';

test('allowed sources: single addresses and CIDR ranges, IPv4 and IPv6, IPv4-mapped and bracketed forms', () => {
  const s = new AllowedSources(['127.0.0.1', '192.0.2.0/24', '2001:db8::/32', ' 198.51.100.7 ', '::1'], ['203.0.113.9']);
  for (const yes of ['127.0.0.1', '192.0.2.0', '192.0.2.255', '::ffff:192.0.2.44', '2001:db8::1', '2001:DB8:ffff::9', '[2001:db8::5]', '198.51.100.7', '::1', '203.0.113.9']) {
    assert.equal(s.has(yes), true, yes);
  }
  for (const no of ['127.0.0.5', '192.0.3.1', '2001:db9::1', '::ffff:127.0.0.66', 'trunk.example.com', '', '198.51.100.8', '::2']) {
    assert.equal(s.has(no), false, no);
  }
});

test('allowed sources: verdicts stay right when asked again and through a flood of distinct addresses', () => {
  const s = new AllowedSources(['10.0.0.0/16']);
  for (let i = 0; i < 5000; i++) {
    const inside = `10.0.${i % 256}.${(i >> 8) % 256}`;
    const outside = `10.1.${i % 256}.${(i >> 8) % 256}`;
    assert.equal(s.has(inside), true, inside);
    assert.equal(s.has(outside), false, outside);
    assert.equal(s.has('10.0.0.1'), true);
    assert.equal(s.has('10.1.0.1'), false);
  }
});

test('allowed sources: an entry that is neither an address nor a range is refused with CONFIG_INVALID naming it', () => {
  for (const bad of ['trunk.example.com', '10.0.0.0/33', '10.0.0.0/', '10.0.0/8', '2001:db8::/129', '1.2.3.4/8/8', '10.0.0.0/-1', '*']) {
    assert.throws(() => new AllowedSources(['127.0.0.1', bad]), (err: unknown) => {
      assert.ok(err instanceof MonologueError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.ok(err.message.includes(JSON.stringify(bad)) && err.message.includes('sip.trunk.allowedSources'), err.message);
      return true;
    }, bad);
  }
});
