import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecretBox } from '../src/core/secret-box.js';
import { Sender } from '../src/delivery/sender.js';
import { WebhookCache, type WebhookTarget } from '../src/delivery/webhook-cache.js';
import { DeliveryWorker, PREFETCH_ROUNDS } from '../src/delivery/worker.js';
import { createMetrics } from '../src/metrics.js';
import { migrate } from '../src/store/migrate.js';
import type { Store } from '../src/store/store.js';
import { SqliteExecutor } from '../src/store/sqlite/sqlite-executor.js';
import { freshSqlite } from './helpers/db.js';
import { count, query } from './helpers/api-kit.js';
import { createAccount, SECRET_KEY, startHerald, TEST_BACKEND, waitFor, type TestHerald } from './helpers/herald.js';
import { lateness } from './helpers/lateness.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';

/**
 * The worker's bookkeeping under the races that real use produces: the webhook or its
 * deliveries vanish while an attempt is in flight, outcomes written late, and the metrics
 * that report all of it.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delivery worker', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  async function herald(env: Record<string, string> = {}): Promise<{ h: TestHerald; acc: string }> {
    const h = await startHerald({ HERALD_DEV: 'true', HERALD_RETRY_BASE_MS: '100', HERALD_POLL_INTERVAL_MS: '50', ...env });
    cleanup.push(() => h.close());
    return { h, acc: await createAccount(h) };
  }
  async function receiver(...a: Parameters<typeof startReceiver>): Promise<Receiver> {
    const r = await startReceiver(...a);
    cleanup.push(() => r.close());
    return r;
  }

  it('keeps recording other outcomes when a webhook is deleted while its delivery is in flight', async () => {
    const { h, acc } = await herald();
    // Holds each request long enough for the webhook to be deleted under it.
    const slow = await receiver(async (_r, res) => {
      await sleep(400);
      res.end('late');
    });
    const fast = await receiver();
    const doomed = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: slow.url, events: ['analysis.completed'] });
    const healthy = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: fast.url, events: ['content.generated'] });
    expect(doomed.status).toBe(201);

    await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'analysis.completed', data: {} });
    await waitFor(() => slow.received.length === 1);
    const del = await h.api('DELETE', `/v1/accounts/${acc}/webhooks/${doomed.body.id}`);
    expect(del.status).toBe(204);

    // The in-flight attempt ends after the delete; its outcome has no delivery row left to
    // land on. The healthy webhook's deliveries must still be recorded.
    const pubs = [];
    for (let i = 0; i < 5; i++) pubs.push(await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } }));
    await sleep(600);
    for (let i = 0; i < 5; i++) pubs.push(await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } }));
    const ids = pubs.map((p) => p.body.deliveries[0].id as string);
    await waitFor(async () => {
      const l = await h.api('GET', `/v1/accounts/${acc}/deliveries?webhook_id=${healthy.body.id}&status=succeeded&limit=100`);
      return l.body.data.length === ids.length;
    }, 5000);
    expect(fast.received).toHaveLength(ids.length);
  });

  it('does not fail a new delivery on a cached "disabled" when another process turned the webhook on again', async () => {
    const { h, acc } = await herald();
    const rx = await receiver();
    const { store, webhooks } = h.herald.ctx;
    const w = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] })).body;
    // Another process turns it off, and this one's worker reads it so (and caches that)...
    await store.updateWebhook(acc, w.id, { enabled: false });
    webhooks.invalidate(w.id);
    expect((await webhooks.get(w.id))!.enabled).toBe(false);
    // ...then turns it on again, which this process does not hear of, and an event comes.
    await store.updateWebhook(acc, w.id, { enabled: true });
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { again: true } });
    const id = p.body.deliveries[0].id as string;
    const d = await waitFor(async () => {
      const r = await store.getDeliveryRow(acc, id);
      return r && r.status !== 'pending' ? r : null;
    });
    expect(d).toMatchObject({ status: 'succeeded', lastError: null });
    expect(rx.received).toHaveLength(1);
  });

  it('claims nothing once closing starts, though a Test Connection holds the HTTP server open', async () => {
    const { h, acc } = await herald();
    const slow = await receiver(async (_r, res) => {
      await sleep(1200);
      res.end('pong');
    });
    const rx = await receiver();
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    const testing = h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: slow.url });
    await waitFor(() => slow.received.length === 1);
    const closing = h.herald.close();
    await sleep(100);
    // Queued by another process meanwhile; this one polls every 50 ms.
    await h.herald.ctx.store.publishMany([{ accountId: acc, type: 'content.generated', data: '{}', idempotencyKey: null, now: Date.now() }]);
    await closing;
    expect((await testing).status).toBe(200); // the request in flight was answered
    expect(rx.received).toHaveLength(0);
  });

  it('gives back at once what a publish leased to it after it stopped', async () => {
    const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000' });
    const rx = await receiver();
    const w = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] })).body.id as string;
    const worker = h.herald.ctx.worker!;
    await worker.stop(1000);
    // As a publish whose transaction leased to this worker, and committed after it stopped.
    const store = h.herald.ctx.store;
    const [pub] = await store.publishMany([{ accountId: acc, type: 'content.generated', data: '{}', idempotencyKey: null, now: Date.now() }]);
    const leased = await store.claimDue({ owner: worker.owner, now: Date.now(), leaseMs: 60_000, limit: 10, lane: 'first', endpointLimit: 4, webhooks: [w], onlyWebhooks: true });
    expect(leased.map((d) => d.id)).toEqual([pub!.deliveries[0]!.id]);
    worker.adopt(leased);
    // Given back, so another process takes it at once instead of when the lease runs out.
    await waitFor(async () => (await query<{ lease_owner: string | null }>(h, 'SELECT lease_owner FROM deliveries WHERE id = ?', leased[0]!.id))[0]!.lease_owner === null, 3000);
    expect(rx.received).toHaveLength(0);
  });

  it('sends a rate-limited webhook no more than its limit a second, and every one of its deliveries', async () => {
    const { h, acc } = await herald();
    const rx = await receiver();
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'], rate_limit: 5 });
    expect(w.body.rate_limit).toBe(5);
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 15 }, (_, i) => h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } })));
    await waitFor(() => rx.received.length >= 15, 15_000);
    await sleep(300); // nothing more arrives
    expect(rx.received).toHaveLength(15);
    // The bucket starts with one second of the limit (5) and refills at 5 a second: the other
    // 10 cannot all have been sent before 2 s had passed.
    const times = rx.received.map((r) => r.at);
    expect(Math.max(...times) - t0).toBeGreaterThanOrEqual(2000);
    // No second saw more requests start than the bucket and a second of refill (10), give or
    // take two that started a little after their claim.
    const started = (await h.herald.ctx.store.q.all<{ s: number | string }>('SELECT started_at AS s FROM attempts')).map((r) => Number(r.s));
    expect(started).toHaveLength(15);
    for (const t of started) expect(started.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(12);
  });

  it('claims a rate-limited webhook again as soon as its bucket has credit, not at the next poll', async () => {
    const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '5000' });
    const rx = await receiver();
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'], rate_limit: 5 });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 15 }, (_, i) => h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } })));
    await waitFor(() => rx.received.length >= 15, 15_000);
    // 5 at once, then one every 200 ms: about 2 s. Waiting for the poll every 5 s would take
    // 10 s (5 more at each poll).
    expect(Math.max(...rx.received.map((r) => r.at)) - t0).toBeLessThan(7000);
  });

  it('keeps outcomes through a fault that refuses every write for a while, instead of dropping them and sending again', async () => {
    const { h, acc } = await herald();
    const rx = await receiver();
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    // A real refusal by the database, which still answers pings: a trigger on attempts.
    const q = h.herald.ctx.store.q;
    const pg = h.backend === 'postgres';
    await q.exec(pg
      ? `CREATE FUNCTION refuse_attempts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON attempts FOR EACH ROW EXECUTE FUNCTION refuse_attempts();`
      : "CREATE TRIGGER refuse BEFORE INSERT ON attempts BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } })).body.deliveries[0].id);
    await waitFor(() => rx.received.length === 20, 5000);
    await sleep(1500); // every outcome write refused for a good while, many tries
    await q.exec('DROP TRIGGER refuse' + (pg ? ' ON attempts; DROP FUNCTION refuse_attempts();' : ';'));
    // Written once the fault is gone, well within the lease: nothing dropped, nothing sent twice.
    await waitFor(async () => {
      const l = await h.api('GET', `/v1/accounts/${acc}/deliveries?status=succeeded&limit=100`);
      return l.body.data.length === 20;
    }, 3000);
    expect(rx.received).toHaveLength(20);
  });

  it.skipIf(TEST_BACKEND === 'postgres')('another process holding the SQLite write lock delays outcomes, but no attempt times out or is sent twice', async () => {
    const { h, acc } = await herald({ HERALD_DELIVERY_TIMEOUT_MS: '1000' });
    const rx = await receiver(async (_r, res) => {
      await sleep(300);
      res.end('ok');
    });
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    for (let i = 0; i < 5; i++) await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } });
    await waitFor(() => rx.received.length === 5, 3000);
    // The answers come 300 ms later, while another process holds the lock for 1.5 s: the
    // worker's statements wait for it, the event loop must not.
    if (h.config.db.kind !== 'sqlite') throw new Error('SQLite only');
    const other = new SqliteExecutor(h.config.db.path, { synchronous: 'normal' });
    cleanup.push(() => other.close());
    other.db.exec('BEGIN IMMEDIATE');
    await sleep(1500);
    other.db.exec('COMMIT');
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries?status=succeeded&limit=10`)).body.data.length === 5, 5000);
    const list = (await h.api('GET', `/v1/accounts/${acc}/deliveries?limit=10`)).body.data as Array<{ attempts: number; duration_ms: number }>;
    expect(list.map((d) => d.attempts)).toEqual([1, 1, 1, 1, 1]);
    expect(Math.max(...list.map((d) => d.duration_ms))).toBeLessThan(1000);
    expect(rx.received).toHaveLength(5);
  });

  /** Counts the worker's claims from now on (the worker calls the Store's method on each claim). */
  function countClaims(h: TestHerald): { n: number; wide: number } {
    const c = { n: 0, wide: 0 };
    const store = h.herald.ctx.store;
    const claimDue = store.claimDue.bind(store);
    store.claimDue = (o) => {
      c.n++;
      if (!o.onlyWebhooks) c.wide++; // looks beyond the webhooks it names
      return claimDue(o);
    };
    return c;
  }

  // One process on SQLite leases new deliveries at publish; an attempt that ends on a webhook
  // with nothing queued must not cost a claim (it used to cost about one per delivery).
  it.skipIf(TEST_BACKEND === 'postgres')('sends events published one at a time without claiming for each', async () => {
    const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000' });
    const rx = await receiver();
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    await sleep(100); // the worker's first claim, at start
    const claims = countClaims(h);
    for (let i = 0; i < 30; i++) {
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } });
      await waitFor(() => rx.received.length === i + 1, 3000);
    }
    await sleep(50); // the last outcome write
    expect(claims.n).toBe(0);
  });

  it('drains a backlog beyond the webhook limit as slots free up, without waiting for the poll', async () => {
    const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_ENDPOINT_CONCURRENCY: '2' });
    const rx = await receiver();
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    await sleep(100);
    const claims = countClaims(h);
    const sent = Date.now();
    await Promise.all(Array.from({ length: 40 }, (_, i) => h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } })));
    // At 2 in flight and one 60 s poll, waiting for polls would take 20 minutes.
    await waitFor(() => rx.received.length === 40, 10_000);
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(claims.n).toBeGreaterThan(0);
  });

  /** Receiver answering after `delay.ms`, counting the requests open at once (in `open`, which receivers may share). */
  async function timedReceiver(ms: number, open = { now: 0, max: 0 }): Promise<Receiver & { open: { now: number; max: number }; delay: { ms: number } }> {
    const delay = { ms };
    const rx = await receiver(async (_r, res) => {
      open.max = Math.max(open.max, ++open.now);
      await sleep(delay.ms);
      open.now--;
      res.end('ok');
    });
    return Object.assign(rx, { open, delay });
  }
  const liveLeases = async (h: TestHerald, webhookId: string): Promise<number> =>
    count(h, 'deliveries', 'webhook_id = ? AND lease_until > ?', webhookId, Date.now());
  /** Queues `n` events without leasing them at publish, then tells the worker, as a backlog would be. */
  async function backlog(h: TestHerald, acc: string, webhookId: string, n: number): Promise<void> {
    const events = Array.from({ length: n }, (_, i) => ({ accountId: acc, type: 'content.generated', data: `{"i":${i}}`, idempotencyKey: null, now: Date.now() }));
    await h.herald.ctx.store.publishMany(events);
    h.herald.ctx.worker!.notify([webhookId]);
  }

  // A worker alone on a webhook leases its deliveries a few rounds ahead (prefetch), so one
  // claim feeds several rounds of requests (on PostgreSQL too: no other process holds leases).
  // Several processes sharing a webhook: store.conformance.ts and scale-multiprocess.test.ts.
  describe('prefetch (one process)', () => {
    it('leases a fast webhook ahead of its requests, never opens more than its limit, and claims less', async () => {
      const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_ENDPOINT_CONCURRENCY: '2' });
      const rx = await timedReceiver(3);
      const webhook = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] })).body.id as string;
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      await waitFor(() => rx.received.length === 1); // one quick answer: the webhook is fast
      const claims = countClaims(h);
      await backlog(h, acc, webhook, 200);
      const worker = h.herald.ctx.worker!;
      let maxLeased = 0;
      let maxHeld = 0;
      let maxTaken = 0;
      while (rx.received.length < 201) {
        maxLeased = Math.max(maxLeased, await liveLeases(h, webhook));
        maxHeld = Math.max(maxHeld, worker.held);
        maxTaken = Math.max(maxTaken, worker.held + worker.inFlight);
        await sleep(1);
      }
      // Held beyond the 2 requests (up to 2 + PREFETCH_ROUNDS × 2), and yet never more than 2
      // requests open.
      // (The database also counts leases of ended attempts whose outcome is being written.)
      expect(maxLeased).toBeGreaterThan(2);
      expect(maxHeld).toBeGreaterThan(0);
      expect(maxTaken).toBeLessThanOrEqual(2 + PREFETCH_ROUNDS * 2);
      expect(rx.open.max).toBe(2);
      // A claim without prefetch leases at most 2 here: 100 claims or more for 200 deliveries.
      expect(claims.n).toBeLessThan(100);
      await waitFor(async () => (await count(h, 'deliveries', "status = 'succeeded'")) === 201, 5000);
      expect(new Set(rx.received.map((r) => r.headers['x-herald-delivery'])).size).toBe(201);
    });

    it('leases a slow webhook only what it sends, also one that was fast until now', async () => {
      const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_ENDPOINT_CONCURRENCY: '2' });
      const rx = await timedReceiver(3);
      const webhook = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] })).body.id as string;
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      await waitFor(async () => (await count(h, 'deliveries', "status = 'succeeded'")) === 1); // fast
      rx.delay.ms = 400; // from now on slow
      await backlog(h, acc, webhook, 14);
      const worker = h.herald.ctx.worker!;
      await waitFor(() => worker.held > 0); // leased ahead while it still looked fast
      // Its first slow answer ends the prefetch; what was held drains, and nothing more is held.
      await waitFor(() => worker.held === 0 && rx.received.length >= 9, 5000);
      let maxHeld = 0;
      while (rx.received.length < 13) {
        maxHeld = Math.max(maxHeld, worker.held);
        await sleep(5);
      }
      expect(maxHeld).toBe(0);
      expect(rx.open.max).toBe(2);
    });

    it('holds within the worker limit, so another webhook still gets slots while a fast one is backlogged', async () => {
      // Eight slots for the whole worker, two per webhook: A is fast and backlogged (2 sent, up
      // to prefetchDepth(8, 2) = 2 held), B (not known fast) gets work while A is busy.
      const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_WORKER_CONCURRENCY: '8', HERALD_ENDPOINT_CONCURRENCY: '2' });
      const open = { now: 0, max: 0 };
      const a = await timedReceiver(5, open);
      const b = await timedReceiver(5, open);
      const hookA = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: a.url, events: ['content.generated'] })).body.id as string;
      const acc2 = await createAccount(h, 'pro', 'Other');
      const hookB = (await h.api('POST', `/v1/accounts/${acc2}/webhooks`, { url: b.url, events: ['content.generated'] })).body.id as string;
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      await waitFor(() => a.received.length === 1); // A is fast
      await backlog(h, acc, hookA, 100);
      const worker = h.herald.ctx.worker!;
      await waitFor(() => worker.held > 0);
      const t0 = Date.now();
      await backlog(h, acc2, hookB, 5);
      let maxTaken = 0;
      while (b.received.length < 5 && Date.now() - t0 < 5000) {
        maxTaken = Math.max(maxTaken, worker.held + worker.inFlight);
        await sleep(1);
      }
      // B's deliveries go out long before the 60 s poll and before A's backlog is done: a slot
      // A gives up wakes a claim that names B.
      expect(b.received).toHaveLength(5);
      expect(a.received.length).toBeLessThan(101);
      expect(maxTaken).toBeLessThanOrEqual(8);
      expect(open.max).toBeLessThanOrEqual(4);
      await waitFor(() => a.received.length === 101, 5000);
    });

    it('a worker filled up by held deliveries does not claim again at every freed slot', async () => {
      // Twelve slots, two per webhook: two fast backlogged webhooks may each hold 2 + 6
      // (prefetchDepth(12, 2)), more than the worker has. A claim that reached the worker's
      // limit with rows leased ahead had taken every row it could send, so it must not make
      // each answer wake another claim, a wide one (measured: 100–114 wide claims of 106–123
      // without the rule, none of 90–104 with it).
      const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_WORKER_CONCURRENCY: '12', HERALD_ENDPOINT_CONCURRENCY: '2' });
      const a = await timedReceiver(2);
      const b = await timedReceiver(2);
      const hookA = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: a.url, events: ['content.generated'] })).body.id as string;
      const acc2 = await createAccount(h, 'pro', 'Other');
      const hookB = (await h.api('POST', `/v1/accounts/${acc2}/webhooks`, { url: b.url, events: ['content.generated'] })).body.id as string;
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      await h.api('POST', `/v1/accounts/${acc2}/events`, { type: 'content.generated', data: {} });
      await waitFor(() => a.received.length === 1 && b.received.length === 1); // both fast
      await sleep(50); // the retry lane was asked and found nothing: quiet for the poll interval
      const claims = countClaims(h);
      await backlog(h, acc, hookA, 150);
      await backlog(h, acc2, hookB, 150);
      await waitFor(() => a.received.length === 151 && b.received.length === 151, 10_000);
      expect(claims.wide).toBeLessThan(10);
      expect(a.open.max).toBe(2);
      expect(b.open.max).toBe(2);
    });

    it("keeps room for another webhook's due retry while fast webhooks' held deliveries fill the worker", async () => {
      // Twelve slots, two per webhook: A1 and A2 are fast and backlogged, and together may hold
      // more than the worker has; C's first attempt fails, so its retry is due 100 ms later.
      // Rows leased ahead used to take every slot that freed up, so the retry lane was never
      // asked and the retry waited until the backlogs ran dry; and the retry's due time, passed
      // while the worker was full, was forgotten, so it then waited for the 60 s poll.
      const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_WORKER_CONCURRENCY: '12', HERALD_ENDPOINT_CONCURRENCY: '2' });
      const a1 = await timedReceiver(20);
      const a2 = await timedReceiver(20);
      const c = await receiver((_r, res, n) => {
        res.statusCode = n === 1 ? 500 : 200;
        res.end();
      });
      const accounts = [acc, await createAccount(h, 'pro', 'Two')];
      const hooks: string[] = [];
      for (const [i, rx] of [a1, a2].entries()) {
        hooks.push((await h.api('POST', `/v1/accounts/${accounts[i]}/webhooks`, { url: rx.url, events: ['content.generated'] })).body.id as string);
        await h.api('POST', `/v1/accounts/${accounts[i]}/events`, { type: 'content.generated', data: {} });
      }
      const accC = await createAccount(h, 'pro', 'Three');
      await h.api('POST', `/v1/accounts/${accC}/webhooks`, { url: c.url, events: ['content.generated'] });
      await waitFor(() => a1.received.length === 1 && a2.received.length === 1); // both fast
      await backlog(h, accounts[0]!, hooks[0]!, 150); // at 2 × 20 ms, some 1.5 s of work each
      await backlog(h, accounts[1]!, hooks[1]!, 150);
      const worker = h.herald.ctx.worker!;
      await waitFor(() => worker.held > 0);
      await h.api('POST', `/v1/accounts/${accC}/events`, { type: 'content.generated', data: {} });
      await waitFor(() => c.received.length === 2, 10_000);
      // The retry went out while most of the backlogs were still queued (without the room kept
      // for it, only once they were nearly done).
      expect(a1.received.length + a2.received.length).toBeLessThan(200);
      await waitFor(() => a1.received.length + a2.received.length === 302, 10_000);
    });

    it('gives held deliveries back at once when it stops, without sending them', async () => {
      const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '60000', HERALD_ENDPOINT_CONCURRENCY: '1' });
      const rx = await timedReceiver(100);
      const webhook = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] })).body.id as string;
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      await waitFor(async () => (await count(h, 'deliveries', "status = 'succeeded'")) === 1);
      // Enough that the webhook is leased to the full 1 + PREFETCH_ROUNDS again after each refill.
      await backlog(h, acc, webhook, 30);
      await waitFor(async () => (await liveLeases(h, webhook)) === 1 + PREFETCH_ROUNDS); // 1 sending, the rest held
      const t0 = Date.now();
      const lost = lateness();
      const before = rx.received.length;
      await h.herald.ctx.worker!.stop(5000);
      // Only the request in flight was waited for, not the held ones one after another.
      expect(Date.now() - t0).toBeLessThan(1000 + lost.stop());
      // Nothing held went out once stop() began: at most the one request (concurrency 1) that
      // was already on its way to the receiver.
      const sent = rx.received.length;
      expect(sent).toBeLessThanOrEqual(before + 1);
      expect(await count(h, 'deliveries', 'lease_until IS NOT NULL')).toBe(0);
      expect(await count(h, 'deliveries', "status = 'pending' AND attempts = 0")).toBe(31 - sent);
      await sleep(300);
      expect(rx.received).toHaveLength(sent);
    });
  });

  /**
   * A busy webhook A (a backlog sent 2 at a time, 2 ms each, so a slot frees up every
   * millisecond or so for seconds: the worker is woken to refill A long before its poll timer
   * would fire) and a quiet webhook B of another account. `busyA` queues A's backlog and waits
   * until it flows; `queueB` queues one delivery for B without telling the worker, as a process
   * that does not notify would: only a poll or the walk over every webhook can find it.
   */
  async function busyAndQuiet() {
    const { h, acc } = await herald({ HERALD_POLL_INTERVAL_MS: '300', HERALD_ENDPOINT_CONCURRENCY: '2' });
    const busy = await receiver(async (_r, res) => {
      await sleep(2);
      res.end('ok');
    });
    const quiet = await receiver();
    const webhookA = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: busy.url, events: ['*'] })).body.id as string;
    const acc2 = await createAccount(h, 'pro', 'Other');
    await h.api('POST', `/v1/accounts/${acc2}/webhooks`, { url: quiet.url, events: ['*'] });
    const publish = (account: string, count: number) =>
      h.herald.ctx.store.publishMany(Array.from({ length: count }, (_, i) => ({ accountId: account, type: 'content.generated', data: `{"i":${i}}`, idempotencyKey: null, now: Date.now() })));
    return {
      busy, quiet,
      busyA: async () => {
        await publish(acc, 3000);
        h.herald.ctx.worker!.notify([webhookA]);
        await waitFor(() => busy.received.length >= 10);
      },
      queueB: () => publish(acc2, 1),
    };
  }

  it('finds work nobody named within a poll or two while a busy webhook keeps the worker awake', async () => {
    const { busy, quiet, busyA, queueB } = await busyAndQuiet();
    await busyA();
    const t0 = Date.now();
    const lost = lateness();
    await queueB();
    await waitFor(() => quiet.received.length === 1, 5000);
    // A poll or two, plus what a loaded machine took from this process meanwhile.
    expect(Date.now() - t0).toBeLessThan(1000 + lost.stop());
    expect(busy.received.length).toBeLessThan(3000); // A was still busy when B's arrived
  });

  it('still finds work nobody named after the clock is stepped back an hour', async () => {
    const { busy, quiet, busyA, queueB } = await busyAndQuiet();
    await sleep(700); // the worker has polled, and set when it next walks every webhook
    // The wall clock goes back an hour (NTP, a VM resumed) and runs on from there. Then the
    // scene above: A's backlog fills the window of oldest due rows, and only the walk finds B's.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: Date.now() - 3_600_000 });
    try {
      await busyA();
      await queueB();
      await waitFor(() => quiet.received.length === 1, 5000);
      expect(busy.received.length).toBeLessThan(3000); // A was still busy when B's arrived
    } finally {
      vi.useRealTimers();
    }
  });

  // PostgreSQL only: a lock on the attempts table stops outcome writes and leaves claims alone.
  it.runIf(TEST_BACKEND === 'postgres')('stops claiming once the unwritten outcomes hold 32 Mi characters of response, not only at 10,000 of them', async () => {
    const { h, acc } = await herald({ HERALD_WORKER_CONCURRENCY: '32' });
    const page = 'x'.repeat(60_000); // a receiver answering every delivery with a 60 KB error page
    const rx = await receiver((_r, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(page));
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    const db = h.config.db as { url: string };
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    cleanup.push(() => locker.end());
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE attempts IN EXCLUSIVE MODE');
    const n = 1500;
    await h.herald.ctx.store.publishMany(Array.from({ length: n }, (_, i) => ({ accountId: acc, type: 'content.generated', data: `{"i":${i}}`, idempotencyKey: null, now: Date.now() })));
    h.herald.ctx.worker!.notify(null);
    // 32 Mi characters are about 560 such answers; in flight and held deliveries add at most 32.
    await waitFor(() => rx.received.length >= 500, 20_000);
    await sleep(1500);
    const sent = rx.received.length;
    expect(sent).toBeLessThan(700);
    await locker.query('COMMIT');
    // Nothing was lost: once the writes go through, every delivery is sent and recorded.
    await waitFor(async () => (await count(h, 'deliveries', "status = 'succeeded' AND account_id = ?", acc)) === n, 60_000);
    expect(new Set(rx.received.map((r) => r.headers['x-herald-delivery'])).size).toBe(n);
  });

  it('fails a queued delivery whose webhook was disabled, without sending it', async () => {
    const { h, acc } = await herald();
    const rx = await receiver();
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    // No worker yet: publish, disable, then let the worker find the delivery. (h's own close,
    // still queued in cleanup, runs after h2's and removes the database.)
    await h.herald.close();
    const h2 = await startHerald({ HERALD_DEV: 'true', HERALD_DATABASE_URL: h.config.databaseUrl }, { worker: false });
    cleanup.push(() => h2.close());
    const p = await h2.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
    const patch = await h2.api('PATCH', `/v1/accounts/${acc}/webhooks/${w.body.id}`, { enabled: false });
    expect(patch.body.enabled).toBe(false);
    h2.herald.startWorker();
    const d = await waitFor(async () => {
      const x = await h2.api('GET', `/v1/accounts/${acc}/deliveries/${p.body.deliveries[0].id}`);
      return x.body.status !== 'pending' ? x.body : null;
    });
    expect(d.status).toBe('failed');
    expect(d.last_error).toMatch(/disabled/);
    expect(d.attempts).toHaveLength(0);
    expect(rx.received).toHaveLength(0);
  });

  it('fails at once, without an attempt, a delivery whose webhook cannot be decrypted, instead of claiming it again at every lease', async () => {
    const { h, acc } = await herald({ HERALD_DELIVERY_TIMEOUT_MS: '1000' }); // a lease of 6 s
    const rx = await receiver();
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'], secret: 'whsec_0123456789abcdef' });
    // A sealed secret that no key opens: stored corrupt (or sealed with another key).
    const [sealed] = await query<{ secret_enc: string }>(h, 'SELECT secret_enc FROM webhooks WHERE id = ?', w.body.id);
    const parts = sealed!.secret_enc.split('.');
    parts[3] = Buffer.from('not what was sealed').toString('base64url');
    await query(h, 'UPDATE webhooks SET secret_enc = ? WHERE id = ?', parts.join('.'), w.body.id);
    h.herald.ctx.webhooks.invalidate(w.body.id);
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
    const d = await waitFor(async () => {
      const x = await h.api('GET', `/v1/accounts/${acc}/deliveries/${p.body.deliveries[0].id}`);
      return x.body.status !== 'pending' ? x.body : null;
    }, 3000);
    expect(d.status).toBe('failed');
    expect(d.last_error).toMatch(/cannot be decrypted; set its secret and custom headers again/);
    expect(d.attempts).toHaveLength(0);
    expect(rx.received).toHaveLength(0);
    // Damaged header values do not fail the account's list or the webhook's form (where they
    // are set again): they show as none.
    await query(h, 'UPDATE webhooks SET headers_enc = ? WHERE id = ?', parts.join('.'), w.body.id);
    const list = await h.api('GET', `/v1/accounts/${acc}/webhooks`);
    expect(list.status).toBe(200);
    expect(list.body.data.find((x: { id: string }) => x.id === w.body.id)).toMatchObject({ headers: {}, headers_unreadable: true });
    const fixed = await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${w.body.id}`, { secret: 'whsec_0123456789abcdef-new', headers: { 'X-Team': 'content' } });
    expect(fixed.body).toMatchObject({ has_secret: true, headers: { 'X-Team': 'content' }, headers_unreadable: false });
  });

  it('runs retries with HERALD_WORKER_CONCURRENCY=1 (the first-attempt reserve leaves a retry slot)', async () => {
    const { h, acc } = await herald({ HERALD_WORKER_CONCURRENCY: '1' });
    const rx = await receiver((_r, res, n) => res.writeHead(n === 1 ? 500 : 200).end());
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
    const d = await waitFor(async () => {
      const x = await h.api('GET', `/v1/accounts/${acc}/deliveries/${p.body.deliveries[0].id}`);
      return x.body.status === 'succeeded' ? x.body : null;
    }, 5000);
    expect(d.attempts).toHaveLength(2);
  });

  it('never starts an attempt its lease no longer covers (a slow webhook load hands the delivery back)', async () => {
    const db = await freshSqlite();
    cleanup.push(() => db.drop());
    const storeA = await db.open();
    await migrate(storeA.q);
    const storeB = await db.open(); // a second worker process on the same database
    const rx = await receiver(async (_r, res) => {
      await sleep(400);
      res.end('ok');
    });
    const acc = await storeA.createAccount('Acme', 'pro');
    await storeA.createWebhook({ accountId: acc.id, url: rx.url, description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true });
    const [pub] = await storeA.publishMany([{ accountId: acc.id, type: 'content.generated', data: '{}', idempotencyKey: null, now: Date.now() }]);

    // Worker A's first webhook load takes 1.7 s (a locked database, say): with a 2 s lease, a
    // 500 ms timeout and a receiver taking 400 ms, an attempt started then would outlive the
    // lease, and worker B would send the delivery a second time while A's is still open.
    class SlowOnce extends WebhookCache {
      slow = true;
      override async get(id: string, fresh?: boolean): Promise<WebhookTarget | null> {
        if (this.slow) {
          this.slow = false;
          await sleep(1700);
        }
        return super.get(id, fresh);
      }
    }
    const box = new SecretBox(Buffer.from(SECRET_KEY, 'hex'));
    const log = pino({ level: 'silent' });
    const make = (store: Store, cache: WebhookCache) => {
      const sender = new Sender({ timeoutMs: 500, policy: { allowPrivate: true, allowedCidrs: [] } });
      const w = new DeliveryWorker(store, sender, cache, {
        concurrency: 4, endpointConcurrency: 4, leaseMs: 2000, pollIntervalMs: 20,
        retry: { baseMs: 60_000, factor: 1, maxAttempts: 3, jitter: 0.2 },
      }, log, createMetrics(null));
      cleanup.push(async () => {
        await w.stop(2000);
        await sender.close();
      });
      return w;
    };
    const a = make(storeA, new SlowOnce(storeA, box));
    a.start();
    await sleep(100); // A holds the lease
    make(storeB, new WebhookCache(storeB, box)).start();

    await waitFor(async () => (await storeA.getDelivery(acc.id, pub!.deliveries[0]!.id))?.delivery.status === 'succeeded', 5000);
    await sleep(800);
    expect(rx.received).toHaveLength(1);
    const d = await storeA.getDelivery(acc.id, pub!.deliveries[0]!.id);
    expect(d!.attempts).toHaveLength(1);
  });

  it('exports delivery and attempt metrics by outcome, and an attempt latency histogram', async () => {
    const { h, acc } = await herald({ HERALD_MAX_ATTEMPTS: '2' });
    const rx = await receiver((_r, res, n) => res.writeHead(n === 1 ? 500 : 200).end());
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${p.body.deliveries[0].id}`)).body.status === 'succeeded');
    const m = await (await fetch(h.url + '/metrics')).text();
    expect(m).toMatch(/herald_deliveries_total\{outcome="retry_scheduled"\} 1/);
    expect(m).toMatch(/herald_deliveries_total\{outcome="succeeded"\} 1/);
    expect(m).toMatch(/herald_attempts_total\{result="failure",error_kind="http_status"\} 1/);
    expect(m).toMatch(/herald_attempts_total\{result="success",error_kind="none"\} 1/);
    expect(m).toMatch(/herald_attempt_duration_seconds_count 2/);
    // The retry was leased by a claim of the retry lane, and both outcomes were written (the
    // API read the success from the database).
    expect(m).toMatch(/herald_claimed_deliveries_total\{lane="retry"\} 1\n/);
    expect(Number(/herald_claim_duration_seconds_count\{lane="retry"\} (\d+)/.exec(m)?.[1])).toBeGreaterThanOrEqual(1);
    expect(m).toMatch(/herald_outcomes_written_total 2\n/);
    expect(Number(/herald_outcome_write_duration_seconds_count (\d+)/.exec(m)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('holds no more event payload than HERALD_WORKER_PAYLOAD_MEMORY (and one delivery past it), and still delivers everything', async () => {
    // 1 MiB of payload at most: with 300 KB events, three at a time and one more.
    const { h, acc } = await herald({ HERALD_WORKER_PAYLOAD_MEMORY: '1048576' });
    let open = 0;
    let most = 0;
    const rx = await receiver(async (_r, res) => {
      most = Math.max(most, ++open);
      await sleep(150);
      open--;
      res.end('ok');
    });
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
    const big = 'x'.repeat(300_000);
    const published = await Promise.all(Array.from({ length: 12 }, (_, i) => h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i, big } })));
    expect(published.map((p) => p.status)).toEqual(Array(12).fill(202));
    await waitFor(() => rx.received.length === 12, 20_000);
    expect(new Set(rx.received.map((r) => JSON.parse(r.body.toString()).data.i)).size).toBe(12);
    expect(most).toBeGreaterThanOrEqual(2);
    expect(most).toBeLessThanOrEqual(4);
  });
});
