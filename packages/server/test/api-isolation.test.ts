import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { createApiKey, expectError, query, snapshotCounts } from './helpers/api-kit.js';

/**
 * Tenant isolation (research T26): tenant B, holding its own valid API key, tries every
 * account-scoped route on tenant A's ids. Each answer must be the 404 a missing id gets (no
 * existence oracle), nothing of A's may change, and nothing may be sent anywhere. The same
 * requests made with A's key succeed, which proves the paths are right and the 404s are real.
 */
let h: TestHerald;
let rx: Receiver;
let A: string, B: string, keyA: string, keyB: string, keyAId: string;
let whA: string, dlvA: string, whB: string, failedA: string;

// HERALD_DEV lets A's webhook point at the local receiver, so A's own Test Connection can run;
// the worker is off, so deliveries stay pending and nothing else is ever sent.
beforeAll(async () => {
  h = await startHerald({ HERALD_DEV: 'true' }, { worker: false });
  rx = await startReceiver();
  A = await createAccount(h, 'pro', 'Tenant A');
  B = await createAccount(h, 'pro', 'Tenant B');
  ({ key: keyA, id: keyAId } = await createApiKey(h, A));
  ({ key: keyB } = await createApiKey(h, B));
  const w = await h.api('POST', `/v1/accounts/${A}/webhooks`, { url: rx.url + '/a', events: ['*'], secret: 'tenant-a-secret-value', headers: { 'X-Token': 'tenant-a-header' } }, { token: keyA });
  expect(w.status).toBe(201);
  whA = w.body.id;
  const wb = await h.api('POST', `/v1/accounts/${B}/webhooks`, { url: rx.url + '/b', events: ['*'] }, { token: keyB });
  whB = wb.body.id;
  const p = await h.api('POST', `/v1/accounts/${A}/events`, { type: 'content.generated', data: { owner: 'A' } });
  dlvA = p.body.deliveries[0].id;
  // A delivery of A's that failed for good, so that recover has something of A's to take.
  const f = await h.api('POST', `/v1/accounts/${A}/events`, { type: 'content.generated', data: { owner: 'A', failed: true } });
  failedA = f.body.deliveries[0].id;
  await query(h, "UPDATE deliveries SET status = 'failed', attempts = 1, next_attempt_at = NULL WHERE id = ?", failedA);
  await h.api('POST', `/v1/accounts/${B}/events`, { type: 'content.generated', data: { owner: 'B' } });
});
afterAll(async () => {
  await h.close();
  await rx.close();
});

const MISSING = { acc: 'acc_00000000000000000000000000', wh: 'wh_00000000000000000000000000', dlv: 'dlv_00000000000000000000000000' };

interface Route {
  name: string;
  method: string;
  path: (ids: { acc: string; wh: string; dlv: string; key: string }) => string;
  body?: unknown;
  /** What A's own key gets (undefined: the route is admin-only, A's key gets 403). */
  own?: number;
  notFound: string;
}

// Every route under /v1/accounts/{account}: SPEC §3's account routes plus the admin-only ones.
const ROUTES: Route[] = [
  { name: 'read account', method: 'GET', path: (i) => `/v1/accounts/${i.acc}`, own: 200, notFound: 'account_not_found' },
  { name: 'change account', method: 'PATCH', path: (i) => `/v1/accounts/${i.acc}`, body: { plan: 'free' }, notFound: 'account_not_found' },
  { name: 'delete account', method: 'DELETE', path: (i) => `/v1/accounts/${i.acc}`, notFound: 'account_not_found' },
  { name: 'create api key', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/api-keys`, notFound: 'account_not_found' },
  { name: 'list api keys', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/api-keys`, notFound: 'account_not_found' },
  { name: 'delete api key', method: 'DELETE', path: (i) => `/v1/accounts/${i.acc}/api-keys/${i.key}`, notFound: 'account_not_found' },
  { name: 'publish', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/events`, body: { type: 'content.generated', data: {} }, notFound: 'account_not_found' },
  { name: 'list webhooks', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/webhooks`, own: 200, notFound: 'account_not_found' },
  { name: 'create webhook', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/webhooks`, body: { url: 'https://93.184.216.34/b', events: ['*'] }, own: 201, notFound: 'account_not_found' },
  { name: 'test unsaved form', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/webhooks/test`, body: { url: 'PLACEHOLDER' }, own: 200, notFound: 'account_not_found' },
  { name: 'read webhook', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}`, own: 200, notFound: 'webhook_not_found' },
  { name: 'change webhook', method: 'PATCH', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}`, body: { description: 'changed by someone' }, own: 200, notFound: 'webhook_not_found' },
  { name: 'reveal secret', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}/secret`, own: 200, notFound: 'webhook_not_found' },
  { name: 'rotate secret', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}/secret/rotate`, body: {}, own: 200, notFound: 'webhook_not_found' },
  { name: 'test saved webhook', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}/test`, own: 200, notFound: 'webhook_not_found' },
  { name: 'audit log', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/audit-events`, own: 200, notFound: 'account_not_found' },
  { name: 'list deliveries', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/deliveries`, own: 200, notFound: 'account_not_found' },
  { name: 'read delivery', method: 'GET', path: (i) => `/v1/accounts/${i.acc}/deliveries/${i.dlv}`, own: 200, notFound: 'delivery_not_found' },
  { name: 'redeliver', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/deliveries/${i.dlv}/redeliver`, own: 202, notFound: 'delivery_not_found' },
  { name: 'recover failed', method: 'POST', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}/recover`, body: { since: '2000-01-01T00:00:00Z' }, own: 202, notFound: 'webhook_not_found' },
  { name: 'delete webhook', method: 'DELETE', path: (i) => `/v1/accounts/${i.acc}/webhooks/${i.wh}`, own: 204, notFound: 'webhook_not_found' },
];

const bodyOf = (r: Route) => (r.name === 'test unsaved form' ? { url: rx.url + '/form' } : r.body);

/**
 * Everything of A's that B might change, read straight from the database. Ordered by id: without
 * ORDER BY, PostgreSQL may return the same rows in another order, and the lists are compared whole.
 */
async function stateOfA() {
  return {
    account: await query(h, 'SELECT * FROM accounts WHERE id = ?', A),
    keys: await query(h, 'SELECT * FROM api_keys WHERE account_id = ? ORDER BY id', A),
    webhooks: await query(h, 'SELECT * FROM webhooks WHERE account_id = ? ORDER BY id', A),
    deliveries: await query(h, 'SELECT * FROM deliveries WHERE account_id = ? ORDER BY id', A),
    events: await query(h, 'SELECT * FROM events WHERE account_id = ? ORDER BY id', A),
    attempts: await query(h, 'SELECT a.* FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.account_id = ? ORDER BY a.id', A),
  };
}

describe('tenant isolation', () => {
  it("B's key gets 404 on every route with A's account id, like a missing account, and changes nothing", async () => {
    const before = await stateOfA();
    const counts = await snapshotCounts(h);
    for (const r of ROUTES) {
      const onA = await h.api(r.method, r.path({ acc: A, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r), { token: keyB });
      const onMissing = await h.api(r.method, r.path({ acc: MISSING.acc, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r), { token: keyB });
      expect({ route: r.name, status: onA.status, code: onA.body?.error?.code }).toEqual({ route: r.name, status: 404, code: 'account_not_found' });
      expect(onA.body.error.message.replace(A, 'ID')).toBe(onMissing.body.error.message.replace(MISSING.acc, 'ID'));
    }
    expect(await stateOfA()).toEqual(before);
    expect(await snapshotCounts(h)).toEqual(counts);
    expect(rx.connections).toBe(0);
  });

  it("B's key gets 404 on B's own path with A's webhook and delivery ids, like missing ids", async () => {
    const before = await stateOfA();
    for (const r of ROUTES.filter((x) => x.notFound !== 'account_not_found')) {
      const withA = await h.api(r.method, r.path({ acc: B, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r), { token: keyB });
      const missing = await h.api(r.method, r.path({ acc: B, wh: MISSING.wh, dlv: MISSING.dlv, key: keyAId }), bodyOf(r), { token: keyB });
      expect({ route: r.name, status: withA.status, code: withA.body?.error?.code }).toEqual({ route: r.name, status: 404, code: r.notFound });
      expect({ route: r.name, status: missing.status, code: missing.body?.error?.code }).toEqual({ route: r.name, status: 404, code: r.notFound });
    }
    // Even the admin, naming the wrong account in the path, cannot reach A's objects through it.
    for (const r of ROUTES.filter((x) => x.notFound !== 'account_not_found')) {
      const res = await h.api(r.method, r.path({ acc: B, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r));
      expect({ route: r.name, status: res.status }).toEqual({ route: r.name, status: 404 });
    }
    expectError(await h.api('DELETE', `/v1/accounts/${B}/api-keys/${keyAId}`), 404, 'not_found');
    expect(await stateOfA()).toEqual(before);
    expect(rx.connections).toBe(0);
  });

  it("B's lists never include A's objects, whatever the filter", async () => {
    const hooks = await h.api('GET', `/v1/accounts/${B}/webhooks`, undefined, { token: keyB });
    expect(hooks.body.data.map((w: { id: string }) => w.id)).toEqual([whB]);
    const all = await h.api('GET', `/v1/accounts/${B}/deliveries?limit=200`, undefined, { token: keyB });
    expect(all.body.data.length).toBeGreaterThan(0);
    for (const d of all.body.data) expect(d.webhook_id).toBe(whB);
    // A's webhook is, to B, a webhook that does not exist: the same answer as an unknown id.
    const filtered = await h.api('GET', `/v1/accounts/${B}/deliveries?webhook_id=${whA}`, undefined, { token: keyB });
    const unknown = await h.api('GET', `/v1/accounts/${B}/deliveries?webhook_id=wh_0000000000000000000000000000`, undefined, { token: keyB });
    expectError(filtered, 404, 'webhook_not_found');
    expect({ status: unknown.status, code: unknown.body.error.code }).toEqual({ status: filtered.status, code: filtered.body.error.code });
    const byCursor = await h.api('GET', `/v1/accounts/${B}/deliveries?cursor=dlv_ZZZZZZZZZZZZZZZZZZZZZZZZZZ`, undefined, { token: keyB });
    expect(byCursor.body.data.every((d: { webhook_id: string }) => d.webhook_id === whB)).toBe(true);
  });

  it('admin-only routes answer 403 to an account key on its own account, and change nothing', async () => {
    const counts = await snapshotCounts(h);
    const before = await stateOfA();
    for (const r of ROUTES.filter((x) => x.own === undefined)) {
      const res = await h.api(r.method, r.path({ acc: A, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r), { token: keyA });
      expect({ route: r.name, status: res.status, code: res.body?.error?.code }).toEqual({ route: r.name, status: 403, code: 'forbidden' });
    }
    expectError(await h.api('POST', '/v1/accounts', { name: 'x', plan: 'pro' }, { token: keyA }), 403, 'forbidden');
    expectError(await h.api('GET', '/v1/accounts', undefined, { token: keyA }), 403, 'forbidden');
    expectError(await h.api('POST', '/v1/event-types', { name: 'by.tenant' }, { token: keyA }), 403, 'forbidden');
    expect(await snapshotCounts(h)).toEqual(counts);
    expect(await stateOfA()).toEqual(before);
  });

  it('every account route answers 401 without credentials', async () => {
    for (const r of ROUTES) {
      const res = await h.api(r.method, r.path({ acc: A, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r), { token: null });
      expect({ route: r.name, status: res.status, code: res.body?.error?.code }).toEqual({ route: r.name, status: 401, code: 'unauthorized' });
    }
    for (const [m, p] of [['POST', '/v1/accounts'], ['GET', '/v1/accounts'], ['GET', '/v1/event-types'], ['GET', '/v1/event-types/ping'], ['POST', '/v1/event-types'], ['GET', '/v1/meta']] as const) {
      expectError(await h.api(m, p, m === 'POST' ? {} : undefined, { token: null }), 401, 'unauthorized');
    }
  });

  // Last: these succeed and change A's data. They prove every path above is a real route.
  it("the same requests with A's own key succeed", async () => {
    for (const r of ROUTES.filter((x) => x.own !== undefined)) {
      const res = await h.api(r.method, r.path({ acc: A, wh: whA, dlv: dlvA, key: keyAId }), bodyOf(r), { token: keyA });
      expect({ route: r.name, status: res.status }).toEqual({ route: r.name, status: r.own });
      // A's recover takes A's failed delivery, which everything above left failed (before the
      // last route deletes the webhook, and its deliveries with it).
      if (r.name === 'recover failed') {
        expect(res.body.queued).toBe(1);
        expect((await query<{ status: string }>(h, 'SELECT status FROM deliveries WHERE id = ?', failedA))[0]!.status).toBe('pending');
      }
    }
    // A's two Test Connections reached the receiver; nothing else did.
    expect(rx.received.map((x) => x.url).sort()).toEqual(['/a', '/form']);
  });
});
