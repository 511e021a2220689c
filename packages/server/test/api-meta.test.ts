import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, type TestHerald } from './helpers/herald.js';
import { createApiKey, expectError } from './helpers/api-kit.js';

/** The documentation, operational and meta endpoints of SPEC §3, and the one error shape. */
let h: TestHerald;
beforeAll(async () => {
  h = await startHerald({ HERALD_EGRESS_IPS: '203.0.113.0/24, 2001:db8::/32' }, { worker: false });
});
afterAll(async () => {
  await h.close();
});

/**
 * Every route of SPEC §3 as OpenAPI writes it, with the request body properties it documents.
 * `POST /v1/accounts/{account}/portal-sessions` is not here: the dashboard plugin
 * (src/dashboard) serves it with the sign-in it opens, and its own tests cover it.
 */
const SPEC_ROUTES: Array<{ method: string; path: string; status: string; body?: string[]; required?: string[]; query?: string[] }> = [
  { method: 'post', path: '/v1/accounts', status: '201', body: ['name', 'plan'], required: ['name', 'plan'] },
  { method: 'get', path: '/v1/accounts/{account}', status: '200' },
  { method: 'patch', path: '/v1/accounts/{account}', status: '200', body: ['name', 'plan'], required: [] },
  { method: 'delete', path: '/v1/accounts/{account}', status: '204' },
  { method: 'post', path: '/v1/accounts/{account}/api-keys', status: '201' },
  { method: 'get', path: '/v1/event-types', status: '200' },
  { method: 'post', path: '/v1/event-types', status: '201', body: ['name', 'description', 'schema'], required: ['name'] },
  { method: 'get', path: '/v1/event-types/{name}', status: '200' },
  { method: 'get', path: '/v1/accounts/{account}/webhooks', status: '200' },
  { method: 'post', path: '/v1/accounts/{account}/webhooks', status: '201', body: ['url', 'secret', 'events', 'headers', 'description', 'enabled', 'rate_limit'], required: ['url', 'events'] },
  { method: 'get', path: '/v1/accounts/{account}/webhooks/{webhook}', status: '200' },
  { method: 'patch', path: '/v1/accounts/{account}/webhooks/{webhook}', status: '200', body: ['url', 'secret', 'events', 'headers', 'description', 'enabled', 'rate_limit'], required: [] },
  { method: 'delete', path: '/v1/accounts/{account}/webhooks/{webhook}', status: '204' },
  { method: 'get', path: '/v1/accounts/{account}/webhooks/{webhook}/secret', status: '200' },
  // Beyond SPEC §3: secret rotation with an overlap.
  { method: 'post', path: '/v1/accounts/{account}/webhooks/{webhook}/secret/rotate', status: '200', body: ['secret', 'previous_secret_valid_for'], required: [] },
  { method: 'post', path: '/v1/accounts/{account}/webhooks/test', status: '200', body: ['url', 'secret', 'headers', 'webhook_id'], required: ['url'] },
  { method: 'post', path: '/v1/accounts/{account}/webhooks/{webhook}/test', status: '200' },
  { method: 'post', path: '/v1/accounts/{account}/events', status: '202', body: ['type', 'data'], required: ['type', 'data'] },
  { method: 'get', path: '/v1/accounts/{account}/deliveries', status: '200', query: ['webhook_id', 'event_type', 'status', 'limit', 'cursor'] },
  { method: 'get', path: '/v1/accounts/{account}/deliveries/{delivery}', status: '200' },
  { method: 'post', path: '/v1/accounts/{account}/deliveries/{delivery}/redeliver', status: '202' },
  { method: 'get', path: '/v1/meta', status: '200' },
  { method: 'get', path: '/healthz', status: '200' },
  { method: 'get', path: '/readyz', status: '200' },
  { method: 'get', path: '/metrics', status: '200' },
];

describe('OpenAPI document', () => {
  let doc: any;
  beforeAll(async () => {
    const r = await fetch(`${h.url}/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    doc = await r.json();
  });

  it('is OpenAPI 3.1 with the bearer scheme', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBe('Herald API');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents every SPEC §3 route with its success status, request schema and parameters', () => {
    for (const r of SPEC_ROUTES) {
      const op = doc.paths[r.path]?.[r.method];
      expect(op, `${r.method.toUpperCase()} ${r.path}`).toBeDefined();
      expect(Object.keys(op.responses), `${r.method} ${r.path}`).toContain(r.status);
      if (r.body) {
        const schema = op.requestBody.content['application/json'].schema;
        expect(Object.keys(schema.properties).sort(), `${r.method} ${r.path}`).toEqual([...r.body].sort());
        expect((schema.required ?? []).sort()).toEqual([...r.required!].sort());
      } else {
        expect(op.requestBody, `${r.method} ${r.path} takes no body`).toBeUndefined();
      }
      for (const name of r.path.match(/\{(\w+)\}/g)?.map((p) => p.slice(1, -1)) ?? []) {
        expect(op.parameters.some((p: any) => p.in === 'path' && p.name === name && p.required), `${r.path} {${name}}`).toBe(true);
      }
      for (const name of r.query ?? []) expect(op.parameters.some((p: any) => p.in === 'query' && p.name === name), `${r.path} ?${name}`).toBe(true);
    }
  });

  it('says which request bodies may be left out: only the secret rotation of these routes', () => {
    const optional: string[] = [];
    for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        expect(op, `${method} ${path}`).not.toHaveProperty('x-body-optional');
        if (op.requestBody && op.requestBody.required === false) optional.push(`${method} ${path}`);
      }
    }
    expect(optional).toEqual(['post /v1/accounts/{account}/webhooks/{webhook}/secret/rotate']);
    expect(doc.paths['/v1/accounts/{account}/webhooks/{webhook}'].patch.requestBody.required).toBe(true);
  });

  it('marks /v1 operations as needing a bearer token, and documents their error answers', () => {
    for (const r of SPEC_ROUTES.filter((x) => x.path.startsWith('/v1/'))) {
      const op = doc.paths[r.path][r.method];
      expect(op.security, `${r.method} ${r.path}`).toEqual([{ bearer: [] }]);
      const err = op.responses['401']?.content?.['application/json']?.schema;
      expect(err?.properties?.error?.required?.sort(), `${r.method} ${r.path} documents 401`).toEqual(['code', 'message']);
      // Any credentialed call may meet HERALD_API_RATE_LIMIT.
      expect(op.responses['429']?.content?.['application/json']?.schema, `${r.method} ${r.path} documents 429`).toEqual(err);
      expect(op.responses['429'].headers?.['Retry-After'], `${r.method} ${r.path} 429 says Retry-After`).toBeDefined();
    }
    // Publishing refuses at once while the process's publish queue is full.
    expect(Object.keys(doc.paths['/v1/accounts/{account}/events'].post.responses)).toContain('503');
    for (const p of ['/healthz', '/readyz', '/metrics']) expect(doc.paths[p].get.security).toBeUndefined();
  });

  it('docs/API.md has a section for every operation', () => {
    const page = readFileSync(new URL('../../../docs/API.md', import.meta.url), 'utf8');
    const headings = page.split('\n').filter((l) => l.startsWith('### '));
    const missing: string[] = [];
    for (const [path, ops] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const op = `\`${method.toUpperCase()} ${path}\``;
        if (!headings.some((h) => h.includes(op))) missing.push(op);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every $ref points at a schema the document defines', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeDefined();
  });
});

describe('operational endpoints', () => {
  it('/docs serves the rendered reference as HTML', async () => {
    const r = await fetch(`${h.url}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(await r.text()).toMatch(/<html/i);
  });

  it('/healthz and /readyz answer without credentials', async () => {
    expect(await (await fetch(`${h.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('/readyz answers 503 with Retry-After when the database is gone, while /healthz stays up', async () => {
    const lone = await startHerald({}, { worker: false });
    try {
      await lone.herald.ctx.store.close(); // a real database that stops answering
      const r = await fetch(`${lone.url}/readyz`);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(await r.json()).toEqual({ error: { code: 'unavailable', message: expect.stringMatching(/database/) } });
      expect((await fetch(`${lone.url}/healthz`)).status).toBe(200);
      // The scrape still answers, with the process's own figures and without the queue's.
      const m = await fetch(`${lone.url}/metrics`);
      expect(m.status).toBe(200);
      const text = await m.text();
      expect(text).toMatch(/^herald_http_requests_total\{/m);
      expect(text).not.toMatch(/^herald_queue_depth\{/m);
    } finally {
      await lone.close();
    }
  });

  it('/metrics is Prometheus text with request counts and queue depth', async () => {
    await h.api('GET', '/v1/event-types');
    const r = await fetch(`${h.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(text).toMatch(/^# TYPE herald_http_requests_total counter$/m);
    expect(text).toMatch(/^herald_http_requests_total\{[^}]*route="\/v1\/event-types"[^}]*\} \d+$/m);
    expect(text).toMatch(/^# TYPE herald_queue_depth gauge$/m);
    expect(text).toMatch(/^herald_queue_depth\{status="pending_first"\} \d+$/m);
  });

  it('/metrics counts queued deliveries', async () => {
    const depth = async () => Number(/^herald_queue_depth\{status="pending_first"\} (\d+)$/m.exec(await (await fetch(`${h.url}/metrics`)).text())![1]);
    const before = await depth();
    const acc = await createAccount(h);
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: 'https://93.184.216.34/hook', events: ['*'] });
    await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
    expect(await depth()).toBe(before + 1); // no worker here: it stays queued
  });
});

describe('/v1/meta', () => {
  it('shows the version and HERALD_EGRESS_IPS to any credential', async () => {
    const acc = await createAccount(h);
    const { key } = await createApiKey(h, acc);
    for (const token of [undefined, key]) {
      const r = await h.api('GET', '/v1/meta', undefined, { token });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), egress_ip_ranges: ['203.0.113.0/24', '2001:db8::/32'] });
    }
    expectError(await h.api('GET', '/v1/meta', undefined, { token: null }), 401, 'unauthorized');
  });

  it('also states the delivery limits', async () => {
    const r = await h.api('GET', '/v1/meta');
    expect(r.body).toMatchObject({ max_attempts: 5, timeout_ms: 10000, max_payload_bytes: 5242880 });
    expect(r.body.retry_schedule_ms).toEqual([60000, 600000, 6000000, 60000000]);
  });
});

describe('error shape', () => {
  it('an unknown route is a 404 in the same shape', async () => {
    expectError(await h.api('GET', '/v1/nothing-here'), 404, 'not_found');
    expectError(await h.api('PUT', '/v1/accounts'), 404, 'not_found');
  });

  it('validation errors name the problem without echoing secrets', async () => {
    const acc = await createAccount(h);
    const r = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: 'https://93.184.216.34/', events: ['*'], secret: 'short-secret' });
    expectError(r, 400, 'invalid_request');
    expect(r.body.error.message).toMatch(/secret/);
    expect(r.body.error.message).not.toContain('short-secret');
  });

  it('every answer carries a request id, a different one each time', async () => {
    const r = await h.api('GET', '/v1/nothing-here');
    const r2 = await h.api('GET', '/v1/nothing-here');
    expect(r.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{12}[0-9a-z]{6,}$/);
    expect(r2.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{12}[0-9a-z]{6,}$/);
    expect(r2.headers.get('x-request-id')).not.toBe(r.headers.get('x-request-id'));
  });
});
