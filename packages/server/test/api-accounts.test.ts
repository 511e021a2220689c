import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, createAccount, startHerald, type TestHerald } from './helpers/herald.js';
import { count, createApiKey, databaseContains, expectError, query } from './helpers/api-kit.js';

// SPEC §3: accounts, plans, API keys and the event catalog, over real HTTP on a real database
// (a SQLite file, or PostgreSQL with HERALD_TEST_BACKEND=postgres).
let h: TestHerald;
beforeAll(async () => {
  h = await startHerald({}, { worker: false });
});
afterAll(async () => {
  await h.close();
});

describe('authentication', () => {
  it('answers 401 with the error shape and a Bearer challenge without credentials', async () => {
    const r = await h.api('GET', '/v1/accounts', undefined, { token: null });
    expectError(r, 401, 'unauthorized');
    expect(r.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers 401 for a malformed Authorization header, another scheme, or an unknown token', async () => {
    for (const authorization of ['Bearer', 'Bearer a b', 'Basic YWRtaW46YWRtaW4=', `Token ${ADMIN_TOKEN}`, 'Bearer not-the-admin-token']) {
      expectError(await h.api('GET', '/v1/accounts', undefined, { token: null, headers: { authorization } }), 401, 'unauthorized');
    }
  });

  it('checks credentials before the body, so an anonymous caller learns nothing from validation', async () => {
    expectError(await h.api('POST', '/v1/accounts', { plan: 'gold' }, { token: null }), 401, 'unauthorized');
    const before = await count(h, 'accounts');
    expectError(await h.api('POST', '/v1/accounts', { name: 'x', plan: 'pro' }, { token: null }), 401, 'unauthorized');
    expect(await count(h, 'accounts')).toBe(before);
  });
});

describe('accounts', () => {
  it('creates an account with the SPEC shape', async () => {
    const r = await h.api('POST', '/v1/accounts', { name: 'Acme', plan: 'pro' });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ id: expect.stringMatching(/^acc_/), name: 'Acme', plan: 'pro', created_at: expect.any(String), updated_at: expect.any(String) });
    expect(new Date(r.body.created_at).toISOString()).toBe(r.body.created_at);
  });

  it('accepts each plan and refuses any other', async () => {
    for (const plan of ['free', 'pro', 'enterprise']) expect((await h.api('POST', '/v1/accounts', { name: plan, plan })).body.plan).toBe(plan);
    const before = await count(h, 'accounts');
    expectError(await h.api('POST', '/v1/accounts', { name: 'x', plan: 'gold' }), 400, 'invalid_request');
    expectError(await h.api('POST', '/v1/accounts', { name: '', plan: 'pro' }), 400, 'invalid_request');
    expectError(await h.api('POST', '/v1/accounts', { plan: 'pro' }), 400, 'invalid_request');
    expectError(await h.api('POST', '/v1/accounts', { name: 'x', plan: 'pro', owner: 'me' }), 400, 'invalid_request');
    expect(await count(h, 'accounts')).toBe(before);
  });

  it('reads, renames, changes the plan of, and deletes an account', async () => {
    const id = await createAccount(h, 'free', 'Before');
    expect((await h.api('GET', `/v1/accounts/${id}`)).body).toMatchObject({ id, name: 'Before', plan: 'free' });

    const p = await h.api('PATCH', `/v1/accounts/${id}`, { name: 'After', plan: 'enterprise' });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ id, name: 'After', plan: 'enterprise' });
    expect((await h.api('GET', `/v1/accounts/${id}`)).body).toMatchObject({ name: 'After', plan: 'enterprise' });
    expectError(await h.api('PATCH', `/v1/accounts/${id}`, { plan: 'gold' }), 400, 'invalid_request');
    expectError(await h.api('PATCH', `/v1/accounts/${id}`, {}), 400, 'invalid_request');

    const d = await h.api('DELETE', `/v1/accounts/${id}`);
    expect(d.status).toBe(204);
    expectError(await h.api('GET', `/v1/accounts/${id}`), 404, 'account_not_found');
    expectError(await h.api('DELETE', `/v1/accounts/${id}`), 404, 'account_not_found');
    expectError(await h.api('PATCH', `/v1/accounts/${id}`, { name: 'x' }), 404, 'account_not_found');
  });

  it('deleting an account deletes what it owns, and its API keys stop working', async () => {
    const id = await createAccount(h, 'pro');
    const { key } = await createApiKey(h, id);
    const wh = await h.api('POST', `/v1/accounts/${id}/webhooks`, { url: 'https://93.184.216.34/hook', events: ['*'] });
    expect(wh.status).toBe(201);
    expect((await h.api('DELETE', `/v1/accounts/${id}`)).status).toBe(204);
    expect(await count(h, 'webhooks', 'account_id = ?', id)).toBe(0);
    expect(await count(h, 'api_keys', 'account_id = ?', id)).toBe(0);
    expectError(await h.api('GET', `/v1/accounts/${id}`, undefined, { token: key }), 401, 'unauthorized');
  });

  it('lists accounts with cursor pagination', async () => {
    const ids = [await createAccount(h), await createAccount(h), await createAccount(h)];
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: { data: Array<{ id: string }>; next_cursor: string | null } } = await h.api('GET', `/v1/accounts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.data.map((a) => a.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...new Set(seen)]);
    for (const id of ids) expect(seen).toContain(id);
    expectError(await h.api('GET', '/v1/accounts?limit=0'), 400, 'invalid_request');
    // A cursor that is not an account id, like any list's (API.md), is refused, not read as a position.
    for (const bad of ['zzz', 'whk_00000000000000000000000000', '']) expectError(await h.api('GET', `/v1/accounts?cursor=${bad}`), 400, 'invalid_request');
  });
});

describe('API keys', () => {
  it('shows the key once and keeps only its hash', async () => {
    const id = await createAccount(h);
    const r = await h.api('POST', `/v1/accounts/${id}/api-keys`);
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^hk_/), prefix: expect.any(String), created_at: expect.any(String) });
    const key: string = r.body.key;
    expect(key.startsWith(r.body.prefix)).toBe(true);

    // Later reads show the prefix only.
    const list = await h.api('GET', `/v1/accounts/${id}/api-keys`);
    expect(list.body.data).toEqual([{ id: r.body.id, prefix: r.body.prefix, created_at: r.body.created_at }]);
    expect(JSON.stringify(list.body)).not.toContain(key);

    // The database holds the SHA-256 and not the key, in any table (on SQLite: in any file).
    const [row] = await query<{ key_hash: string }>(h, 'SELECT key_hash FROM api_keys WHERE id = ?', r.body.id);
    expect(row!.key_hash).toBe(createHash('sha256').update(key).digest('hex'));
    expect(await databaseContains(h, row!.key_hash)).toBe(true); // the search does find what is there
    expect(await databaseContains(h, key)).toBe(false);
    expect(await databaseContains(h, key.slice(r.body.prefix.length))).toBe(false);
  });

  it('a key acts on its own account', async () => {
    const id = await createAccount(h);
    const { key } = await createApiKey(h, id);
    expect((await h.api('GET', `/v1/accounts/${id}`, undefined, { token: key })).body.id).toBe(id);
    expect((await h.api('GET', `/v1/accounts/${id}/webhooks`, undefined, { token: key })).status).toBe(200);
  });

  it('a deleted key is refused at once', async () => {
    const id = await createAccount(h);
    const k = await createApiKey(h, id);
    expect((await h.api('GET', `/v1/accounts/${id}`, undefined, { token: k.key })).status).toBe(200);
    expect((await h.api('DELETE', `/v1/accounts/${id}/api-keys/${k.id}`)).status).toBe(204);
    expectError(await h.api('GET', `/v1/accounts/${id}`, undefined, { token: k.key }), 401, 'unauthorized');
    expectError(await h.api('DELETE', `/v1/accounts/${id}/api-keys/${k.id}`), 404, 'not_found');
  });

  it('a key with the right prefix and a wrong secret is refused exactly like an unknown one', async () => {
    const id = await createAccount(h);
    const { key } = await createApiKey(h, id);
    const wrong = key.slice(0, -4) + (key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const a = await h.api('GET', `/v1/accounts/${id}`, undefined, { token: wrong });
    const b = await h.api('GET', `/v1/accounts/${id}`, undefined, { token: 'hk_' + 'x'.repeat(43) });
    const c = await h.api('GET', `/v1/accounts/${id}`, undefined, { token: 'something-else-entirely' });
    for (const r of [a, b, c]) expectError(r, 401, 'unauthorized');
    expect(a.body).toEqual(b.body);
    expect(b.body).toEqual(c.body);
  });

  it('only the admin creates, lists and deletes keys, and only for an account that exists', async () => {
    const id = await createAccount(h);
    const k = await createApiKey(h, id);
    expectError(await h.api('POST', `/v1/accounts/${id}/api-keys`, undefined, { token: k.key }), 403, 'forbidden');
    expectError(await h.api('GET', `/v1/accounts/${id}/api-keys`, undefined, { token: k.key }), 403, 'forbidden');
    expectError(await h.api('DELETE', `/v1/accounts/${id}/api-keys/${k.id}`, undefined, { token: k.key }), 403, 'forbidden');
    expectError(await h.api('POST', '/v1/accounts/acc_00000000000000000000000000/api-keys'), 404, 'account_not_found');
    expect(await count(h, 'api_keys', 'account_id = ?', id)).toBe(1);
  });
});

describe('event types', () => {
  it('has the four built-ins', async () => {
    const r = await h.api('GET', '/v1/event-types');
    expect(r.status).toBe(200);
    const builtins = r.body.data.filter((t: { builtin: boolean }) => t.builtin).map((t: { name: string }) => t.name).sort();
    expect(builtins).toEqual(['analysis.completed', 'content.generated', 'ping', 'publishing.failed']);
    for (const t of r.body.data) expect(Object.keys(t).sort()).toEqual(['builtin', 'created_at', 'description', 'name', 'schema']);
  });

  it('registers a new type, reads it by name, and refuses a duplicate with 409', async () => {
    const schema = { type: 'object', properties: { amount: { type: 'integer' } } };
    const c = await h.api('POST', '/v1/event-types', { name: 'invoice.paid', description: 'An invoice was paid', schema });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ name: 'invoice.paid', description: 'An invoice was paid', schema, builtin: false });
    expect((await h.api('GET', '/v1/event-types/invoice.paid')).body).toMatchObject({ name: 'invoice.paid', schema });
    expect((await h.api('GET', '/v1/event-types')).body.data.map((t: { name: string }) => t.name)).toContain('invoice.paid');

    const before = await count(h, 'event_types');
    expectError(await h.api('POST', '/v1/event-types', { name: 'invoice.paid' }), 409, 'event_type_exists');
    expectError(await h.api('POST', '/v1/event-types', { name: 'content.generated' }), 409, 'event_type_exists');
    expect(await count(h, 'event_types')).toBe(before);
  });

  it('a new type is usable at once, in webhooks and in events', async () => {
    const acc = await createAccount(h);
    expect((await h.api('POST', '/v1/event-types', { name: 'order.shipped' })).status).toBe(201);
    expect((await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: 'https://93.184.216.34/h', events: ['order.shipped'] })).status).toBe(201);
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'order.shipped', data: {} });
    expect(p.status).toBe(202);
    expect(p.body.deliveries).toHaveLength(1);
  });

  it('refuses ill-formed names and unknown lookups', async () => {
    for (const name of ['', 'has space', 'a..b', '.a', 'a.', 'x'.repeat(101), 'new\nline']) {
      expectError(await h.api('POST', '/v1/event-types', { name }), 400, 'invalid_request');
    }
    expectError(await h.api('GET', '/v1/event-types/no.such.type'), 404, 'event_type_not_found');
  });

  it('any credential reads the catalog; only the admin adds to it', async () => {
    const acc = await createAccount(h);
    const { key } = await createApiKey(h, acc);
    expect((await h.api('GET', '/v1/event-types', undefined, { token: key })).status).toBe(200);
    expect((await h.api('GET', '/v1/event-types/ping', undefined, { token: key })).status).toBe(200);
    const before = await count(h, 'event_types');
    expectError(await h.api('POST', '/v1/event-types', { name: 'sneaky.type' }, { token: key }), 403, 'forbidden');
    expectError(await h.api('GET', '/v1/event-types', undefined, { token: null }), 401, 'unauthorized');
    expect(await count(h, 'event_types')).toBe(before);
  });
});
