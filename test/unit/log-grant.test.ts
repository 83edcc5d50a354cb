import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

/** A media grant is a credential in a URL: wherever a URL is logged, the grant is blanked. */
test('media grants (mlg_) are blanked in log messages and fields, like session tokens', () => {
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const grant = 'mlg_bm90LWEtcmVhbC1ncmFudC1idXQtbG9uZy1lbm91Z2gtMTIz';
  log.warn({ url: `/v1/media/${grant}`, err: new Error(`GET /v1/media/${grant} failed`) }, `stream of /v1/media/${grant} cut`);
  const out = lines.join('');
  assert.ok(!out.includes(grant.slice(4)), out);
  assert.ok(out.split('/v1/media/mlg_[redacted]').length - 1 >= 3, out); // message, field, error (and its stack)
});
