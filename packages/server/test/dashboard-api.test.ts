import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminSessionTag } from '../src/api/auth.js';
import { dashboardPlugin } from '../src/dashboard/index.js';
import { databaseContains } from './helpers/api-kit.js';
import { ADMIN_TOKEN, createAccount, startHerald, TEST_BACKEND, throwawayPostgres, type TestHerald } from './helpers/herald.js';

/**
 * The dashboard's server side over real HTTP: portal links, cookie sessions, CSRF, and the
 * static app with its security headers. A tiny fake build stands in for packages/dashboard/dist
 * so these tests do not depend on the web app having been built.
 */

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Res {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** A tiny cookie-holding client, like a browser tab: no Authorization header, ever. */
class Browser {
  cookie: string | null = null;
  csrf: string | null = null;
  constructor(readonly base: string) {}

  async req(method: string, path: string, opts: { body?: unknown; csrf?: string | null; headers?: Record<string, string> } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (this.cookie) headers.cookie = this.cookie;
    const csrf = opts.csrf === undefined ? this.csrf : opts.csrf;
    if (csrf) headers['x-csrf-token'] = csrf;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), redirect: 'manual' });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) {
      const m = /^herald_session=([^;]*)/.exec(setCookie);
      if (m) this.cookie = m[1] ? `herald_session=${m[1]}` : null;
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* HTML */
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** What the link's page does: a POST from this origin, with the form's (empty) body. */
  async spendLink(path: string, origin = this.base): Promise<Res> {
    return this.req('POST', path, { headers: { origin, 'content-type': 'application/x-www-form-urlencoded' } });
  }

  async loadSession(): Promise<any> {
    const r = await this.req('GET', '/v1/session');
    this.csrf = r.json?.csrf_token ?? null;
    return r;
  }
}

async function portalLink(h: TestHerald, account: string, body?: unknown): Promise<string> {
  const r = await h.api('POST', `/v1/accounts/${account}/portal-sessions`, body);
  expect(r.status).toBe(201);
  return r.body.url as string;
}

/** Open a portal link in a fresh "browser" and load its session. */
async function signInWithLink(h: TestHerald, url: string): Promise<Browser> {
  const b = new Browser(h.url);
  expect((await b.req('GET', new URL(url).pathname)).status).toBe(200);
  expect((await b.spendLink(new URL(url).pathname)).status).toBe(303);
  await b.loadSession();
  return b;
}

describe('dashboard API: portal links, sessions, CSRF', () => {
  let h: TestHerald;
  let dist: string;
  let acme: string;
  let globex: string;

  beforeAll(async () => {
    dist = mkdtempSync(join(tmpdir(), 'herald-dist-'));
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>Herald</title><script type="module" src="/assets/app-1234.js"></script>');
    writeFileSync(join(dist, 'assets', 'app-1234.js'), 'console.log("app")');
    h = await startHerald({ HERALD_DEV: 'true' }, { worker: false, plugins: [dashboardPlugin({ distDir: dist })] });
    acme = await createAccount(h, 'pro', 'Acme');
    globex = await createAccount(h, 'pro', 'Globex');
  });
  afterAll(async () => {
    await h.close();
    rmSync(dist, { recursive: true, force: true });
  });

  it('makes a one-time portal link under the public URL; only a hash is stored', async () => {
    const before = Date.now();
    const r = await h.api('POST', `/v1/accounts/${acme}/portal-sessions`);
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const url = new URL(r.body.url);
    expect(url.origin).toBe(h.url);
    const token = /^\/portal\/([A-Za-z0-9_-]{43})$/.exec(url.pathname)?.[1];
    expect(token).toBeTruthy();
    const ttl = Date.parse(r.body.expires_at) - before;
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000 + 1000);
    const rows = await h.herald.ctx.store.q.all<{ token_hash: string }>('SELECT token_hash FROM portal_links');
    expect(rows.some((x) => x.token_hash.includes(token!))).toBe(false);
    expect(rows.every((x) => /^[0-9a-f]{64}$/.test(x.token_hash))).toBe(true);
    expect(rows.map((x) => x.token_hash)).toContain(createHash('sha256').update(token!).digest('hex'));
    expect(await databaseContains(h, token!)).toBe(false);
  });

  it('validates ttl_seconds and refuses non-admins and unknown accounts', async () => {
    expect((await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, { ttl_seconds: 24 * 3600 + 1 })).status).toBe(400);
    expect((await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, { ttl_seconds: 0 })).status).toBe(400);
    const before = Date.now();
    const day = await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, { ttl_seconds: 24 * 3600 });
    expect(day.status).toBe(201);
    expect(Math.abs(Date.parse(day.body.expires_at) - before - 24 * 3600_000)).toBeLessThan(5000);
    // No body, with the JSON content type many clients send on every POST: the defaults.
    const bare = await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, undefined, { raw: '', headers: { 'content-type': 'application/json' } });
    expect(bare.status).toBe(201);
    expect(Date.parse(bare.body.expires_at) - Date.now()).toBeGreaterThan(14 * 60_000);
    expect((await h.api('POST', `/v1/accounts/acc_nope/portal-sessions`)).status).toBe(404);
    expect((await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, undefined, { token: null })).status).toBe(401);
    // Credentials are checked before the body, so a stranger learns nothing from validation.
    expect((await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, { ttl_seconds: 'x' }, { token: null })).status).toBe(401);
    const key = await h.api('POST', `/v1/accounts/${acme}/api-keys`);
    const asAccount = await h.api('POST', `/v1/accounts/${acme}/portal-sessions`, undefined, { token: key.body.key });
    expect(asAccount.status).toBe(403);
  });

  it('a portal link works once, sets a strict cookie and redirects to a clean URL', async () => {
    const url = await portalLink(h, acme);
    const b = new Browser(h.url);
    // GET shows a page that goes on by itself, and spends nothing (a chat preview may fetch it).
    for (let i = 0; i < 2; i++) {
      const page = await b.req('GET', new URL(url).pathname);
      expect(page.status).toBe(200);
      expect(page.headers.get('set-cookie')).toBeNull();
      expect(page.text).toContain('Opening the webhook settings of Acme');
      expect(page.text).toMatch(/<form id="continue" method="post">/);
      // Its one inline script is allowed by its hash, and nothing else inline is.
      const script = /<script>([^<]*)<\/script>/.exec(page.text)![1]!;
      expect(page.headers.get('content-security-policy')).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    }
    const first = await b.spendLink(new URL(url).pathname);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.get('referrer-policy')).toBe('no-referrer');
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^herald_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Strict/i);
    expect(cookie).toMatch(/;\s*Path=\/(;|$)/);
    expect(cookie).toMatch(/;\s*Max-Age=28800/);
    // The public URL is http:// here; Secure would make the browser drop the cookie.
    expect(cookie).not.toMatch(/Secure/i);
    const token = cookie.slice('herald_session='.length, cookie.indexOf(';'));
    const sessions = await h.herald.ctx.store.q.all<{ token_hash: string }>('SELECT token_hash FROM sessions');
    expect(sessions.some((s) => s.token_hash === token)).toBe(false);

    const s = await b.loadSession();
    expect(s.status).toBe(200);
    expect(s.json).toMatchObject({ kind: 'account', account_id: acme });
    expect(s.json.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.headers.get('cache-control')).toBe('no-store');

    expect((await new Browser(h.url).spendLink(new URL(url).pathname)).status).toBe(401);
    const again = await new Browser(h.url).req('GET', new URL(url).pathname);
    expect(again.status).toBe(401);
    expect(again.headers.get('content-type')).toMatch(/^text\/html/);
    expect(again.text).toContain('invalid, has already been used, or has expired');
    expect(again.headers.get('set-cookie')).toBeNull();
    expect(again.headers.get('content-security-policy')).toMatch(/^default-src 'self'; script-src 'self'; style-src 'self' 'sha256-/);
  });

  it('an expired or malformed link is refused with the friendly page', async () => {
    const url = await portalLink(h, acme, { ttl_seconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const r = await new Browser(h.url).req('GET', new URL(url).pathname);
    expect(r.status).toBe(401);
    expect(r.text).toContain('expired');
    for (const bad of ['/portal/short', '/portal/' + 'A'.repeat(43)]) {
      expect((await new Browser(h.url).req('GET', bad)).status).toBe(401);
    }
    // Asked for JSON, the same refusal comes in the API's error shape.
    const json = await new Browser(h.url).req('GET', new URL(url).pathname, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(401);
    expect(json.json.error.code).toBe('portal_link_invalid');
  });

  it('HEAD does not spend a link (link checkers and chat previews)', async () => {
    const url = await portalLink(h, acme);
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).not.toBe(303);
    expect(head.headers.get('set-cookie')).toBeNull();
    const b = new Browser(h.url);
    expect((await b.spendLink(new URL(url).pathname)).status).toBe(303);
  });

  it('OpenAPI lists 429 only where an API key may meet the rate limit, not on the cookie session routes', async () => {
    const doc = (await new Browser(h.url).req('GET', '/openapi.json')).json;
    expect(Object.keys(doc.paths['/v1/accounts/{account}/portal-sessions'].post.responses)).toContain('429');
    for (const [method, op] of Object.entries<any>(doc.paths['/v1/session'])) expect(Object.keys(op.responses), `${method} /v1/session`).not.toContain('429');
  });

  it('is spent only from its own page: a post from another site is refused and leaves the link valid', async () => {
    const url = await portalLink(h, acme);
    const b = new Browser(h.url);
    const path = new URL(url).pathname;
    // The page lets the browser name its origin on the post (under no-referrer it would say `null`).
    expect((await b.req('GET', path)).headers.get('referrer-policy')).toBe('same-origin');
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }] as Array<Record<string, string>>) {
      const forged = await b.req('POST', path, { headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' } });
      expect(forged.status, JSON.stringify(headers)).toBe(403);
      expect(forged.json.error.code).toBe('forbidden');
      expect(forged.headers.get('set-cookie')).toBeNull();
    }
    // A browser that sends `Origin: null` but says the post is same-origin is believed.
    const ok = await b.req('POST', path, { headers: { origin: 'null', 'sec-fetch-site': 'same-origin', 'content-type': 'application/x-www-form-urlencoded' } });
    expect(ok.status).toBe(303);
  });

  it('asks before switching a browser signed in as someone else, and switches when told to', async () => {
    const b = await signInWithLink(h, await portalLink(h, globex));
    const url = await portalLink(h, acme);
    const page = await b.req('GET', new URL(url).pathname);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Open the webhook settings of Acme?');
    expect(page.text).toContain('signed in to the webhook settings for Globex');
    expect(page.text).not.toContain('<script>'); // nothing goes on by itself
    expect((await b.loadSession()).json.account_id).toBe(globex);
    expect((await b.spendLink(new URL(url).pathname)).status).toBe(303);
    expect((await b.loadSession()).json.account_id).toBe(acme);
    // The operator is named as such; a link of the account already open goes on by itself.
    const op = new Browser(h.url);
    expect((await op.req('POST', '/v1/session', { body: { admin_token: ADMIN_TOKEN } })).status).toBe(200);
    expect((await op.req('GET', new URL(await portalLink(h, acme)).pathname)).text).toContain('signed in to the webhook settings as the operator');
    expect((await b.req('GET', new URL(await portalLink(h, acme)).pathname)).text).toContain('<script>');
  });

  it('an account session sees only its own account', async () => {
    const b = await signInWithLink(h, await portalLink(h, acme));
    expect((await b.req('GET', `/v1/accounts/${acme}`)).json).toMatchObject({ id: acme, name: 'Acme' });
    expect((await b.req('GET', `/v1/accounts/${acme}/webhooks`)).status).toBe(200);
    for (const path of [`/v1/accounts/${globex}`, `/v1/accounts/${globex}/webhooks`, `/v1/accounts/${globex}/deliveries`]) {
      const r = await b.req('GET', path);
      expect(r.status, path).toBe(404);
      expect(r.json.error.code).toBe('account_not_found');
    }
    expect((await b.req('GET', '/v1/accounts')).status).toBe(403);
    expect((await b.req('POST', `/v1/accounts/${acme}/events`, { body: { type: 'content.generated', data: {} } })).status).toBe(403);
  });

  it('cookie requests that change state need the session CSRF token', async () => {
    const b = await signInWithLink(h, await portalLink(h, acme));
    const body = { url: 'http://127.0.0.1:9/hook', events: ['content.generated'] };
    const none = await b.req('POST', `/v1/accounts/${acme}/webhooks`, { body, csrf: null });
    expect(none.status).toBe(403);
    expect(none.json.error.code).toBe('csrf_failed');
    const wrong = await b.req('POST', `/v1/accounts/${acme}/webhooks`, { body, csrf: 'x'.repeat(43) });
    expect(wrong.status).toBe(403);
    expect(wrong.json.error.code).toBe('csrf_failed');
    // Another session's token is just as wrong.
    const other = await signInWithLink(h, await portalLink(h, acme));
    expect((await b.req('POST', `/v1/accounts/${acme}/webhooks`, { body, csrf: other.csrf })).json.error.code).toBe('csrf_failed');
    expect((await h.api('GET', `/v1/accounts/${acme}/webhooks`)).body.data).toHaveLength(0);

    const ok = await b.req('POST', `/v1/accounts/${acme}/webhooks`, { body });
    expect(ok.status).toBe(201);
    const id = ok.json.id as string;
    expect((await b.req('PATCH', `/v1/accounts/${acme}/webhooks/${id}`, { body: { enabled: false }, csrf: null })).status).toBe(403);
    expect((await b.req('DELETE', `/v1/accounts/${acme}/webhooks/${id}`, { csrf: null })).status).toBe(403);
    // Refused before anything was written.
    expect((await h.api('GET', `/v1/accounts/${acme}/webhooks/${id}`)).body.enabled).toBe(true);
    expect((await b.req('PATCH', `/v1/accounts/${acme}/webhooks/${id}`, { body: { enabled: false } })).json.enabled).toBe(false);
    // Reads need no token.
    expect((await b.req('GET', `/v1/accounts/${acme}/webhooks/${id}`, { csrf: null })).status).toBe(200);
    expect((await b.req('DELETE', `/v1/accounts/${acme}/webhooks/${id}`)).status).toBe(204);
  });

  it('bearer requests ignore cookies entirely', async () => {
    const b = await signInWithLink(h, await portalLink(h, acme));
    // The admin token with an account cookie and no CSRF header: acts as admin, no CSRF check.
    const r = await fetch(`${h.url}/v1/accounts/${globex}/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, cookie: b.cookie!, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', events: ['*'] }),
    });
    expect(r.status).toBe(201);
    // A bad bearer token is refused even when a valid cookie is present.
    const bad = await fetch(`${h.url}/v1/accounts/${acme}`, { headers: { authorization: 'Bearer nope-nope-nope', cookie: b.cookie! } });
    expect(bad.status).toBe(401);
    // An account key with another account's cookie still sees only its own account.
    const key = (await h.api('POST', `/v1/accounts/${globex}/api-keys`)).body.key as string;
    const k = await fetch(`${h.url}/v1/accounts/${acme}`, { headers: { authorization: `Bearer ${key}`, cookie: b.cookie! } });
    expect(k.status).toBe(404);
  });

  it('the operator signs in with the admin token and sees every account', async () => {
    const b = new Browser(h.url);
    const wrong = await b.req('POST', '/v1/session', { body: { admin_token: 'not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    // The token comes in the body, read before any credential is known: 4 KiB at most.
    const big = await b.req('POST', '/v1/session', { body: { admin_token: 'x'.repeat(5000) } });
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ error: { code: 'payload_too_large' } });
    expect(b.cookie).toBeNull();
    expect((await b.req('GET', '/v1/session')).status).toBe(401);
    const r = await b.req('POST', '/v1/session', { body: { admin_token: ADMIN_TOKEN } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ kind: 'admin', account_id: null });
    expect(r.headers.get('set-cookie')).toMatch(/HttpOnly/);
    const s = await b.loadSession();
    expect(s.json.kind).toBe('admin');
    const list = await b.req('GET', '/v1/accounts');
    expect(list.status).toBe(200);
    expect(list.json.data.map((a: { id: string }) => a.id)).toEqual(expect.arrayContaining([acme, globex]));
    expect((await b.req('GET', `/v1/accounts/${globex}/webhooks`)).status).toBe(200);
    // Admin cookie sessions are held to CSRF too.
    expect((await b.req('POST', `/v1/accounts/${acme}/portal-sessions`, { csrf: null })).status).toBe(403);
    expect((await b.req('POST', `/v1/accounts/${acme}/portal-sessions`)).status).toBe(201);
  });

  it("a rotated admin token ends the operators' sessions opened with the old one; account sessions stay", async () => {
    // Three Herald processes in turn on one database: the same token, then a rotated one.
    const shared = TEST_BACKEND === 'postgres' ? await throwawayPostgres() : null;
    const dir = mkdtempSync(join(tmpdir(), 'herald-rotate-admin-'));
    const env = { HERALD_DEV: 'true', HERALD_DATABASE_URL: shared?.url ?? `sqlite:${join(dir, 'herald.db')}` };
    const start = (extra: Record<string, string> = {}) => startHerald({ ...env, ...extra }, { worker: false, plugins: [dashboardPlugin({ distDir: dist })] });
    const status = async (srv: TestHerald, b: Browser) => (await fetch(`${srv.url}/v1/session`, { headers: { cookie: b.cookie! } })).status;
    try {
      const first = await start();
      const acc = await createAccount(first, 'pro', 'Rotating');
      const operator = new Browser(first.url);
      expect((await operator.req('POST', '/v1/session', { body: { admin_token: ADMIN_TOKEN } })).status).toBe(200);
      const member = await signInWithLink(first, await portalLink(first, acc));
      await first.close();

      const same = await start();
      expect(await status(same, operator)).toBe(200); // a restart with the same token keeps it
      expect(await status(same, member)).toBe(200);
      await same.close();

      const NEW_TOKEN = 'rotated-admin-token-9876543210';
      const rotated = await start({ HERALD_ADMIN_TOKEN: NEW_TOKEN });
      try {
        expect(await status(rotated, operator)).toBe(401);
        expect((await fetch(`${rotated.url}/v1/accounts`, { headers: { cookie: operator.cookie! } })).status).toBe(401);
        expect(await status(rotated, member)).toBe(200);
        expect((await rotated.api('GET', '/v1/accounts', undefined, { token: ADMIN_TOKEN })).status).toBe(401);
        const again = new Browser(rotated.url);
        expect((await again.req('POST', '/v1/session', { body: { admin_token: NEW_TOKEN } })).status).toBe(200);
        expect((await again.req('GET', '/v1/accounts')).status).toBe(200);
      } finally {
        await rotated.close();
      }
      // Rolled back to the old token: the old sessions were deleted when the rotated process
      // started, so they do not come back; the new token's session does not work either.
      const back = await start();
      try {
        expect(await status(back, operator)).toBe(401);
        expect(await status(back, member)).toBe(200);
      } finally {
        await back.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await shared?.drop();
    }
  });

  it('an operator session without a token tag (opened before sessions were bound to one) is refused', async () => {
    const token = 'A'.repeat(43); // cookie-shaped
    await h.herald.ctx.store.createSession({ tokenHash: createHash('sha256').update(token).digest('hex'), accountId: null, csrfToken: 'c'.repeat(43), expiresAt: Date.now() + 3600_000 });
    expect((await fetch(`${h.url}/v1/session`, { headers: { cookie: `herald_session=${token}` } })).status).toBe(401);
    expect((await fetch(`${h.url}/v1/accounts`, { headers: { cookie: `herald_session=${token}` } })).status).toBe(401);
  });

  it("the token tag depends on the secret key, and shows neither the token's hash nor its tag under another key", () => {
    const hash = createHash('sha256').update(ADMIN_TOKEN).digest();
    const a = adminSessionTag(Buffer.alloc(32, 1), hash);
    const b = adminSessionTag(Buffer.alloc(32, 2), hash);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(hash.toString('hex').slice(0, 16));
    expect(adminSessionTag(Buffer.alloc(32, 1), createHash('sha256').update('another-admin-token').digest())).not.toBe(a);
  });

  it('sign-out ends the session (CSRF-checked) and clears the cookie', async () => {
    const b = await signInWithLink(h, await portalLink(h, acme));
    const cookie = b.cookie!;
    expect((await b.req('DELETE', '/v1/session', { csrf: null })).status).toBe(403);
    expect((await b.req('GET', '/v1/session')).status).toBe(200);
    const out = await b.req('DELETE', '/v1/session');
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^herald_session=;.*Max-Age=0/);
    // The old cookie, replayed, opens nothing.
    const replay = await fetch(`${h.url}/v1/accounts/${acme}`, { headers: { cookie } });
    expect(replay.status).toBe(401);
    expect((await fetch(`${h.url}/v1/session`, { headers: { cookie } })).status).toBe(401);
  });

  it('serves the app at / with strict security headers and an SPA fallback', async () => {
    const expectSecure = (r: Response) => {
      expect(r.headers.get('content-security-policy')).toBe(CSP);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
    };
    const root = await fetch(h.url + '/');
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/^text\/html/);
    expect(root.headers.get('cache-control')).toBe('no-cache');
    expectSecure(root);
    expect(await root.text()).toContain('/assets/app-1234.js');

    const deep = await fetch(h.url + '/settings/webhooks/wh_123/history');
    expect(deep.status).toBe(200);
    expectSecure(deep);
    expect(await deep.text()).toContain('<title>Herald</title>');

    const asset = await fetch(h.url + '/assets/app-1234.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expectSecure(asset);

    // Misses under server paths stay JSON 404s; a missing file is not answered with HTML.
    const api = await fetch(h.url + '/v1/nothing-here');
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('not_found');
    expect((await fetch(h.url + '/assets/gone-999.js')).status).toBe(404);
    // Traversal never reaches the file system: only files of the build are served.
    const traversal = await fetch(h.url + '/assets/..%2f..%2f..%2f..%2fetc%2fpasswd');
    expect(await traversal.text()).not.toContain('root:');
    expect((await fetch(h.url + '/healthz')).status).toBe(200);
  });
});

describe('dashboard without a build', () => {
  it('explains how to build it instead of failing', async () => {
    const missing = join(tmpdir(), 'herald-no-dist-' + process.pid);
    const h = await startHerald({}, { worker: false, plugins: [dashboardPlugin({ distDir: missing })] });
    try {
      const r = await fetch(h.url + '/');
      expect(r.status).toBe(503);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      const text = await r.text();
      expect(text).toContain('npm run build');
      // The API is unaffected.
      expect((await h.api('GET', '/v1/meta')).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
