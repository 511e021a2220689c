import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardPlugin } from '../../server/src/dashboard/index.js';
import { ADMIN_TOKEN, createAccount, startHerald, waitFor, type TestHerald } from '../../server/test/helpers/herald.js';
import { query } from '../../server/test/helpers/api-kit.js';
import { startReceiver, type Receiver } from '../../server/test/helpers/receiver.js';

/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against a
 * real Herald and a real receiver on 127.0.0.1: what a customer does, click by click. It also
 * takes the screenshots used in docs/DASHBOARD.md.
 */

/*
 * The page.evaluate callbacks run in the browser. This file is type-checked with Node's types
 * only (the DOM lib's fetch types clash with Node's in the shared test helpers), so the few
 * browser globals those callbacks use are declared loosely here.
 */
declare const document: any;
declare const window: any;
declare const location: { pathname: string };
declare const localStorage: Record<string, string>;
declare const sessionStorage: Record<string, string>;
declare function getComputedStyle(el: unknown): { boxShadow: string };
type HTMLElement = { blur(): void };

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const repo = join(pkg, '..', '..');
/**
 * Screenshots go to test-results/ (ignored by git) on every run, so the screenshot code is
 * exercised; HERALD_UPDATE_SCREENSHOTS=1 writes them to docs/screenshots for the docs instead.
 */
const SHOTS = process.env.HERALD_UPDATE_SCREENSHOTS ? join(repo, 'docs', 'screenshots') : join(repo, 'test-results', 'dashboard-screenshots');
const CHROMIUM = process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

if (!haveChromium && !process.env.CI) {
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n  DASHBOARD BROWSER TESTS SKIPPED: ${CHROMIUM} not found.\n  Run scripts/install-chromium.sh to install Debian's chromium (CI fails instead of skipping).\n${bar}\n`);
}

/** Rebuild the app when its sources are newer than the build (a plain `npx vitest run` skips `pretest`). */
function ensureBuilt(): void {
  const index = join(pkg, 'dist', 'index.html');
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  const srcTime = Math.max(newest(join(pkg, 'src')), statSync(join(pkg, 'index.html')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= srcTime) return;
  const r = spawnSync('npm', ['run', 'build', '-w', 'packages/dashboard'], { cwd: repo, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building the dashboard failed');
}

const suite = haveChromium ? describe : process.env.CI ? describe : describe.skip;

suite('dashboard in a browser', () => {
  let h: TestHerald;
  let rx: Receiver;
  let browser: Browser;
  let desktop: BrowserContext;
  let page: Page;
  let pro: string;
  let free: string;
  /** What the main endpoint answers; the test flips it to force failures. */
  let mainStatus = 200;
  const problems: string[] = [];

  const shot = async (p: Page, name: string, fullPage = true) => {
    // From the top, with fonts loaded, so sticky headers sit where a reader expects them.
    await p.evaluate(async () => {
      window.scrollTo(0, 0);
      (document.activeElement as HTMLElement | null)?.blur();
      await document.fonts.ready;
    });
    await p.mouse.move(0, 0);
    await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
  };
  const portal = async (account: string): Promise<string> => {
    const r = await h.api('POST', `/v1/accounts/${account}/portal-sessions`);
    expect(r.status).toBe(201);
    return r.body.url as string;
  };
  /** Opens a portal link as a customer's browser does: its page goes on to the app by itself. */
  const openLink = async (p: Page, url: string) => {
    await p.goto(url);
    await p.waitForURL((u) => !u.pathname.startsWith('/portal/'));
  };
  /** A new browser context signed in to the account through a portal link, for a test of its own. */
  const customerPage = async (account: string): Promise<{ ctx: BrowserContext; p: Page }> => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const p = await ctx.newPage();
    watch(p);
    await openLink(p, await portal(account));
    return { ctx, p };
  };
  /** Publishes `n` events one after the other; every webhook of the account subscribes to all. */
  const publish = async (account: string, n: number) => {
    for (let i = 0; i < n; i++) {
      expect((await h.api('POST', `/v1/accounts/${account}/events`, { type: 'content.generated', data: { n: i } })).status).toBe(202);
    }
  };
  /** The delivery ids of a webhook, newest first, as the API lists them. */
  const deliveryIds = async (account: string, webhook: string, status = ''): Promise<string[]> =>
    (await h.api('GET', `/v1/accounts/${account}/deliveries?webhook_id=${webhook}&limit=100${status ? `&status=${status}` : ''}`)).body.data.map((d: { id: string }) => d.id);
  const shownIds = (p: Page) => p.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-delivery-id') as string));
  /** Clicks "Load older deliveries" until the history says it has them all. */
  const loadAllOlder = async (p: Page) => {
    const more = p.getByRole('button', { name: 'Load older deliveries' });
    for (let i = 0; i < 10 && (await more.isVisible()); i++) {
      const before = await p.locator('tbody tr').count();
      await more.click();
      await expect.poll(async () => (await p.getByText("That's all of them.").isVisible()) || (await p.locator('tbody tr').count()) > before).toBe(true);
    }
    expect(await p.getByText("That's all of them.").isVisible()).toBe(true);
  };
  /** Whether the keyboard focus is on this element. */
  const hasFocus = (l: Locator) => l.evaluate((el) => el === document.activeElement);
  const watch = (p: Page) => {
    p.on('console', (m) => {
      // The app's own failed fetches (an expected 401 before sign-in) are logged by Chromium; CSP violations are what matter.
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
    });
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  };

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing and CI is set: run scripts/install-chromium.sh before the tests`);
    ensureBuilt();
    mkdirSync(SHOTS, { recursive: true });
    rx = await startReceiver(async (req, res) => {
      if (req.url.startsWith('/hooks/old')) {
        res.statusCode = 410;
        res.end('this endpoint was retired');
      } else if (req.url.startsWith('/hooks/down')) {
        // Always failing, with attempts left: the delivery goes back to pending after each one.
        res.statusCode = 500;
        res.end('down for maintenance');
      } else if (req.url.startsWith('/hooks/slow')) {
        // Long enough to see a button while it is busy.
        await new Promise((r) => setTimeout(r, 1500));
        res.end('slow but fine');
      } else if (req.url.startsWith('/hooks/html')) {
        res.setHeader('content-type', 'text/html');
        res.end(XSS);
      } else if (mainStatus === 200) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ received: true }));
      } else {
        res.statusCode = mainStatus;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: 'database connection pool exhausted', request_id: 'req_7f3a9c' }));
      }
    });
    h = await startHerald(
      { HERALD_DEV: 'true', HERALD_EGRESS_IPS: '203.0.113.0/28, 198.51.100.7/32', HERALD_POLL_INTERVAL_MS: '100' },
      { plugins: [dashboardPlugin()] },
    );
    pro = await createAccount(h, 'pro', 'Acme Publishing');
    free = await createAccount(h, 'free', 'Tiny Blog');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    desktop = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    await desktop.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url });
    page = await desktop.newPage();
    watch(page);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await rx?.close();
  });

  it('opens with a portal link, then shows the empty state', async () => {
    await openLink(page, await portal(pro));
    // The token left the address bar.
    expect(new URL(page.url()).pathname).not.toContain('/portal/');
    await expect.poll(() => page.getByRole('heading', { name: 'No webhooks yet' }).isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => page.getByText('Outgoing IP addresses').isVisible()).toBe(true);
    expect(await page.getByText('203.0.113.0/28').first().isVisible()).toBe(true);
    expect(await page.getByText(/tries again after 1 minute, 10 minutes, 1 hour 40 minutes and 16 hours 40 minutes/).isVisible()).toBe(true);
    // Nothing secret is kept in web storage.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    expect(stored).not.toMatch(/csrf|session|whsec_/i);
    await shot(page, 'webhooks-empty');
  });

  it('shows the API error at the field, tests the unsaved form, then saves', async () => {
    await page.getByRole('link', { name: 'Add Webhook' }).click();
    await page.getByLabel('Destination URL').fill('ftp://example.com/hook');
    await page.getByLabel('content.generated').check();
    await page.getByRole('button', { name: 'Save Webhook' }).click();
    // The API's own message, at the URL field.
    const urlError = page.locator('#url-error');
    await expect.poll(() => urlError.isVisible()).toBe(true);
    expect(await page.getByLabel('Destination URL').getAttribute('aria-invalid')).toBe('true');
    expect(await urlError.textContent()).toContain('URL must use https:// or http://');

    await page.getByLabel('Destination URL').fill(`${rx.url}/hooks/herald`);
    await page.getByLabel('Description').fill('Production content sync');
    await page.getByRole('button', { name: 'Generate' }).click();
    const secret = await page.getByLabel('Signing secret').inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    expect(await page.getByLabel('Signing secret').getAttribute('type')).toBe('text');
    await page.getByRole('button', { name: 'Add header' }).click();
    await page.getByLabel('Header 1 name').fill('X-Api-Key');
    await page.getByLabel('Header 1 value').fill('sk_live_4242');
    await page.getByLabel('publishing.failed').check();

    const before = rx.received.length;
    await page.getByRole('button', { name: 'Test Connection' }).click();
    const result = page.getByTestId('test-result');
    await expect.poll(() => result.isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.getByTestId('test-status').textContent()).toBe('200 OK');
    expect(await page.getByTestId('test-time').textContent()).toMatch(/^in \d+(\.\d+)? (ms|s)$/);
    expect(await result.textContent()).toContain('{"received":true}');
    // The ping really carried the form's secret and header.
    const ping = rx.received[before]!;
    expect(ping.headers['x-api-key']).toBe('sk_live_4242');
    expect(ping.headers['x-herald-event']).toBe('ping');
    expect(ping.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', secret).update(ping.body).digest('hex'));
    await page.getByRole('button', { name: 'Hide', exact: true }).click();
    await shot(page, 'webhook-form-test');

    await page.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => page.getByText('Webhook added').isVisible(), { timeout: 10_000 }).toBe(true);
    const saved = await h.api('GET', `/v1/accounts/${pro}/webhooks`);
    expect(saved.body.data).toHaveLength(1);
    expect(saved.body.data[0]).toMatchObject({ url: `${rx.url}/hooks/herald`, events: ['content.generated', 'publishing.failed'], headers: { 'X-Api-Key': 'sk_live_4242' }, has_secret: true });
    expect((await h.api('GET', `/v1/accounts/${pro}/webhooks/${saved.body.data[0].id}/secret`)).body.secret).toBe(secret);
  });

  it('lists webhooks with health, and the reason Herald turned one off', async () => {
    // A second endpoint that answers 410 Gone: Herald turns it off and says why.
    const old = await h.api('POST', `/v1/accounts/${pro}/webhooks`, { url: `${rx.url}/hooks/old`, events: ['*'], description: 'Legacy CMS bridge' });
    expect(old.status).toBe(201);
    for (let i = 0; i < 6; i++) {
      const r = await h.api('POST', `/v1/accounts/${pro}/events`, { type: i % 3 === 2 ? 'publishing.failed' : 'content.generated', data: { article_id: 1000 + i, title: `Post ${i}` } });
      expect(r.status).toBe(202);
    }
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${pro}/webhooks/${old.body.id}`)).body.enabled === false);
    await waitFor(async () => {
      const d = await h.api('GET', `/v1/accounts/${pro}/deliveries?status=pending`);
      return d.body.data.length === 0;
    });
    await page.reload();
    await expect.poll(() => page.getByText('Herald turned this webhook off').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByText(/410 Gone/).first().isVisible()).toBe(true);
    await expect.poll(() => page.getByText('100% succeeded').isVisible()).toBe(true);
    const switches = page.getByRole('switch');
    expect(await switches.count()).toBe(2);
    await shot(page, 'webhooks-list');

    // The switch turns the old one back on, through PATCH.
    const off = page.getByRole('switch', { name: /hooks\/old/ });
    expect(await off.getAttribute('aria-checked')).toBe('false');
    await off.click();
    await expect.poll(() => off.getAttribute('aria-checked')).toBe('true');
    expect((await h.api('GET', `/v1/accounts/${pro}/webhooks/${old.body.id}`)).body).toMatchObject({ enabled: true, disabled_reason: null });
    await off.click();
    await expect.poll(() => off.getAttribute('aria-checked')).toBe('false');
  });

  it('shows the history live, a failure explained, and a successful redelivery', async () => {
    const hooks = (await h.api('GET', `/v1/accounts/${pro}/webhooks`)).body.data as Array<{ id: string; url: string }>;
    const main = hooks.find((w) => w.url.endsWith('/hooks/herald'))!;
    await page.getByRole('link', { name: 'History' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Webhook History' }).isVisible()).toBe(true);
    const rows = page.locator('tbody tr');
    // Six events, all subscribed; the unsaved form's ping is not part of any history.
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(6);

    // Live: a new delivery appears without a reload, and its failure shows.
    mainStatus = 500;
    const pub = await h.api('POST', `/v1/accounts/${pro}/events`, { type: 'content.generated', data: { article_id: 2001, title: 'Breaking: quarterly results' } });
    const dlv = (pub.body.deliveries as Array<{ id: string; webhook_id: string }>).find((d) => d.webhook_id === main.id)!.id;
    const row = page.locator(`tr[data-delivery-id="${dlv}"]`);
    await expect.poll(() => row.isVisible(), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toContain('500 Internal Server Error');
    expect(await row.getAttribute('class')).toContain('row-retrying');
    expect(await row.textContent()).toContain('Retrying');

    // Filters.
    await page.getByLabel('Status', { exact: true }).selectOption('pending');
    await expect.poll(() => rows.count()).toBe(1);
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByLabel('Event', { exact: true }).selectOption('publishing.failed');
    await expect.poll(() => rows.count()).toBe(2);
    await page.getByLabel('Event', { exact: true }).selectOption('');
    await expect.poll(() => rows.count()).toBe(7);
    await shot(page, 'webhook-history');

    // The detail: exact request, the attempt, the answer and what it means.
    await row.getByRole('link').click();
    await expect.poll(() => page.getByText('Not delivered yet. Herald will try again automatically.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByText(/Your endpoint had an error while handling the request \(500\)/).first().isVisible()).toBe(true);
    expect(await page.getByText('database connection pool exhausted').first().isVisible()).toBe(true);
    expect(await page.getByText('Next attempt').isVisible()).toBe(true);
    const pretty = await page.locator('pre.code').first().textContent();
    expect(pretty).toContain('"title": "Breaking: quarterly results"');
    await page.getByRole('button', { name: 'Raw' }).click();
    const raw = await page.locator('pre.code').first().textContent();
    expect(raw).toBe(`{"event":"content.generated","created_at":"${pub.body.created_at}","delivery_id":"${dlv}","data":{"article_id":2001,"title":"Breaking: quarterly results"}}`);
    await page.getByRole('button', { name: 'Pretty' }).click();
    // Headers as the server redacted them.
    expect(await page.getByRole('rowheader', { name: 'x-herald-delivery' }).first().isVisible()).toBe(true);
    await shot(page, 'delivery-detail');

    // The endpoint is fixed; Redeliver sends the same delivery again and the page follows it.
    mainStatus = 200;
    const before = rx.received.length;
    await page.getByRole('button', { name: 'Redeliver' }).click();
    await expect.poll(() => page.getByText(/Redelivered successfully/).isVisible(), { timeout: 20_000 }).toBe(true);
    expect(await page.getByText('Delivered. Your endpoint accepted this event.').isVisible()).toBe(true);
    const again = rx.received.slice(before).find((r) => r.headers['x-herald-delivery'] === dlv)!;
    expect(again.headers['x-herald-attempt']).toBe('2');
    expect(await page.getByRole('heading', { name: 'Attempts (2)' }).isVisible()).toBe(true);
    await shot(page, 'delivery-detail-redelivered');
  });

  it('works on a 390 px phone', async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-US', timezoneId: 'UTC' });
    const p = await ctx.newPage();
    watch(p);
    await openLink(p, await portal(pro));
    await expect.poll(() => p.getByRole('switch').first().isVisible(), { timeout: 10_000 }).toBe(true);
    // Nothing overflows sideways.
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(p, 'webhooks-list-phone');
    // The settings menu opens from the header.
    await p.getByRole('button', { name: 'Settings menu' }).click();
    expect(await p.getByRole('navigation', { name: 'Settings' }).getByText('Webhooks').isVisible()).toBe(true);
    await p.getByRole('button', { name: 'Settings menu' }).click();
    await p.getByRole('link', { name: 'History' }).first().click();
    await expect.poll(() => p.locator('tbody tr').first().isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(p, 'webhook-history-phone', false);
    await ctx.close();
  });

  it('pages through older deliveries', async () => {
    mainStatus = 200;
    const hooks = (await h.api('GET', `/v1/accounts/${pro}/webhooks`)).body.data as Array<{ id: string; url: string }>;
    const main = hooks.find((w) => w.url.endsWith('/hooks/herald'))!;
    for (let i = 0; i < 24; i++) {
      expect((await h.api('POST', `/v1/accounts/${pro}/events`, { type: 'content.generated', data: { n: i } })).status).toBe(202);
    }
    await page.goto(`${h.url}/settings/webhooks/${main.id}/history`);
    const rows = page.locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(25);
    await page.getByRole('button', { name: 'Load older deliveries' }).click();
    await expect.poll(() => rows.count()).toBe(31);
    expect(await page.getByText("That's all of them.").isVisible()).toBe(true);
    // Newest first, no duplicates.
    const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-delivery-id')));
    expect(new Set(ids).size).toBe(31);
    expect([...ids].sort().reverse()).toEqual(ids);
  });

  it('edits a webhook: the secret is write-only until revealed; delete asks first', async () => {
    mainStatus = 200;
    const hooks = (await h.api('GET', `/v1/accounts/${pro}/webhooks`)).body.data as Array<{ id: string; url: string }>;
    const main = hooks.find((w) => w.url.endsWith('/hooks/herald'))!;
    const old = hooks.find((w) => w.url.endsWith('/hooks/old'))!;
    await page.goto(`${h.url}/settings/webhooks/${main.id}`);
    await expect.poll(() => page.getByText('A secret is set.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.locator('input[value^="whsec_"]').count()).toBe(0);
    await page.getByRole('button', { name: 'Reveal secret' }).click();
    const stored = (await h.api('GET', `/v1/accounts/${pro}/webhooks/${main.id}/secret`)).body.secret as string;
    await expect.poll(() => page.getByLabel('Current secret').inputValue()).toBe(stored);
    // Unchanged form: the saved webhook is tested, and the ping lands in its history.
    const pings = async () => (await h.api('GET', `/v1/accounts/${pro}/deliveries?webhook_id=${main.id}&event_type=ping&limit=100`)).body.data as Array<{ status: string }>;
    const pingsBefore = (await pings()).length;
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await expect.poll(() => page.getByTestId('test-status').textContent(), { timeout: 15_000 }).toBe('200 OK');
    expect(await page.getByText("This test is recorded in the webhook's history.").isVisible()).toBe(true);
    const after = await pings();
    expect(after).toHaveLength(pingsBefore + 1);
    expect(after[0]!.status).toBe('succeeded');
    await page.getByLabel('Description').fill('Production content sync (EU)');
    // A rate limit that is not a whole number is caught at the field, which gets the focus.
    const rate = page.getByLabel('Max deliveries per second');
    await rate.fill('2.5');
    await page.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => page.locator('#rate-error').textContent()).toContain('whole number');
    await expect.poll(() => rate.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await rate.getAttribute('aria-invalid')).toBe('true');
    await rate.fill('25');
    await page.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => page.getByText('Webhook saved.').isVisible(), { timeout: 10_000 }).toBe(true);
    const saved = (await h.api('GET', `/v1/accounts/${pro}/webhooks/${main.id}`)).body;
    expect(saved.description).toBe('Production content sync (EU)');
    expect(saved.rate_limit).toBe(25);
    // The list says so, in words for a screen reader.
    await expect.poll(() => page.getByText('At most 25 deliveries a second').count()).toBe(1);
    // The form shows it again, and emptying it removes the limit.
    await page.goto(`${h.url}/settings/webhooks/${main.id}`);
    await expect.poll(() => rate.inputValue(), { timeout: 10_000 }).toBe('25');
    await rate.fill('');
    await page.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => page.getByText('Webhook saved.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await h.api('GET', `/v1/accounts/${pro}/webhooks/${main.id}`)).body.rate_limit).toBeNull();

    await page.goto(`${h.url}/settings/webhooks/${old.id}`);
    await page.getByRole('button', { name: 'Delete webhook' }).click();
    const confirm = page.getByRole('button', { name: 'Yes, delete webhook' });
    await expect.poll(() => confirm.evaluate((el) => el === document.activeElement)).toBe(true);
    expect((await h.api('GET', `/v1/accounts/${pro}/webhooks/${old.id}`)).status).toBe(200); // asked, not yet deleted
    await confirm.click();
    await expect.poll(() => page.getByText('Webhook deleted.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await h.api('GET', `/v1/accounts/${pro}/webhooks/${old.id}`)).status).toBe(404);
  });

  it('tests an edited form signed with the saved secret, without revealing it', async () => {
    mainStatus = 200;
    const acc = await createAccount(h, 'pro', 'Edit Test Co');
    const secret = 'whsec_saved-secret-never-revealed-0123';
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/before`, events: ['*'], secret })).body.id as string;
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    await expect.poll(() => p.getByText('A secret is set.').isVisible(), { timeout: 10_000 }).toBe(true);
    await p.getByLabel('Destination URL').fill(`${rx.url}/hooks/after`);
    const before = rx.received.length;
    await p.getByRole('button', { name: 'Test Connection' }).click();
    await expect.poll(() => p.getByTestId('test-status').textContent(), { timeout: 15_000 }).toBe('200 OK');
    const ping = rx.received.slice(before).find((r) => r.url === '/hooks/after')!;
    expect(ping.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', secret).update(ping.body).digest('hex'));
    const audit = (await h.api('GET', `/v1/accounts/${acc}/audit-events?limit=100`)).body.data as Array<{ action: string }>;
    expect(audit.map((e) => e.action)).not.toContain('webhook.secret_revealed');
    expect(await p.locator('input[value^="whsec_"]').count()).toBe(0);
    await ctx.close();
  });

  it('rotates the secret after asking, and shows until when the previous one still signs', async () => {
    const hooks = (await h.api('GET', `/v1/accounts/${pro}/webhooks`)).body.data as Array<{ id: string; url: string }>;
    const main = hooks.find((w) => w.url.endsWith('/hooks/herald'))!;
    const secretOf = async () => (await h.api('GET', `/v1/accounts/${pro}/webhooks/${main.id}/secret`)).body.secret as string;
    const before = await secretOf();
    await page.goto(`${h.url}/settings/webhooks/${main.id}`);
    await expect.poll(() => page.getByText('A secret is set.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByTestId('previous-secret').count()).toBe(0);
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const confirm = page.getByRole('button', { name: 'Rotate now' });
    await expect.poll(() => confirm.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await secretOf()).toBe(before); // asked, not yet rotated
    await confirm.click();
    await expect.poll(() => page.getByText('Secret rotated.', { exact: false }).isVisible(), { timeout: 10_000 }).toBe(true);
    const after = await secretOf();
    expect(after).not.toBe(before);
    expect(after).toMatch(/^whsec_/);
    await expect.poll(() => page.getByLabel('Current secret').inputValue()).toBe(after);
    expect(await page.getByTestId('previous-secret').isVisible()).toBe(true);
    const w = (await h.api('GET', `/v1/accounts/${pro}/webhooks/${main.id}`)).body;
    expect(Date.parse(w.previous_secret_expires_at)).toBeGreaterThan(Date.now() + 23 * 3600_000);
    expect(Date.parse(w.previous_secret_expires_at)).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
    // After a reload the page reads it from the webhook.
    await page.reload();
    await expect.poll(() => page.getByTestId('previous-secret').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByTestId('previous-secret').textContent()).toContain('The previous secret also signs every delivery until');
    // Saving the form afterwards keeps the rotation (the secret is not sent).
    await page.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => page.getByText('Webhook saved.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await h.api('GET', `/v1/accounts/${pro}/webhooks/${main.id}`)).body.previous_secret_expires_at).toBe(w.previous_secret_expires_at);
    expect(await secretOf()).toBe(after);
    // A second rotation says that the first one's previous secret stops at once.
    await page.goto(`${h.url}/settings/webhooks/${main.id}`);
    await expect.poll(() => page.getByTestId('previous-secret').isVisible(), { timeout: 10_000 }).toBe(true);
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    expect(await page.getByTestId('rotate-drops-previous').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Cancel' }).first().click();
    expect(await secretOf()).toBe(after);
  });

  it('shows receiver HTML as text and never runs it', async () => {
    await page.goto(`${h.url}/settings/webhooks/new`);
    await page.getByLabel('Destination URL').fill(`${rx.url}/hooks/html`);
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await expect.poll(() => page.getByTestId('test-result').textContent(), { timeout: 15_000 }).toContain(XSS);

    const w = await h.api('POST', `/v1/accounts/${pro}/webhooks`, { url: `${rx.url}/hooks/html`, events: ['analysis.completed'] });
    const pub = await h.api('POST', `/v1/accounts/${pro}/events`, { type: 'analysis.completed', data: { report: 'q3' } });
    const dlv = (pub.body.deliveries as Array<{ id: string; webhook_id: string }>).find((d) => d.webhook_id === w.body.id)!.id;
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${pro}/deliveries/${dlv}`)).body.status === 'succeeded');
    await page.goto(`${h.url}/settings/webhooks/${w.body.id}/history/${dlv}`);
    await expect.poll(() => page.getByText(XSS).first().isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    await h.api('DELETE', `/v1/accounts/${pro}/webhooks/${w.body.id}`);
  });

  it('explains the plan on a free account instead of showing a form', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const p = await ctx.newPage();
    watch(p);
    await openLink(p, await portal(free));
    await expect.poll(() => p.getByRole('heading', { name: 'Webhooks are not included in the Free plan' }).isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await p.getByText('Tiny Blog', { exact: true }).first().isVisible()).toBe(true);
    expect(await p.getByRole('button', { name: 'Save Webhook' }).count()).toBe(0);
    // Deep links are gated too.
    await p.goto(`${h.url}/settings/webhooks/new`);
    await expect.poll(() => p.getByRole('heading', { name: 'Webhooks are not included in the Free plan' }).isVisible(), { timeout: 10_000 }).toBe(true);
    await shot(p, 'free-plan');
    await ctx.close();
  });

  it('lets the operator sign in with the admin token and pick an account, by keyboard', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const p = await ctx.newPage();
    watch(p);
    await p.goto(h.url + '/');
    await expect.poll(() => p.getByRole('heading', { name: 'Sign in to Webhooks' }).isVisible(), { timeout: 10_000 }).toBe(true);
    await p.getByLabel('Admin token').fill('not-the-right-token');
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByText('That admin token is not valid.', { exact: false }).isVisible()).toBe(true);
    await shot(p, 'sign-in');
    await p.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByRole('heading', { name: 'Choose an account' }).isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => p.getByText('Tiny Blog').isVisible(), { timeout: 10_000 }).toBe(true);
    await shot(p, 'account-picker');
    // Keyboard only: focus the account and press Enter.
    await p.getByRole('button', { name: /Acme Publishing/ }).focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByRole('switch').first().isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await p.getByText('Operator').isVisible()).toBe(true);
    // Tab reaches the Add Webhook button with a visible focus ring.
    let found = false;
    for (let i = 0; i < 30 && !found; i++) {
      await p.keyboard.press('Tab');
      found = await p.evaluate(() => document.activeElement?.textContent?.trim() === 'Add Webhook');
    }
    expect(found).toBe(true);
    const ring = await p.evaluate(() => getComputedStyle(document.activeElement!).boxShadow);
    expect(ring).not.toBe('none');
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByRole('heading', { name: 'Add webhook' }).isVisible()).toBe(true);
    await p.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => p.getByRole('heading', { name: 'Sign in to Webhooks' }).isVisible()).toBe(true);
    expect((await ctx.cookies()).filter((c) => c.name === 'herald_session')).toHaveLength(0);
    await ctx.close();
  });

  it('resends the failed deliveries of a period after asking, once the webhook is on again', async () => {
    mainStatus = 200;
    const acc = await createAccount(h, 'pro', 'Resend Co');
    // A 410 fails the delivery for good and turns the webhook off: the state "Resend failed" is for.
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/old-endpoint`, events: ['*'] })).body;
    const dlv = (await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { resend: true } })).body.deliveries[0].id;
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${dlv}`)).body.status === 'failed');
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const p = await ctx.newPage();
    watch(p);
    await openLink(p, await portal(acc));
    await p.goto(`${h.url}/settings/webhooks/${wh.id}/history`);
    await expect.poll(() => p.locator(`tr[data-delivery-id="${dlv}"]`).isVisible(), { timeout: 10_000 }).toBe(true);
    // Off: nothing to resend to, so no button (the notice says how to turn it on).
    expect(await p.getByText('This webhook is off').isVisible()).toBe(true);
    expect(await p.getByRole('button', { name: 'Resend failed' }).count()).toBe(0);

    // The customer fixes the URL and turns the webhook on.
    await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${wh.id}`, { url: `${rx.url}/hooks/new-endpoint`, enabled: true });
    await p.reload();
    await p.getByRole('button', { name: 'Resend failed' }).click();
    // It asks first; Cancel sends nothing and gives focus back to the button.
    const panel = p.getByRole('group', { name: 'Confirm resending failed deliveries' });
    expect(await panel.getByText('Send failed deliveries again?').isVisible()).toBe(true);
    await panel.getByRole('button', { name: 'Cancel' }).click();
    expect(await p.getByText('Send failed deliveries again?').count()).toBe(0);
    await expect.poll(() => p.evaluate(() => document.activeElement?.id)).toBe('resend-open');
    await p.getByRole('button', { name: 'Resend failed' }).click();
    await p.getByLabel('Created in').selectOption({ label: 'the last hour' });
    await shot(p, 'webhook-history-resend');

    // Refused (the webhook was turned off meanwhile): the panel says why, and it stays said
    // through the live refreshes of the history (every 4 s).
    await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${wh.id}`, { enabled: false });
    await panel.getByRole('button', { name: 'Resend failed deliveries' }).click();
    const alert = panel.getByRole('alert');
    await expect.poll(() => alert.textContent(), { timeout: 10_000 }).toContain('Could not resend: the webhook is disabled');
    await new Promise((r) => setTimeout(r, 4500));
    expect(await alert.textContent()).toContain('Could not resend');
    expect(rx.received.filter((r) => r.headers['x-herald-delivery'] === dlv)).toHaveLength(1);

    await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${wh.id}`, { enabled: true });
    await panel.getByRole('button', { name: 'Resend failed deliveries' }).click();
    await expect.poll(() => p.getByText('1 failed delivery is being sent again.').isVisible(), { timeout: 10_000 }).toBe(true);
    const row = p.locator(`tr[data-delivery-id="${dlv}"]`);
    await expect.poll(() => row.getAttribute('class'), { timeout: 15_000 }).toContain('row-succeeded');
    const sent = rx.received.filter((r) => r.headers['x-herald-delivery'] === dlv);
    expect(sent.map((r) => [r.url, r.headers['x-herald-attempt']])).toEqual([['/hooks/old-endpoint', '1'], ['/hooks/new-endpoint', '2']]);
    // Asked again (the period chosen is kept), there is nothing left to send.
    await p.getByRole('button', { name: 'Resend failed' }).click();
    expect(await p.getByLabel('Created in').inputValue()).toBe('0');
    await p.getByRole('button', { name: 'Resend failed deliveries' }).click();
    await expect.poll(() => p.getByText('No failed deliveries in the last hour.').isVisible(), { timeout: 10_000 }).toBe(true);
    // The audit log names the dashboard session of the account as the one who resent them.
    const audit = (await h.api('GET', `/v1/accounts/${acc}/audit-events`)).body.data as Array<{ action: string; actor: string; details: { queued?: number } }>;
    expect(audit.filter((e) => e.action === 'webhook.recovered')).toEqual([expect.objectContaining({ actor: 'portal_session', details: expect.objectContaining({ queued: 1 }) })]);
    // The same, in words, on the Activity page (reached from the webhooks list).
    await p.goto(`${h.url}/settings/webhooks`);
    await p.getByRole('link', { name: 'Activity' }).click();
    await expect.poll(() => p.getByRole('heading', { name: 'Activity' }).isVisible()).toBe(true);
    const rows = p.locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBeGreaterThan(2);
    const texts = await rows.allTextContents();
    expect(texts[0]).toContain('Someone signed in to this page');
    expect(texts[0]).toContain('Sent 1 failed delivery again');
    expect(texts.some((t) => t.includes('Your provider, through the API') && t.includes(`URL ${rx.url}/hooks/old-endpoint → ${rx.url}/hooks/new-endpoint`) && t.includes('turned on'))).toBe(true);
    expect(texts.at(-1)).toContain('Created the account');
    await shot(p, 'activity');
    await ctx.close();
  });

  it('finds a delivery by the id a receiver logged, from any webhook\'s history', async () => {
    mainStatus = 200;
    const acc = await createAccount(h, 'pro', 'Find Co');
    const target = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/find-target`, events: ['*'] })).body.id as string;
    const other = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/find-other`, events: ['analysis.completed'] })).body.id as string;
    const dlv = (await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { find: 'me' } })).body.deliveries[0].id as string;
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const p = await ctx.newPage();
    watch(p);
    await openLink(p, await portal(acc));
    await p.goto(`${h.url}/settings/webhooks/${other}/history`);
    const box = p.getByLabel('Delivery id');
    const search = p.getByRole('search', { name: 'Find a delivery by id' });
    // Not an id: said at the field, nothing asked of the server.
    await box.fill('order-1234');
    await search.getByRole('button', { name: 'Find' }).click();
    expect(await search.getByRole('alert').textContent()).toContain('A delivery id looks like dlv_');
    // An id of no delivery of this account: another account's, or one that is gone.
    const foreign = (await h.api('GET', `/v1/accounts/${pro}/deliveries?limit=1`)).body.data[0].id as string;
    await box.fill(foreign);
    await search.getByRole('button', { name: 'Find' }).click();
    await expect.poll(() => search.getByRole('alert').textContent()).toContain('No delivery with this id in this account');
    // The receiver's id, pasted in lower case with spaces: it opens under the webhook it went to.
    await box.fill(`  ${dlv.toLowerCase()} `);
    await box.press('Enter');
    await expect.poll(() => p.evaluate(() => location.pathname)).toBe(`/settings/webhooks/${target}/history/${dlv}`);
    await expect.poll(() => p.getByText(dlv).first().isVisible()).toBe(true);
    await ctx.close();
  });

  it('waits out the API rate limit on reads, and says when to try again when a save is refused', async () => {
    const busy = await startHerald({ HERALD_DEV: 'true', HERALD_API_RATE_LIMIT: '5' }, { plugins: [dashboardPlugin()], worker: false });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    try {
      const acc = await createAccount(busy, 'pro', 'Busy Co');
      const url = 'https://example.com/hooks/busy';
      await busy.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['*'], description: 'Busy endpoint' });
      const p = await ctx.newPage();
      watch(p);
      await openLink(p, (await busy.api('POST', `/v1/accounts/${acc}/portal-sessions`)).body.url as string);
      const edit = p.getByRole('link', { name: `Edit ${url}` });
      await expect.poll(() => edit.isVisible(), { timeout: 10_000 }).toBe(true);
      /**
       * Spends the session's budget from the page itself (an account's tabs share it), then
       * clicks the button named, at once; answers how many of the spending reads were refused.
       */
      const spendThenClick = (button: string | null) =>
        p.evaluate(
          async ([path, name]: [string, string | null]) => {
            const answers = await Promise.all(Array.from({ length: 30 }, () => fetch(path, { credentials: 'same-origin' })));
            if (name) [...document.querySelectorAll('a, button')].find((b: any) => b.textContent.trim() === name || b.getAttribute('aria-label') === name).click();
            return answers.filter((r: { status: number }) => r.status === 429).length;
          },
          [`/v1/accounts/${acc}`, button] as [string, string | null],
        );

      // Reads refused with Retry-After are waited out once: the form opens, with no error.
      expect(await spendThenClick(`Edit ${url}`)).toBeGreaterThan(0);
      await expect.poll(() => p.getByLabel('Description').inputValue(), { timeout: 10_000 }).toBe('Busy endpoint');
      expect(await p.getByText('Could not open this webhook').count()).toBe(0);

      // A change is never repeated behind the user's back: a refused save says when to try
      // again, and nothing is saved. (The budget refills one request every 200 ms, so a click
      // may land just after a refill and save: then it is tried again, a few times at most.)
      const refused = p.getByText(/Too many requests from this account just now\. Try again in \d+ seconds?\./);
      const saved = p.getByText('Webhook saved.');
      const description = async () => (await busy.api('GET', `/v1/accounts/${acc}/webhooks`)).body.data[0].description as string;
      let tries = 0;
      while (!(await refused.isVisible()) && tries++ < 5) {
        if (await saved.isVisible()) await edit.click();
        const before = await description();
        await p.getByLabel('Description').fill(`Busy endpoint, try ${tries}`);
        expect(await spendThenClick('Save Webhook')).toBeGreaterThan(0);
        await expect.poll(async () => (await refused.isVisible()) || (await saved.isVisible()), { timeout: 10_000 }).toBe(true);
        if (await refused.isVisible()) expect(await description()).toBe(before);
      }
      expect(await refused.isVisible()).toBe(true);
      expect(await p.getByRole('alert').filter({ hasText: 'Too many requests' }).count()).toBe(1);
      // Once the budget has refilled, the same click saves.
      await new Promise((r) => setTimeout(r, 1200));
      await p.getByRole('button', { name: 'Save Webhook' }).click();
      await expect.poll(() => saved.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await description()).toBe(`Busy endpoint, try ${tries}`);
    } finally {
      await ctx.close();
      await busy.close();
    }
  });

  it('keeps the history whole when more than a page of deliveries arrives between two refreshes', async () => {
    mainStatus = 200;
    const acc = await createAccount(h, 'pro', 'Burst Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/burst`, events: ['*'] })).body.id as string;
    await publish(acc, 5);
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}/history`);
    await expect.poll(() => p.locator('tbody tr').count(), { timeout: 10_000 }).toBe(5);
    // Live updates off stands for a hidden tab: nothing is refreshed while 30 more arrive.
    await p.getByLabel('Live updates').uncheck();
    await publish(acc, 30);
    const all = await deliveryIds(acc, wh);
    expect(all).toHaveLength(35);
    await p.getByLabel('Live updates').check();
    await expect.poll(() => p.locator(`tr[data-delivery-id="${all[0]}"]`).isVisible(), { timeout: 10_000 }).toBe(true);
    // No gap: the rows are the newest deliveries, each of them, down to the oldest shown.
    const shown = await shownIds(p);
    expect(shown).toEqual(all.slice(0, shown.length));
    // And "Load older" finds every other one, once.
    await loadAllOlder(p);
    expect(await shownIds(p)).toEqual(all);
    await ctx.close();
  });

  it('drops a row that no longer matches the status filter at the next refresh', async () => {
    const acc = await createAccount(h, 'pro', 'Filter Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/down`, events: ['*'] })).body.id as string;
    await publish(acc, 30);
    // Each failed once and waits a minute for its retry: all 30 are pending.
    await waitFor(async () => {
      const d = (await h.api('GET', `/v1/accounts/${acc}/deliveries?webhook_id=${wh}&limit=100`)).body.data as Array<{ attempts: number }>;
      return d.length === 30 && d.every((x) => x.attempts === 1);
    }, 15_000);
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}/history`);
    await expect.poll(() => p.locator('tbody tr').count(), { timeout: 10_000 }).toBe(25);
    // Unfiltered, the first page is 25 rows too: wait for the filtered answer itself, or "Load
    // older" could be pressed on the unfiltered list just before the filtered one replaces it.
    const filtered = p.waitForResponse((r) => r.url().includes('/deliveries?') && r.url().includes('status=pending'));
    await p.getByLabel('Status', { exact: true }).selectOption('pending');
    await filtered;
    await expect.poll(() => p.locator('tbody tr').count(), { timeout: 10_000 }).toBe(25);
    await loadAllOlder(p);
    const pending = await shownIds(p);
    expect(pending).toHaveLength(30);
    // The endpoint is fixed and the five oldest are sent again: they succeed.
    await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${wh}`, { url: `${rx.url}/hooks/fixed` });
    const oldest = pending.slice(-5);
    for (const id of oldest) expect((await h.api('POST', `/v1/accounts/${acc}/deliveries/${id}/redeliver`)).status).toBe(202);
    await waitFor(async () => (await deliveryIds(acc, wh, 'pending')).length === 25, 15_000);
    // The next refresh shows exactly the pending ones: the five are gone, not left as pending.
    await expect.poll(() => shownIds(p), { timeout: 10_000 }).toEqual(pending.slice(0, 25));
    expect(await p.getByText("That's all of them.").isVisible()).toBe(true);
    await ctx.close();
  });

  it('ends "Redelivering…" when the new attempt fails, though Herald will try again', async () => {
    const acc = await createAccount(h, 'pro', 'Retry Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/down`, events: ['*'] })).body.id as string;
    const dlv = (await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { retry: true } })).body.deliveries[0].id as string;
    const detail = async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${dlv}`)).body as { status: string; attempts: unknown[] };
    await waitFor(async () => (await detail()).attempts.length === 1);
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}/history/${dlv}`);
    await expect.poll(() => p.getByText('Not delivered yet. Herald will try again automatically.').isVisible(), { timeout: 10_000 }).toBe(true);
    await p.getByRole('button', { name: 'Redeliver' }).click();
    // The second attempt fails too; attempts are left, so the delivery is pending again.
    const outcome = p.getByText(/The redelivery failed: 500/);
    await expect.poll(() => outcome.isVisible(), { timeout: 20_000 }).toBe(true);
    expect(await outcome.textContent()).toContain('Herald will try again automatically.');
    expect(await detail()).toMatchObject({ status: 'pending', attempts: [expect.anything(), expect.anything()] });
    expect(await p.getByRole('button', { name: 'Redelivering…' }).count()).toBe(0);
    expect(await p.getByRole('button', { name: 'Redeliver' }).isEnabled()).toBe(true);
    expect(await p.getByRole('heading', { name: 'Attempts (2)' }).isVisible()).toBe(true);
    await ctx.close();
  });

  it('saves only the fields changed in the form, keeping changes made elsewhere meanwhile', async () => {
    const acc = await createAccount(h, 'pro', 'Two Tabs Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/tabs`, events: ['*'], description: 'Before', headers: { 'X-Team': 'content' } })).body.id as string;
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    await expect.poll(() => p.getByLabel('Description').inputValue(), { timeout: 10_000 }).toBe('Before');
    // Behind the form's back (another tab, or the API): new headers, a secret, a rate limit.
    const secret = 'whsec_set-through-the-api-meanwhile';
    expect((await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${wh}`, { headers: { 'X-Team': 'platform', 'X-Api-Key': 'sk_2' }, secret, rate_limit: 50 })).status).toBe(200);
    await p.getByLabel('Description').fill('After');
    await p.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => p.getByText('Webhook saved.').isVisible(), { timeout: 10_000 }).toBe(true);
    const w = (await h.api('GET', `/v1/accounts/${acc}/webhooks/${wh}`)).body;
    expect(w).toMatchObject({ description: 'After', headers: { 'X-Team': 'platform', 'X-Api-Key': 'sk_2' }, has_secret: true, rate_limit: 50, events: ['*'] });
    expect((await h.api('GET', `/v1/accounts/${acc}/webhooks/${wh}/secret`)).body.secret).toBe(secret);
    // The audit log agrees: the form sent the description alone.
    const audit = (await h.api('GET', `/v1/accounts/${acc}/audit-events`)).body.data as Array<{ action: string; actor: string; details: { fields?: string[] } }>;
    expect(audit.find((e) => e.action === 'webhook.updated' && e.actor === 'portal_session')?.details.fields).toEqual(['description']);
    await ctx.close();
  });

  it('says next to the webhook why its switch did not change, and shows the plan page on plan_required', async () => {
    const acc = await createAccount(h, 'pro', 'Switch Co');
    const gone = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/switch-gone`, events: ['*'] })).body.id as string;
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/switch-kept`, events: ['*'] });
    const { ctx, p } = await customerPage(acc);
    await expect.poll(() => p.getByRole('switch').count(), { timeout: 10_000 }).toBe(2);
    // Deleted behind the list's back: the switch stays on, and the row says why.
    expect((await h.api('DELETE', `/v1/accounts/${acc}/webhooks/${gone}`)).status).toBe(204);
    const goneSwitch = p.getByRole('switch', { name: `Enabled: ${rx.url}/hooks/switch-gone` });
    await goneSwitch.click();
    const alert = p.locator('li.webhook-item', { hasText: '/hooks/switch-gone' }).getByRole('alert');
    await expect.poll(() => alert.isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await alert.textContent()).toContain(`Could not turn ${rx.url}/hooks/switch-gone off`);
    expect(await alert.textContent()).toContain('This webhook no longer exists: it was deleted elsewhere.');
    expect(await goneSwitch.getAttribute('aria-checked')).toBe('true');
    // The account moved to the Free plan meanwhile: the switch leads to the plan page.
    expect((await h.api('PATCH', `/v1/accounts/${acc}`, { plan: 'free' })).status).toBe(200);
    await p.getByRole('switch', { name: `Enabled: ${rx.url}/hooks/switch-kept` }).click();
    await expect.poll(() => p.getByRole('heading', { name: 'Webhooks are not included in the Free plan' }).isVisible(), { timeout: 10_000 }).toBe(true);
    await ctx.close();
  });

  it('keeps saying a deleted webhook has no history, and stops asking for it', async () => {
    const acc = await createAccount(h, 'pro', 'Deleted Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/deleted`, events: ['*'] })).body.id as string;
    expect((await h.api('DELETE', `/v1/accounts/${acc}/webhooks/${wh}`)).status).toBe(204);
    const { ctx, p } = await customerPage(acc);
    const asked: string[] = [];
    p.on('request', (r) => {
      if (new URL(r.url()).pathname.endsWith('/deliveries')) asked.push(r.url());
    });
    await p.goto(`${h.url}/settings/webhooks/${wh}/history`);
    const alert = p.getByRole('alert').filter({ hasText: 'This webhook does not exist (it may have been deleted).' });
    await expect.poll(() => alert.isVisible(), { timeout: 10_000 }).toBe(true);
    const askedBefore = asked.length;
    // Longer than the 4 s between live refreshes: the message stays, and nothing more is asked.
    await new Promise((r) => setTimeout(r, 5000));
    expect(await alert.isVisible()).toBe(true);
    expect(await p.getByText('No deliveries yet').count()).toBe(0);
    expect(asked.length).toBe(askedBefore);
    // A history left open while its webhook is deleted elsewhere says so at the next refresh.
    const other = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/deleted-later`, events: ['*'] })).body.id as string;
    await p.goto(`${h.url}/settings/webhooks/${other}/history`);
    await expect.poll(() => p.getByText('No deliveries yet').isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await h.api('DELETE', `/v1/accounts/${acc}/webhooks/${other}`)).status).toBe(204);
    await expect.poll(() => alert.isVisible(), { timeout: 10_000 }).toBe(true);
    const askedAfter = asked.length;
    await new Promise((r) => setTimeout(r, 5000));
    expect(asked.length).toBe(askedAfter);
    await ctx.close();
  });

  it('names the action that failed in the form\'s error: rotate and delete of a webhook deleted meanwhile', async () => {
    const acc = await createAccount(h, 'pro', 'Gone Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/gone`, events: ['*'], secret: 'whsec_a-secret-to-rotate-later' })).body.id as string;
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    await expect.poll(() => p.getByText('A secret is set.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect((await h.api('DELETE', `/v1/accounts/${acc}/webhooks/${wh}`)).status).toBe(204);
    const notice = p.locator('.focus-target').getByRole('alert');
    await p.getByRole('button', { name: 'Rotate secret' }).click();
    await p.getByRole('button', { name: 'Rotate now' }).click();
    await expect.poll(() => notice.textContent(), { timeout: 10_000 }).toContain('The secret was not rotated');
    expect(await notice.textContent()).toContain('not found');
    await p.getByRole('button', { name: 'Delete webhook' }).click();
    await p.getByRole('button', { name: 'Yes, delete webhook' }).click();
    await expect.poll(() => notice.textContent(), { timeout: 10_000 }).toContain('The webhook was not deleted');
    expect(await p.getByText('The webhook was not saved').count()).toBe(0);
    await ctx.close();
  });

  it('keeps the typed form under a "session ended" notice when Save gets a 401, and saves it after signing in again', async () => {
    const acc = await createAccount(h, 'pro', 'Session Co');
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/new`);
    const url = `${rx.url}/hooks/session`;
    await p.getByLabel('Destination URL').fill(url);
    await p.getByLabel('content.generated').check();
    // The generated secret, which the customer may already have copied into their endpoint.
    const secret = await p.getByLabel('Signing secret').inputValue();
    expect(secret).toMatch(/^whsec_/);
    // Signed out in another tab: the session is gone server-side and the cookie cleared.
    const other = await ctx.newPage();
    await other.goto(`${h.url}/settings/webhooks`);
    await other.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => other.getByRole('heading', { name: 'Sign in to Webhooks' }).isVisible(), { timeout: 10_000 }).toBe(true);
    await other.close();

    await p.getByRole('button', { name: 'Save Webhook' }).click();
    const dialog = p.getByRole('alertdialog', { name: 'Your session has ended' });
    await expect.poll(() => dialog.isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => dialog.evaluate((el) => el.contains(document.activeElement))).toBe(true);
    expect(await dialog.textContent()).toContain('open Settings › Integrations & Publishing › Webhooks in your app in another tab');
    // The form is still there, with what was typed, editable and copyable.
    expect(await p.getByRole('heading', { name: 'Add webhook' }).isVisible()).toBe(true);
    expect(await p.getByLabel('Destination URL').inputValue()).toBe(url);
    expect(await p.getByLabel('Signing secret').inputValue()).toBe(secret);
    expect(await p.getByLabel('Signing secret').isEditable()).toBe(true);
    expect(await p.getByRole('heading', { name: 'Sign in to Webhooks' }).count()).toBe(0);
    expect(await p.locator('.focus-target').getByRole('alert').textContent()).toContain('The webhook was not saved');
    expect((await h.api('GET', `/v1/accounts/${acc}/webhooks`)).body.data).toHaveLength(0);

    // Continue before signing in again says so, and keeps the notice.
    await dialog.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toContain('This browser is not signed in yet');
    // Signed in again from the app in another tab: Continue, then the same Save goes through.
    const again = await ctx.newPage();
    await openLink(again, await portal(acc));
    await again.close();
    await dialog.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => dialog.count()).toBe(0);
    await p.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(() => p.getByText('Webhook added').isVisible(), { timeout: 10_000 }).toBe(true);
    const saved = (await h.api('GET', `/v1/accounts/${acc}/webhooks`)).body.data;
    expect(saved).toMatchObject([{ url, events: ['content.generated'], has_secret: true }]);
    expect((await h.api('GET', `/v1/accounts/${acc}/webhooks/${saved[0].id}/secret`)).body.secret).toBe(secret);
    await ctx.close();
  });

  it('keeps the keyboard focus on the button pressed: confirmations cancelled, a rotation, busy buttons', async () => {
    const acc = await createAccount(h, 'pro', 'Focus Co');
    const url = `${rx.url}/hooks/slow`;
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['*'], secret: 'whsec_a-secret-to-rotate-by-keyboard' })).body.id as string;
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    await expect.poll(() => p.getByText('A secret is set.').isVisible(), { timeout: 10_000 }).toBe(true);

    // Delete, then Cancel: focus goes back to Delete webhook, not to <body>.
    const del = p.getByRole('button', { name: 'Delete webhook' });
    await del.focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => hasFocus(p.getByRole('button', { name: 'Yes, delete webhook' }))).toBe(true);
    await p.keyboard.press('Tab');
    await p.keyboard.press('Enter');
    await expect.poll(() => hasFocus(del)).toBe(true);

    // Rotate, then Cancel; then Rotate now: both end on Rotate secret.
    const rotate = p.getByRole('button', { name: 'Rotate secret' });
    await rotate.focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => hasFocus(p.getByRole('button', { name: 'Rotate now' }))).toBe(true);
    await p.keyboard.press('Tab');
    await p.keyboard.press('Enter');
    await expect.poll(() => hasFocus(rotate)).toBe(true);
    await p.keyboard.press('Enter');
    await expect.poll(() => hasFocus(p.getByRole('button', { name: 'Rotate now' }))).toBe(true);
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByText('Secret rotated.', { exact: false }).isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => hasFocus(rotate)).toBe(true);

    // Test Connection against an endpoint that takes 1.5 s: focused while busy, and after.
    const testButton = p.locator('#test').getByRole('button');
    await testButton.focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => testButton.getAttribute('aria-busy')).toBe('true');
    expect(await testButton.getAttribute('aria-disabled')).toBe('true');
    expect(await hasFocus(testButton)).toBe(true);
    await expect.poll(() => p.getByTestId('test-status').textContent(), { timeout: 15_000 }).toBe('200 OK');
    expect(await testButton.getAttribute('aria-busy')).toBeNull();
    expect(await hasFocus(testButton)).toBe(true);

    // The enable switch keeps the focus through its PATCH, so Space can turn it back.
    await p.goto(`${h.url}/settings/webhooks`);
    const toggle = p.getByRole('switch', { name: `Enabled: ${url}` });
    await toggle.focus();
    await p.keyboard.press('Space');
    await expect.poll(() => p.getByText(`${url} turned off.`).count(), { timeout: 10_000 }).toBe(1);
    expect(await hasFocus(toggle)).toBe(true);
    await p.keyboard.press('Space');
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: 10_000 }).toBe('true');
    expect(await hasFocus(toggle)).toBe(true);

    // Redeliver stays focused while it waits for the new attempt, and after.
    const dlv = (await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { focus: true } })).body.deliveries[0].id as string;
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${dlv}`)).body.status === 'succeeded');
    await p.goto(`${h.url}/settings/webhooks/${wh}/history/${dlv}`);
    const redeliver = p.locator('.page-actions').getByRole('button');
    await expect.poll(() => redeliver.textContent(), { timeout: 10_000 }).toContain('Redeliver');
    await redeliver.focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => redeliver.getAttribute('aria-busy')).toBe('true');
    expect(await hasFocus(redeliver)).toBe(true);
    await expect.poll(() => p.getByText(/Redelivered successfully/).isVisible(), { timeout: 20_000 }).toBe(true);
    expect(await hasFocus(redeliver)).toBe(true);
    await ctx.close();
  });

  it('warns that Replace secret ends the current secret at save, and points to Rotate secret', async () => {
    const acc = await createAccount(h, 'pro', 'Replace Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/replace`, events: ['*'], secret: 'whsec_the-secret-in-use-today' })).body.id as string;
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    await expect.poll(() => p.getByText('A secret is set.').isVisible(), { timeout: 10_000 }).toBe(true);
    const replace = p.getByRole('button', { name: 'Replace secret' });
    await replace.focus();
    await p.keyboard.press('Enter');
    // The focus moves to the new secret, whose description carries the warning.
    const input = p.getByLabel('Signing secret');
    await expect.poll(() => hasFocus(input)).toBe(true);
    const note = p.locator('#secret-replace-note');
    await expect.poll(() => note.isVisible()).toBe(true);
    expect(await note.textContent()).toContain('The current secret stops signing as soon as you save');
    expect(await note.textContent()).toContain('use Rotate secret instead: the current one keeps signing beside the new one for 24 hours');
    expect((await input.getAttribute('aria-describedby'))?.split(' ')).toContain('secret-replace-note');
    // Keeping the current secret removes the warning and gives the focus back to Replace secret.
    await p.getByRole('button', { name: 'Keep the current secret' }).focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => hasFocus(replace)).toBe(true);
    expect(await note.count()).toBe(0);
    // A new webhook has no secret to replace: no warning.
    await p.goto(`${h.url}/settings/webhooks/new`);
    await expect.poll(() => input.isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await note.count()).toBe(0);
    await ctx.close();
  });

  it('says when the saved header values cannot be read, and Save replaces them even with none', async () => {
    const acc = await createAccount(h, 'pro', 'Damaged Co');
    const wh = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/hooks/damaged`, events: ['*'], headers: { 'X-Team': 'content' } })).body.id as string;
    // A sealed value no key opens (stored corrupt, or sealed with another key).
    await query(h, 'UPDATE webhooks SET headers_enc = ? WHERE id = ?', 'v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAA', wh);
    const { ctx, p } = await customerPage(acc);
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    const notice = p.getByText('The saved header values can no longer be read');
    await expect.poll(() => notice.isVisible(), { timeout: 10_000 }).toBe(true);
    // Nothing else changed and no header is entered: saving still sends `headers: {}`.
    await p.getByRole('button', { name: 'Save Webhook' }).click();
    await expect.poll(async () => (await h.api('GET', `/v1/accounts/${acc}/webhooks/${wh}`)).body.headers_unreadable, { timeout: 10_000 }).toBe(false);
    expect((await h.api('GET', `/v1/accounts/${acc}/webhooks/${wh}`)).body.headers).toEqual({});
    await p.goto(`${h.url}/settings/webhooks/${wh}`);
    await expect.poll(() => p.getByText('A secret is set.').or(p.getByLabel('Destination URL')).first().isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await notice.count()).toBe(0);
    await ctx.close();
  });

  it('says when the event types could not be loaded, and loads them on Try again', async () => {
    const acc = await createAccount(h, 'pro', 'Catalog Co');
    // The event catalog's table is out of reach in the real database for a moment, so
    // GET /v1/event-types answers a real 500.
    await query(h, 'ALTER TABLE event_types RENAME TO event_types_hidden');
    const { ctx, p } = await customerPage(acc);
    const alert = p.locator('#events-card').getByRole('alert');
    try {
      await p.goto(`${h.url}/settings/webhooks/new`);
      await expect.poll(() => alert.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await alert.textContent()).toContain('The list of events could not be loaded');
      expect(await alert.textContent()).toContain('Internal error');
      expect(await p.getByLabel('All events').isVisible()).toBe(true);
      expect(await p.getByLabel('content.generated').count()).toBe(0);
    } finally {
      await query(h, 'ALTER TABLE event_types_hidden RENAME TO event_types');
    }
    await alert.getByRole('button', { name: 'Try again' }).click();
    await expect.poll(() => p.getByLabel('content.generated').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await alert.count()).toBe(0);
    await ctx.close();
  });

  it('ran without a CSP violation or a page error', () => {
    expect(problems).toEqual([]);
  });
});
