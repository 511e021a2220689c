import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { count, createApiKey, databaseContains, expectError, query } from './helpers/api-kit.js';
import { startDnsServer } from './helpers/dns-server.js';

/**
 * Webhooks through the API (SPEC §2, §3). Two servers, neither with a worker:
 * - `prod`: production rules (no HERALD_DEV). Its webhooks point at public IP literals, which
 *   creation accepts without contacting them; no Test Connection is ever run on it.
 * - `dev`: HERALD_DEV, for anything that may send (Test Connection), aimed at a local receiver.
 */
const PUBLIC = 'https://93.184.216.34/hook';
let prod: TestHerald;
let dev: TestHerald;
let rx: Receiver;
let acc: string;

beforeAll(async () => {
  [prod, dev, rx] = await Promise.all([
    startHerald({ HERALD_PUBLIC_URL: 'https://herald.example.com' }, { worker: false }),
    startHerald({ HERALD_DEV: 'true' }, { worker: false }),
    startReceiver((_r, res) => res.end('pong')),
  ]);
  acc = await createAccount(prod);
});
afterAll(async () => {
  await Promise.all([prod.close(), dev.close(), rx.close()]);
});

const hooks = (h: TestHerald, a: string) => `/v1/accounts/${a}/webhooks`;

describe('webhook CRUD', () => {
  it('creates a webhook with the documented shape, returning the secret once', async () => {
    const r = await prod.api('POST', hooks(prod, acc), {
      url: PUBLIC, events: ['content.generated', 'analysis.completed'], secret: 'whsec_0123456789abcdef', headers: { 'X-Api-Key': 'abc' }, description: 'Main receiver',
    });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^wh_/), account_id: acc, url: PUBLIC, description: 'Main receiver',
      events: ['content.generated', 'analysis.completed'], headers: { 'X-Api-Key': 'abc' }, headers_unreadable: false, enabled: true, disabled_reason: null, rate_limit: null,
      has_secret: true, secret: 'whsec_0123456789abcdef', previous_secret_expires_at: null, created_at: expect.any(String), updated_at: expect.any(String),
    });
  });

  it('defaults: no secret, no headers, empty description, enabled', async () => {
    const r = await prod.api('POST', hooks(prod, acc), { url: 'https://93.184.216.34', events: ['*'] });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ url: 'https://93.184.216.34/', events: ['*'], headers: {}, description: '', enabled: true, has_secret: false });
    expect(r.body).not.toHaveProperty('secret');
  });

  it('reads, lists, changes and deletes', async () => {
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], description: 'v1' });
    const id = c.body.id;
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body).toMatchObject({ id, description: 'v1' });
    expect((await prod.api('GET', hooks(prod, acc))).body.data.map((w: { id: string }) => w.id)).toContain(id);

    const p = await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, {
      url: 'https://[2606:2800:220:1:248:1893:25c8:1946]:8443/v2', events: ['publishing.failed'], headers: { 'X-Env': 'prod' }, description: 'v2', enabled: false,
    });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ id, url: 'https://[2606:2800:220:1:248:1893:25c8:1946]:8443/v2', events: ['publishing.failed'], headers: { 'X-Env': 'prod' }, description: 'v2', enabled: false });
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body).toEqual(p.body);
    // Headers are replaced as a whole; {} removes them.
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { headers: {} })).body.headers).toEqual({});

    expect((await prod.api('DELETE', `${hooks(prod, acc)}/${id}`)).status).toBe(204);
    expectError(await prod.api('GET', `${hooks(prod, acc)}/${id}`), 404, 'webhook_not_found');
    expectError(await prod.api('DELETE', `${hooks(prod, acc)}/${id}`), 404, 'webhook_not_found');
    expectError(await prod.api('GET', `${hooks(prod, acc)}/not-an-id`), 404, 'webhook_not_found');
  });

  it('refuses an empty event list and malformed bodies with 400, storing nothing', async () => {
    const before = await count(prod, 'webhooks');
    for (const body of [{ url: PUBLIC, events: [] }, { url: PUBLIC }, { events: ['*'] }, { url: PUBLIC, events: ['*'], colour: 'red' }, { url: PUBLIC, events: ['*'], secret: 'short' }]) {
      expectError(await prod.api('POST', hooks(prod, acc), body), 400, 'invalid_request');
    }
    expect(await count(prod, 'webhooks')).toBe(before);
  });

  it('takes a rate limit of 1 to 10,000 deliveries a second, changes and removes it, and refuses anything else', async () => {
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], rate_limit: 10_000 });
    expect(c.status).toBe(201);
    expect(c.body.rate_limit).toBe(10_000);
    const id = c.body.id as string;
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { rate_limit: 1 })).body.rate_limit).toBe(1);
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { description: 'kept' })).body.rate_limit).toBe(1);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body.rate_limit).toBe(1);
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { rate_limit: null })).body.rate_limit).toBeNull();
    const before = await count(prod, 'webhooks');
    for (const rate_limit of [0, -1, 10_001, 2.5, '5', true]) {
      expectError(await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], rate_limit }), 400, 'invalid_request');
      expectError(await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { rate_limit }), 400, 'invalid_request');
    }
    expect(await count(prod, 'webhooks')).toBe(before);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body.rate_limit).toBeNull();
  });
});

describe('webhook secret', () => {
  it('is never returned by reads, only revealed by the explicit call', async () => {
    const secret = 'whsec_reveal-me-only-on-request';
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], secret });
    const id = c.body.id;
    const reads = [
      await prod.api('GET', `${hooks(prod, acc)}/${id}`),
      await prod.api('GET', hooks(prod, acc)),
      await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { description: 'x' }),
    ];
    for (const r of reads) {
      expect(r.status).toBe(200);
      expect(JSON.stringify(r.body)).not.toContain(secret);
    }
    expect(reads[0]!.body).toMatchObject({ has_secret: true });
    expect(reads[0]!.body).not.toHaveProperty('secret');

    const rev = await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`);
    expect(rev.status).toBe(200);
    expect(rev.body).toEqual({ secret });
    expect(rev.headers.get('cache-control')).toBe('no-store');
  });

  it('can be rotated and removed', async () => {
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'] });
    const id = c.body.id;
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret: null });
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { secret: 'whsec_second-secret-value' })).body.has_secret).toBe(true);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret: 'whsec_second-secret-value' });
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${id}`, { secret: null })).body.has_secret).toBe(false);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret: null });
  });

  it('rotates: a new secret (made by Herald or given), the replaced one kept for a day by default', async () => {
    const old = 'whsec_rotation-old-secret-value';
    const id = (await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], secret: old })).body.id;
    const t0 = Date.now();
    const r = await prod.api('POST', `${hooks(prod, acc)}/${id}/secret/rotate`); // no body at all: every field is optional
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/); // 32 random bytes
    const until = Date.parse(r.body.previous_secret_expires_at);
    expect(until - t0).toBeGreaterThanOrEqual(24 * 3600_000 - 1000);
    expect(until - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret: r.body.secret });
    const read = (await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body;
    expect(read.previous_secret_expires_at).toBe(r.body.previous_secret_expires_at);
    expect(JSON.stringify(read)).not.toContain(old);
    // Each secret Herald makes is new; an empty body sent as JSON is no body too.
    const second = await prod.api('POST', `${hooks(prod, acc)}/${id}/secret/rotate`, undefined, { raw: '' , headers: { 'content-type': 'application/json' } });
    expect(second.status).toBe(200);
    expect(second.body.secret).toMatch(/^whsec_/);
    expect(second.body.secret).not.toBe(r.body.secret);
    const again = await prod.api('POST', `${hooks(prod, acc)}/${id}/secret/rotate`, { secret: 'whsec_rotation-given-secret', previous_secret_valid_for: 3600 });
    expect(again.status).toBe(200);
    expect(again.body.secret).toBe('whsec_rotation-given-secret');
    expect(Date.parse(again.body.previous_secret_expires_at) - Date.now()).toBeLessThanOrEqual(3600_000);
    expect(Date.parse(again.body.previous_secret_expires_at) - Date.now()).toBeGreaterThan(3500_000);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret: 'whsec_rotation-given-secret' });
  });

  it('rotation with 0 s, without a secret before, and PATCH of the secret keep no previous secret', async () => {
    const at = async (id: string) => (await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body.previous_secret_expires_at;
    const a = (await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], secret: 'whsec_rotation-zero-seconds' })).body.id;
    const zero = await prod.api('POST', `${hooks(prod, acc)}/${a}/secret/rotate`, { previous_secret_valid_for: 0 });
    expect(zero.body.previous_secret_expires_at).toBeNull();
    expect(await at(a)).toBeNull();

    const none = (await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'] })).body.id;
    const first = await prod.api('POST', `${hooks(prod, acc)}/${none}/secret/rotate`, {});
    expect(first.status).toBe(200);
    expect(first.body.previous_secret_expires_at).toBeNull(); // nothing to keep
    expect((await prod.api('GET', `${hooks(prod, acc)}/${none}`)).body).toMatchObject({ has_secret: true, previous_secret_expires_at: null });

    const b = (await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], secret: 'whsec_rotation-then-patched' })).body.id;
    expect((await prod.api('POST', `${hooks(prod, acc)}/${b}/secret/rotate`, {})).body.previous_secret_expires_at).not.toBeNull();
    expect((await prod.api('PATCH', `${hooks(prod, acc)}/${b}`, { description: 'other fields keep it' })).body.previous_secret_expires_at).not.toBeNull();
    const patched = await prod.api('PATCH', `${hooks(prod, acc)}/${b}`, { secret: 'whsec_set-outright-by-patch' });
    expect(patched.body.previous_secret_expires_at).toBeNull();
    expect(await at(b)).toBeNull();
  });

  it('refuses bad rotations, changing nothing', async () => {
    const secret = 'whsec_rotation-refused-keeps';
    const id = (await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], secret })).body.id;
    const rot = (b: unknown) => prod.api('POST', `${hooks(prod, acc)}/${id}/secret/rotate`, b);
    expectError(await rot({ previous_secret_valid_for: 7 * 24 * 3600 + 1 }), 400, 'invalid_request');
    expectError(await rot({ previous_secret_valid_for: -1 }), 400, 'invalid_request');
    expectError(await rot({ previous_secret_valid_for: 1.5 }), 400, 'invalid_request');
    expectError(await rot({ secret: 'short' }), 400, 'invalid_request');
    expectError(await rot({ other: 1 }), 400, 'invalid_request');
    expectError(await rot(null), 400, 'invalid_request');
    // Credentials come before the body: no token is 401, another account's key 404, whatever is sent.
    expectError(await prod.api('POST', `${hooks(prod, acc)}/${id}/secret/rotate`, { other: 1 }, { token: null }), 401, 'unauthorized');
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret });
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}`)).body.previous_secret_expires_at).toBeNull();
    expectError(await prod.api('POST', `${hooks(prod, acc)}/wh_00000000000000000000000000/secret/rotate`, {}), 404, 'webhook_not_found');
    // Another account's key cannot rotate it.
    const other = await createAccount(prod);
    const { key } = await createApiKey(prod, other);
    expectError(await prod.api('POST', `/v1/accounts/${acc}/webhooks/${id}/secret/rotate`, {}, { token: key }), 404, 'account_not_found');
    expectError(await prod.api('POST', `/v1/accounts/${acc}/webhooks/${id}/secret/rotate`, { other: 1 }, { token: key }), 404, 'account_not_found');
    expectError(await prod.api('POST', `/v1/accounts/${other}/webhooks/${id}/secret/rotate`, {}, { token: key }), 404, 'webhook_not_found');
    expect((await prod.api('GET', `${hooks(prod, acc)}/${id}/secret`)).body).toEqual({ secret });
  });

  it('secret and custom header values are encrypted at rest', async () => {
    const secret = 'whsec_plaintext-secret-' + Date.now();
    const headerValue = 'Bearer plaintext-header-value-' + Date.now();
    const description = 'plain description ' + Date.now();
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], secret, headers: { Authorization: headerValue }, description });
    expect(c.status).toBe(201);
    // The search finds what is stored in clear, so "not found" below means something.
    expect(await databaseContains(prod, description)).toBe(true);
    expect(await databaseContains(prod, secret)).toBe(false);
    expect(await databaseContains(prod, headerValue)).toBe(false);
    const [row] = await query<{ secret_enc: string; headers_enc: string }>(prod, 'SELECT secret_enc, headers_enc FROM webhooks WHERE id = ?', c.body.id);
    expect(row!.secret_enc).toMatch(/^v1\./);
    expect(row!.headers_enc).toMatch(/^v1\./);
    // The same after a change.
    const rotated = 'whsec_rotated-plaintext-' + Date.now();
    const p = await prod.api('PATCH', `${hooks(prod, acc)}/${c.body.id}`, { secret: rotated, headers: { 'X-Other': rotated + '-h' } });
    expect(p.status).toBe(200);
    expect((await prod.api('GET', `${hooks(prod, acc)}/${c.body.id}/secret`)).body.secret).toBe(rotated);
    expect(await databaseContains(prod, rotated)).toBe(false);
    const [after] = await query<{ secret_enc: string }>(prod, 'SELECT secret_enc FROM webhooks WHERE id = ?', c.body.id);
    expect(after!.secret_enc).toMatch(/^v1\./);
    expect(after!.secret_enc).not.toBe(row!.secret_enc);
  });
});

describe('URL policy through the API', () => {
  // [url, code]: each is refused at creation with this code, and nothing is stored.
  const REFUSED: Array<[string, 'invalid_url' | 'url_not_allowed']> = [
    // scheme and shape
    ['http://93.184.216.34/hook', 'invalid_url'],
    ['ftp://93.184.216.34/', 'invalid_url'],
    ['javascript:alert(1)', 'invalid_url'],
    ['file:///etc/passwd', 'invalid_url'],
    ['https:93.184.216.34/hook', 'invalid_url'],
    ['//93.184.216.34/hook', 'invalid_url'],
    ['not a url', 'invalid_url'],
    ['https://93.184.216.34/a b', 'invalid_url'],
    ['https://93.184.216.34/a\tb', 'invalid_url'],
    ['https://93.184.216.34/\n', 'invalid_url'],
    ['', 'invalid_url'],
    [`https://93.184.216.34/${'a'.repeat(2030)}`, 'invalid_url'],
    // userinfo
    ['https://user:pass@93.184.216.34/', 'invalid_url'],
    ['https://user@93.184.216.34/', 'invalid_url'],
    ['https://evil.com@127.0.0.1/', 'invalid_url'],
    ['https://93.184.216.34%2f@evil.com/', 'invalid_url'],
    // zone id, ports
    ['https://[fe80::1%25eth0]/', 'invalid_url'],
    ['https://93.184.216.34:0/', 'invalid_url'],
    ['https://93.184.216.34:65536/', 'invalid_url'],
    // loopback, in every notation
    ['https://127.0.0.1/', 'url_not_allowed'],
    ['https://127.0.0.2:8443/', 'url_not_allowed'],
    ['https://2130706433/', 'url_not_allowed'],
    ['https://0x7f000001/', 'url_not_allowed'],
    ['https://0x7f.1/', 'url_not_allowed'],
    ['https://0177.0.0.1/', 'url_not_allowed'],
    ['https://0177.1/', 'url_not_allowed'],
    ['https://017700000001/', 'url_not_allowed'],
    ['https://127.1/', 'url_not_allowed'],
    ['https://127.000.000.001/', 'url_not_allowed'],
    ['https://127.0.0.1./', 'url_not_allowed'],
    ['https://0.0.0.0/', 'url_not_allowed'],
    ['https://0/', 'url_not_allowed'],
    ['https://[::1]/', 'url_not_allowed'],
    ['https://[::]/', 'url_not_allowed'],
    // private, link-local, CGNAT, unique-local, reserved
    ['https://10.0.0.1/', 'url_not_allowed'],
    ['https://167772161/', 'url_not_allowed'], // 10.0.0.1 in decimal
    ['https://0xa.0.0.1/', 'url_not_allowed'],
    ['https://012.0.0.1/', 'url_not_allowed'], // 10.0.0.1 in octal
    ['https://172.16.5.4/', 'url_not_allowed'],
    ['https://192.168.1.1/', 'url_not_allowed'],
    ['https://169.254.169.254/latest/meta-data/', 'url_not_allowed'],
    ['https://[fe80::1]/', 'url_not_allowed'],
    ['https://100.64.0.1/', 'url_not_allowed'],
    ['https://[fd00::1]/', 'url_not_allowed'],
    ['https://[fd00:ec2::254]/', 'url_not_allowed'],
    ['https://192.0.2.1/', 'url_not_allowed'],
    ['https://198.18.0.1/', 'url_not_allowed'],
    ['https://224.0.0.1/', 'url_not_allowed'],
    ['https://240.0.0.1/', 'url_not_allowed'],
    ['https://255.255.255.255/', 'url_not_allowed'],
    // IPv4-mapped and other wrappings of a private IPv4
    ['https://[::ffff:127.0.0.1]/', 'url_not_allowed'],
    ['https://[::ffff:7f00:1]/', 'url_not_allowed'],
    ['https://[0:0:0:0:0:ffff:127.0.0.1]/', 'url_not_allowed'],
    ['https://[::ffff:10.0.0.1]/', 'url_not_allowed'],
    ['https://[::ffff:a9fe:a9fe]/', 'url_not_allowed'],
    ['https://[::7f00:1]/', 'url_not_allowed'],
    ['https://[64:ff9b::7f00:1]/', 'url_not_allowed'],
    ['https://[64:ff9b::a9fe:a9fe]/', 'url_not_allowed'],
    ['https://[2002:7f00:1::1]/', 'url_not_allowed'],
    ['https://[2002:a9fe:a9fe::1]/', 'url_not_allowed'],
    // local names, refused without asking DNS
    ['https://localhost/', 'url_not_allowed'],
    ['https://LOCALHOST./', 'url_not_allowed'],
    ['https://api.localhost/', 'url_not_allowed'],
    ['https://metadata.google.internal/', 'url_not_allowed'],
    ['https://printer.local/', 'url_not_allowed'],
    ['https://redis/', 'url_not_allowed'],
    // Herald's own host (HERALD_PUBLIC_URL of this server)
    ['https://herald.example.com/hook', 'url_not_allowed'],
    ['https://HERALD.example.com./v1/accounts', 'url_not_allowed'],
    ['http://herald.example.com/', 'invalid_url'],
  ];

  it('refuses every form at creation, with the right code, and stores nothing', async () => {
    const before = await count(prod, 'webhooks');
    const wrong: string[] = [];
    for (const [url, code] of REFUSED) {
      const r = await prod.api('POST', hooks(prod, acc), { url, events: ['*'] });
      if (r.status !== 422 || r.body?.error?.code !== code) wrong.push(`${JSON.stringify(url)} → ${r.status} ${JSON.stringify(r.body)}`);
      else expectError(r, 422, code);
    }
    expect(wrong).toEqual([]);
    expect(await count(prod, 'webhooks')).toBe(before);
  });

  it('refuses the same forms when a webhook is changed, leaving it as it was', async () => {
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'] });
    const [before] = await query(prod, 'SELECT * FROM webhooks WHERE id = ?', c.body.id);
    for (const [url, code] of REFUSED) {
      const r = await prod.api('PATCH', `${hooks(prod, acc)}/${c.body.id}`, { url, description: 'should not stick' });
      expect({ url, status: r.status, code: r.body?.error?.code }).toEqual({ url, status: 422, code });
    }
    expect(await query(prod, 'SELECT * FROM webhooks WHERE id = ?', c.body.id)).toEqual([before]);
  });

  it('refusals never reveal more than the input shows', async () => {
    const r = await prod.api('POST', hooks(prod, acc), { url: 'https://2130706433/', events: ['*'] });
    expect(r.body.error.message).toMatch(/destination not allowed/);
    expect(r.body.error.message).not.toMatch(/127\.0\.0\.1|127\.0\.0\.0\/8/);
  });

  it('accepts public IP literals, in any notation and on any port, without contacting them', async () => {
    for (const [url, stored] of [
      ['https://93.184.216.34/hook', 'https://93.184.216.34/hook'],
      ['https://1572395042/hook', 'https://93.184.216.34/hook'], // the same address in decimal
      ['https://93.184.216.34:8443/x?y=1', 'https://93.184.216.34:8443/x?y=1'],
      ['https://93.184.216.34:22/', 'https://93.184.216.34:22/'],
      ['https://[2606:2800:220:1:248:1893:25c8:1946]/', 'https://[2606:2800:220:1:248:1893:25c8:1946]/'],
      ['https://[::ffff:93.184.216.34]/', 'https://[::ffff:5db8:d822]/'],
    ]) {
      const r = await prod.api('POST', hooks(prod, acc), { url, events: ['*'] });
      expect({ url, status: r.status, stored: r.body.url }).toEqual({ url, status: 201, stored });
    }
  });

  it('refuses loopback targets before any connection: a canary receiver sees nothing', async () => {
    const canary = await startReceiver();
    try {
      for (const url of [`https://127.0.0.1:${canary.port}/`, `http://127.0.0.1:${canary.port}/`, `https://[::ffff:127.0.0.1]:${canary.port}/`, `https://2130706433:${canary.port}/`]) {
        expect((await prod.api('POST', hooks(prod, acc), { url, events: ['*'] })).status).toBe(422);
        expect((await prod.api('POST', `${hooks(prod, acc)}/test`, { url })).status).toBe(422);
      }
      expect(canary.connections).toBe(0);
    } finally {
      await canary.close();
    }
  });

  it("in dev mode accepts http:// and loopback receivers, but still refuses Herald's own port", async () => {
    const a = await createAccount(dev);
    expect((await dev.api('POST', hooks(dev, a), { url: rx.url + '/ok', events: ['*'] })).status).toBe(201);
    const self = new URL(dev.url);
    const r = await dev.api('POST', hooks(dev, a), { url: `http://127.0.0.1:${self.port}/v1/accounts`, events: ['*'] });
    expectError(r, 422, 'url_not_allowed');
    expectError(await dev.api('POST', hooks(dev, a), { url: `http://localhost:${self.port}/`, events: ['*'] }), 422, 'url_not_allowed');
  });
});

describe('custom headers', () => {
  const refused = async (headers: unknown) => {
    const before = await count(prod, 'webhooks');
    const r = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], headers });
    expect(await count(prod, 'webhooks')).toBe(before);
    return r;
  };

  it('refuses every reserved name, in any case', async () => {
    const names = [
      'Host', 'host', 'Content-Type', 'CONTENT-TYPE', 'Content-Length', 'Transfer-Encoding', 'Connection', 'User-Agent', 'user-agent',
      'X-Hub-Signature-256', 'x-hub-signature-256', 'X-Herald-Event', 'X-Herald-Delivery', 'X-Herald-Attempt', 'x-herald-anything',
      'webhook-id', 'webhook-timestamp', 'Webhook-Signature', 'WEBHOOK-ANYTHING',
    ];
    for (const name of names) expectError(await refused({ [name]: 'x' }), 422, 'header_not_allowed');
  });

  it('refuses CR, LF and other control characters in values', async () => {
    for (const value of ['a\r\nX-Injected: 1', 'a\nb', 'a\rb', 'a\u0000b', 'a\u0007b', 'a\u007fb']) {
      expectError(await refused({ 'X-Custom': value }), 422, 'header_not_allowed');
    }
  });

  it('refuses values over 4 KB and more than 20 headers; accepts the limits exactly', async () => {
    expectError(await refused({ 'X-Big': 'x'.repeat(4097) }), 422, 'header_not_allowed');
    expectError(await refused({ 'X-Big': 'é'.repeat(2049) }), 422, 'header_not_allowed'); // 4098 bytes in UTF-8
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']));
    expectError(await refused(many(21)), 422, 'header_not_allowed');

    const ok = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], headers: { ...many(19), 'X-Big': 'x'.repeat(4096) } });
    expect(ok.status).toBe(201);
    expect(Object.keys(ok.body.headers)).toHaveLength(20);
  });

  it('refuses names that are not HTTP tokens, duplicates, and non-string values', async () => {
    for (const name of ['Bad Name', 'X-A:', '', 'Ünicode', '(x)', 'a\r\nb', 'a/b']) expectError(await refused({ [name]: 'v' }), 422, 'header_not_allowed');
    expectError(await refused({ 'X-Dup': 'a', 'x-dup': 'b' }), 422, 'header_not_allowed');
    for (const value of [1, null, true, ['a'], { a: 1 }]) expectError(await refused({ 'X-Typed': value }), 422, 'header_not_allowed');
    for (const headers of [[], 'X-A: b', 5]) expectError(await refused(headers), 422, 'header_not_allowed');
  });

  it('refuses bad headers on change too, leaving the old ones', async () => {
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'], headers: { 'X-Keep': 'me' } });
    expectError(await prod.api('PATCH', `${hooks(prod, acc)}/${c.body.id}`, { headers: { Host: 'evil' } }), 422, 'header_not_allowed');
    expect((await prod.api('GET', `${hooks(prod, acc)}/${c.body.id}`)).body.headers).toEqual({ 'X-Keep': 'me' });
  });
});

describe('event subscriptions', () => {
  it('refuses unknown event types on create and change; accepts *', async () => {
    const before = await count(prod, 'webhooks');
    expectError(await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['no.such.type'] }), 422, 'unknown_event_type');
    expectError(await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['content.generated', 'Content.Generated'] }), 422, 'unknown_event_type');
    expect(await count(prod, 'webhooks')).toBe(before);
    const c = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['*'] });
    expect(c.body.events).toEqual(['*']);
    expectError(await prod.api('PATCH', `${hooks(prod, acc)}/${c.body.id}`, { events: ['nope'] }), 422, 'unknown_event_type');
    expect((await prod.api('GET', `${hooks(prod, acc)}/${c.body.id}`)).body.events).toEqual(['*']);
    // Duplicates collapse.
    const d = await prod.api('POST', hooks(prod, acc), { url: PUBLIC, events: ['ping', 'ping'] });
    expect(d.body.events).toEqual(['ping']);
  });
});

describe('plans', () => {
  it('answers 403 plan_required on every webhook route of a free account, changing and sending nothing', async () => {
    const a = await createAccount(dev, 'pro');
    const { key } = await createApiKey(dev, a);
    const c = await dev.api('POST', hooks(dev, a), { url: rx.url + '/plan', events: ['*'], secret: 'whsec_plan-test-secret' });
    expect(c.status).toBe(201);
    const id = c.body.id;
    expect((await dev.api('PATCH', `/v1/accounts/${a}`, { plan: 'free' })).body.plan).toBe('free');
    const [before] = await query(dev, 'SELECT * FROM webhooks WHERE id = ?', id);
    const base = hooks(dev, a);
    const calls: Array<[string, string, unknown?]> = [
      ['GET', base], ['POST', base, { url: rx.url + '/new', events: ['*'] }], ['GET', `${base}/${id}`],
      ['PATCH', `${base}/${id}`, { description: 'x' }], ['DELETE', `${base}/${id}`], ['GET', `${base}/${id}/secret`],
      ['POST', `${base}/test`, { url: rx.url + '/form' }], ['POST', `${base}/${id}/test`],
    ];
    for (const token of [undefined, key]) {
      for (const [m, p, body] of calls) {
        const r = await dev.api(m, p, body, { token });
        expect({ call: `${m} ${p}`, status: r.status, code: r.body?.error?.code }).toEqual({ call: `${m} ${p}`, status: 403, code: 'plan_required' });
        expect(r.body.error.message).toMatch(/Pro or Enterprise/);
      }
    }
    expect(await query(dev, 'SELECT * FROM webhooks WHERE id = ?', id)).toEqual([before]);
    expect(await count(dev, 'webhooks', 'account_id = ?', a)).toBe(1);
    expect(rx.received.filter((x) => x.url !== '/ok')).toEqual([]);

    // Enterprise has webhooks too.
    await dev.api('PATCH', `/v1/accounts/${a}`, { plan: 'enterprise' });
    expect((await dev.api('GET', `${base}/${id}`)).status).toBe(200);
  });
});

describe('Test Connection', () => {
  it('pings an unsaved form and a saved webhook, signed, and records only the saved one', async () => {
    const a = await createAccount(dev);
    rx.received.length = 0;
    const form = await dev.api('POST', `${hooks(dev, a)}/test`, { url: rx.url + '/form', secret: 'whsec_form-secret-1234', headers: { 'X-Form': '1' } });
    expect(form.status).toBe(200);
    expect(form.body).toEqual({ ok: true, status_code: 200, duration_ms: expect.any(Number), error: null, error_kind: null, response_body: 'pong' });
    expect(rx.received).toHaveLength(1);
    expect(rx.received[0]!.headers['x-herald-event']).toBe('ping');
    expect(rx.received[0]!.headers['x-form']).toBe('1');
    expect(rx.received[0]!.headers['x-hub-signature-256']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(await count(dev, 'deliveries', 'account_id = ?', a)).toBe(0);

    const c = await dev.api('POST', hooks(dev, a), { url: rx.url + '/saved', events: ['content.generated'] });
    const saved = await dev.api('POST', `${hooks(dev, a)}/${c.body.id}/test`);
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ ok: true, status_code: 200, delivery_id: expect.stringMatching(/^dlv_/) });
    const d = await dev.api('GET', `/v1/accounts/${a}/deliveries/${saved.body.delivery_id}`);
    expect(d.body).toMatchObject({ event_type: 'ping', status: 'succeeded', webhook_id: c.body.id });
    expect(d.body.attempts).toHaveLength(1);
  });

  it('reports a receiver that is down as a failed ping, not an API error', async () => {
    const a = await createAccount(dev);
    const gone = await startReceiver();
    const url = gone.url + '/down';
    await gone.close();
    const r = await dev.api('POST', `${hooks(dev, a)}/test`, { url });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: false, status_code: null, error: expect.any(String) });
  });

  it('validates the unsaved form like a webhook', async () => {
    const a = await createAccount(prod);
    expectError(await prod.api('POST', `${hooks(prod, a)}/test`, { url: 'https://10.0.0.1/' }), 422, 'url_not_allowed');
    expectError(await prod.api('POST', `${hooks(prod, a)}/test`, { url: 'http://10.0.0.1/' }), 422, 'invalid_url');
    expectError(await prod.api('POST', `${hooks(prod, a)}/test`, { url: 'https://10.0.0.1/', headers: { Host: 'x' } }), 422, 'url_not_allowed');
    expectError(await prod.api('POST', `${hooks(prod, a)}/test`, { url: 'https://169.254.169.254/', headers: { 'X-Ok': 'a\nb' } }), 422, 'url_not_allowed');
    expectError(await prod.api('POST', `${hooks(prod, a)}/test`, {}), 400, 'invalid_request');
  });
});

describe('webhooks per account', () => {
  let small: TestHerald;
  beforeAll(async () => {
    small = await startHerald({ HERALD_MAX_WEBHOOKS_PER_ACCOUNT: '2' }, { worker: false });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('at most HERALD_MAX_WEBHOOKS_PER_ACCOUNT each: one more is a 422 that says so; deleting one frees a place', async () => {
    const [a, b] = [await createAccount(small), await createAccount(small)];
    const make = (acc: string) => small.api('POST', hooks(small, acc), { url: PUBLIC, events: ['*'] });
    const first = await make(a);
    expect(first.status).toBe(201);
    expect((await make(a)).status).toBe(201);
    const over = await make(a);
    expectError(over, 422, 'validation_failed');
    expect(over.body.error.message).toContain('at most 2 webhooks');
    expect((await make(b)).status).toBe(201); // another account's count is its own
    expect((await small.api('DELETE', `${hooks(small, a)}/${first.body.id}`)).status).toBe(204);
    expect((await make(a)).status).toBe(201);
    expect((await small.api('GET', '/v1/meta')).body.max_webhooks_per_account).toBe(2);
  });
});

describe('a change that waited', () => {
  it("keeps what committed while it waited: a PATCH held up by the URL's DNS does not enable a webhook a 410 disabled meanwhile", async () => {
    // The new URL's name is never answered: the PATCH waits out its DNS check (2 s), then saves.
    const dns = await startDnsServer({ 'mute.example.test': { mute: true } });
    const h = await startHerald({ HERALD_DNS_SERVERS: dns.server }, { worker: false });
    try {
      const a = await createAccount(h);
      const w = (await h.api('POST', hooks(h, a), { url: PUBLIC, events: ['*'] })).body;
      const patch = h.api('PATCH', `${hooks(h, a)}/${w.id}`, { url: 'https://mute.example.test/hook', description: 'moved' });
      await new Promise((r) => setTimeout(r, 300));
      // Meanwhile the receiver answers 410 Gone and the worker disables the webhook.
      await h.herald.ctx.store.q.run("UPDATE webhooks SET enabled = 0, disabled_reason = 'the receiver answered 410 Gone' WHERE id = ?", [w.id]);
      const res = await patch;
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ url: 'https://mute.example.test/hook', description: 'moved', enabled: false, disabled_reason: 'the receiver answered 410 Gone' });
      expect((await h.api('GET', `${hooks(h, a)}/${w.id}`)).body).toMatchObject({ enabled: false, disabled_reason: 'the receiver answered 410 Gone' });
      // The audit entry compares with the row as it was when saved: no re-enabling to report.
      const [entry] = (await h.api('GET', `/v1/accounts/${a}/audit-events`)).body.data;
      expect(entry).toMatchObject({ action: 'webhook.updated' });
      expect(entry.details.enabled).toBeUndefined();
    } finally {
      await h.close();
      dns.close();
    }
  });
});
