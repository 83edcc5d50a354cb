import { test } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPIV3 } from 'openapi-types';
import { startApiRig } from './fixture.js';
import { WEBHOOK_ROUTE } from '../../src/webhooks/plugin.js';

/**
 * The OpenAPI document (issue 9 §11) is generated from the route schemas: it must be valid OpenAPI 3,
 * list every /v1 route the service registered (the provider webhook and signalling aside: they are not
 * the owner API) with every response status the route declares, and /docs must serve a page.
 */

test('/openapi.json is valid OpenAPI 3 and lists every /v1 route with its response schemas; /docs serves a page', async (t) => {
  const rig = await startApiRig();
  try {
    const res = await rig.request('GET', '/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const doc = (await res.json()) as OpenAPIV3.Document;
    assert.match(doc.openapi, /^3\./);
    // Throws with the first violation of the OpenAPI schema, or a $ref that resolves nowhere.
    await SwaggerParser.validate(structuredClone(doc) as never);

    const owned = rig.service.routes.filter((r) => r.url.startsWith('/v1/') && r.method !== 'HEAD' && r.url !== WEBHOOK_ROUTE && !r.url.includes('/signal'));
    assert.ok(owned.length > 0);
    for (const r of owned) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      const op = doc.paths[path]?.[r.method.toLowerCase() as OpenAPIV3.HttpMethods];
      assert.ok(op, `${r.method} ${r.url} is missing from /openapi.json`);
      const declared = Object.keys((r.schema?.response ?? {}) as Record<string, unknown>);
      assert.ok(declared.some((s) => s.startsWith('2')), `${r.method} ${r.url} declares no success response schema`);
      for (const status of declared) {
        const response = op.responses[status] as OpenAPIV3.ResponseObject | undefined;
        assert.ok(response, `${r.method} ${r.url}: response ${status} is missing from /openapi.json`);
        // 204 has no body, so nothing to describe.
        if (status === '204') continue;
        const media = Object.values(response.content ?? {});
        assert.ok(media.length > 0 && media.every((m) => m.schema), `${r.method} ${r.url}: response ${status} has no schema in /openapi.json`);
      }
      // Bearer routes keep the document's bearer requirement; only grant and public routes may drop it.
      if ((r.access ?? 'user') === 'user') assert.notDeepEqual(op.security, [], `${r.method} ${r.url} is a bearer route listed without security`);
    }
    t.diagnostic(`/openapi.json: ${owned.length} /v1 operations checked, ${Object.keys(doc.paths).length} paths in all`);

    const docs = await fetch(new URL('docs', rig.url));
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await docs.text(), /swagger/i);
    // The page's own spec is the same document.
    const fromDocs = (await (await fetch(new URL('docs/json', rig.url))).json()) as OpenAPIV3.Document;
    assert.deepEqual(Object.keys(fromDocs.paths).sort(), Object.keys(doc.paths).sort());
  } finally {
    await rig.close();
  }
});
