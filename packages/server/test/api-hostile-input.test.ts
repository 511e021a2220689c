import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, createApiKey, expectError } from './helpers/api-kit.js';
import { createAccount, startHerald, type TestHerald } from './helpers/herald.js';

/**
 * Input that no route may turn into a 500 or into another error shape (SPEC §3), on both
 * backends: PostgreSQL refuses a NUL character in any text value, which SQLite stores, so a
 * NUL that reaches a query is a 500 there unless it is refused first.
 */
let h: TestHerald;
let acc: string;
let key: string;
let hook: string;
beforeAll(async () => {
  h = await startHerald({}, { worker: false });
  acc = await createAccount(h);
  key = (await createApiKey(h, acc)).key;
  const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: 'https://example.com/h', events: ['*'] }, { token: key });
  expect(w.status).toBe(201);
  hook = w.body.id;
});
afterAll(async () => {
  await h?.close();
});

describe('a NUL character is a 400 wherever it comes', () => {
  const NUL = '%00';
  const cases: Array<[string, () => [string, string, unknown?, boolean?]]> = [
    ['a query filter', () => ['GET', `/v1/accounts/${acc}/deliveries?event_type=${NUL}`]],
    ['a webhook filter', () => ['GET', `/v1/accounts/${acc}/deliveries?webhook_id=wh_${NUL}`]],
    ['a cursor', () => ['GET', `/v1/accounts/${acc}/deliveries?cursor=${NUL}`]],
    ['the accounts cursor', () => ['GET', `/v1/accounts?cursor=${NUL}`, undefined, true]],
    ['an account id', () => ['GET', `/v1/accounts/acc_${NUL}`, undefined, true]],
    ['a webhook id', () => ['GET', `/v1/accounts/${acc}/webhooks/wh_${NUL}`]],
    ['a delivery id', () => ['GET', `/v1/accounts/${acc}/deliveries/dlv_${NUL}`]],
    ['an event type name', () => ['GET', `/v1/event-types/a${NUL}b`, undefined, true]],
  ];
  it.each(cases)('in %s', async (_what, make) => {
    const [method, path, body, admin] = make();
    const r = await h.api(method, path, body, { token: admin ? undefined : key });
    expectError(r, 400, 'invalid_request');
    expect(r.body.error.message).toMatch(/NUL/); // the guard's answer, not a later check's
  });

  it.each([
    ['an account name', () => ['POST', '/v1/accounts', { name: 'a\u0000b', plan: 'pro' }, true] as const],
    ['a webhook description', () => ['POST', `/v1/accounts/${acc}/webhooks`, { url: 'https://example.com/h', events: ['*'], description: 'a\u0000b' }, false] as const],
    ['a webhook secret', () => ['PATCH', `/v1/accounts/${acc}/webhooks/${hook}`, { secret: `whsec_${'a'.repeat(20)}\u0000b` }, false] as const],
    ['an event type', () => ['POST', '/v1/event-types', { name: 'x.y', description: 'a\u0000b' }, true] as const],
    ['a published event type', () => ['POST', `/v1/accounts/${acc}/events`, { type: 'content.\u0000generated', data: {} }, true] as const],
  ])('in a body: %s, refused with the same shape, never a 500', async (_what, make) => {
    const [method, path, body, admin] = make();
    const r = await h.api(method, path, body, { token: admin ? undefined : key });
    expectError(r, 400, 'invalid_request');
    expect(r.body.error.message).toMatch(/NUL/);
  });

  // A NUL inside an event's data is kept (it is stored as the JSON escape): api-events.test.ts.
});

describe('other input at the edges', () => {
  it('a path parameter longer than the router takes answers in the one error shape', async () => {
    const r = await h.api('GET', `/v1/accounts/${acc}/webhooks/wh_${'x'.repeat(600)}`, undefined, { token: key });
    expectError(r, 400, 'invalid_request');
  });

  it('a route that takes no body refuses fields sent to it, and accepts none or {}', async () => {
    const r = await h.api('POST', `/v1/accounts/${acc}/api-keys`, { name: 'ci key' });
    expectError(r, 400, 'invalid_request');
    expect(r.body.error.message).toContain('takes no body');
    expectError(await h.api('POST', `/v1/accounts/${acc}/webhooks/${hook}/test`, [1]), 400, 'invalid_request');
    expect(await count(h, 'api_keys', 'account_id = ?', acc)).toBe(1); // the key made in beforeAll
    expect((await h.api('POST', `/v1/accounts/${acc}/api-keys`, {})).status).toBe(201);
    expect((await h.api('POST', `/v1/accounts/${acc}/api-keys`)).status).toBe(201);
  });

  it('a path that is not valid percent-encoding answers in the one error shape', async () => {
    expectError(await h.api('GET', `/v1/accounts/${acc}/webhooks/%E0%A4%A`, undefined, { token: key }), 400, 'invalid_request');
  });

  it('an event type schema nested too deep is a 422, not a stack overflow; as deep as data may be is fine', async () => {
    const nested = (depth: number) => '{"items":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
    const body = (name: string, depth: number) => JSON.stringify({ name, schema: 'S' }).replace('"S"', nested(depth));
    expectError(await h.api('POST', '/v1/event-types', undefined, { raw: body('deep.schema', 100_000) }), 422, 'validation_failed');
    expectError(await h.api('POST', '/v1/event-types', undefined, { raw: body('deep.schema', 129) }), 422, 'validation_failed');
    const ok = await h.api('POST', '/v1/event-types', undefined, { raw: body('deep.schema', 128) });
    expect(ok.status).toBe(201);
    expect((await h.api('GET', '/v1/event-types/deep.schema')).status).toBe(200);
  });
});

describe('answers Fastify or Node give before any route, in the one error shape', () => {
  /** Writes `head` on a fresh connection and returns all that comes back until it closes (or `ms`). */
  function raw(target: TestHerald, head: string, ms = 3000, midway?: () => void, tail = ''): Promise<string> {
    const u = new URL(target.url);
    return new Promise((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname);
      let got = '';
      const t = setTimeout(() => (sock.destroy(), resolve(got)), ms);
      sock.on('data', (d) => (got += d.toString('latin1')));
      sock.on('close', () => (clearTimeout(t), resolve(got)));
      sock.on('error', reject);
      sock.write(head);
      if (midway) {
        midway();
        setTimeout(() => sock.write(tail), 100);
      }
    });
  }
  const body = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

  it('request headers too large: 431', async () => {
    const answer = await raw(h, `GET /v1/meta HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(body(answer)).toEqual({ error: { code: 'invalid_request', message: 'the request headers are too large' } });
  });

  it('a request that is not valid HTTP: 400', async () => {
    const answer = await raw(h, 'GET /v1/meta HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(body(answer).error.code).toBe('invalid_request');
  });

  it('a path Fastify cannot route still carries its request id', async () => {
    const r = await h.api('GET', `/v1/accounts/${acc}/webhooks/%E0%A4%A`, undefined, { token: key });
    expect(r.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('a request that arrives while the process shuts down: 503 with Retry-After, and the connection closed', async () => {
    const closing = await startHerald({}, { worker: false });
    let closed: Promise<void> | undefined;
    // The head arrives before close starts (so the connection is not idle), its end after.
    const answer = await raw(closing, `GET /v1/meta HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n`, 3000, () => {
      setTimeout(() => (closed = closing.close()), 20);
    }, '\r\n');
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(body(answer).error.code).toBe('unavailable');
  });
});

describe('a caller without credentials', () => {
  /**
   * Sends only the head of a request that announces a body of `length` bytes, and returns what
   * comes back within `ms` (empty if nothing): a server that read the body before checking
   * credentials would still be waiting for it.
   */
  function headOnly(path: string, headers: Record<string, string>, length: number, ms = 3000): Promise<string> {
    const u = new URL(h.url);
    return new Promise((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname);
      let got = '';
      const done = () => {
        clearTimeout(t);
        sock.destroy();
        resolve(got);
      };
      const t = setTimeout(done, ms);
      sock.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n') && /\}\}$/.test(got)) done();
      });
      sock.on('error', reject);
      const lines = [`POST ${path} HTTP/1.1`, `Host: ${u.host}`, 'Content-Type: application/json', `Content-Length: ${length}`];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      sock.write(lines.join('\r\n') + '\r\n\r\n');
    });
  }

  it('is answered 401 before Herald reads a byte of the body it announces', async () => {
    for (const headers of [{}, { Authorization: 'Bearer not-a-real-token' }] as Array<Record<string, string>>) {
      const answer = await headOnly(`/v1/accounts/${acc}/events`, headers, 4 * 1024 * 1024);
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer).toContain('"code":"unauthorized"');
    }
  });

  it('with a key of another account is answered 404 before the body too', async () => {
    const other = await createAccount(h);
    const answer = await headOnly(`/v1/accounts/${other}/events`, { Authorization: `Bearer ${key}` }, 4 * 1024 * 1024);
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(answer).toContain('"code":"account_not_found"');
  });

  it('on a path no route matches is answered 404 before the body too', async () => {
    for (const path of ['/v1/no-such-route', `/v1/accounts/${acc}/webhooks/${hook}/no-such-action`]) {
      const answer = await headOnly(path, { Authorization: `Bearer ${key}` }, 1024 * 1024 - 1);
      expect(answer).toMatch(/^HTTP\/1\.1 404 /);
      expect(answer).toContain('"code":"not_found"');
      expect(answer).toMatch(/x-request-id: /i);
    }
  });
});

describe('HERALD_API_RATE_LIMIT', () => {
  it('refuses a key past its rate with 429 and Retry-After, before the body, and leaves other keys and the admin token alone', async () => {
    const t = await startHerald({ HERALD_API_RATE_LIMIT: '1' }, { worker: false });
    try {
      const [a, b] = [await createAccount(t), await createAccount(t)];
      const [ka, kb] = [(await createApiKey(t, a)).key, (await createApiKey(t, b)).key];
      const list = (acc: string, token?: string) => t.api('GET', `/v1/accounts/${acc}/webhooks`, undefined, { token });
      // 12 at once: the bucket holds one, and refills one a second (slow, so that a loaded
      // machine cannot refill it between the steps below).
      const burst = await Promise.all(Array.from({ length: 12 }, () => list(a, ka)));
      const ok = burst.filter((r) => r.status === 200).length;
      expect(ok).toBeGreaterThanOrEqual(1);
      expect(ok).toBeLessThanOrEqual(2);
      const refused = burst.find((r) => r.status === 429)!;
      expectError(refused, 429, 'rate_limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Over its rate, a key is refused before the body is read, and nothing is stored.
      const u = new URL(t.url);
      const head = await new Promise<string>((resolve, reject) => {
        const sock = connect(Number(u.port), u.hostname);
        let got = '';
        const done = () => (clearTimeout(timer), sock.destroy(), resolve(got));
        const timer = setTimeout(done, 3000);
        sock.on('data', (d) => {
          got += d.toString('latin1');
          if (/\}\}$/.test(got)) done();
        });
        sock.on('error', reject);
        sock.write(`POST /v1/accounts/${a}/webhooks HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nAuthorization: Bearer ${ka}\r\n\r\n`);
      });
      expect(head).toMatch(/^HTTP\/1\.1 429 /);
      expect(head).toMatch(/\r\nretry-after: [1-9]/i);
      const create = await t.api('POST', `/v1/accounts/${a}/webhooks`, { url: 'https://example.com/h', events: ['*'] }, { token: ka });
      expect(create.status).toBe(429);
      expect(await count(t, 'webhooks', 'account_id = ?', a)).toBe(0);
      // Another account's key, and the admin token, are not held back.
      expect((await list(b, kb)).status).toBe(200);
      for (let i = 0; i < 10; i++) expect((await list(a)).status).toBe(200);
      // A second later the key may go on.
      await new Promise((r) => setTimeout(r, 1100));
      expect((await list(a, ka)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
