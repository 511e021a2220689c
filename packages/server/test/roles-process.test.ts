import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { waitFor } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { ensureBuilt, type SpawnedHerald } from './helpers/spawn-herald.js';
import { accountWithWebhook, describePostgres, publish, sleep, startCluster, statusCounts, type Cluster } from './helpers/cluster.js';

/**
 * `herald serve --role api|worker|all` as real processes on one PostgreSQL database (SPEC §1
 * scale-out): what each role serves, that only workers deliver, that an api process wakes
 * workers elsewhere at once, and that SIGTERM finishes in-flight work and exits 0 in every role.
 */
const LISTENERS = "SELECT pid FROM pg_stat_activity WHERE application_name = 'herald-listen' AND datname = current_database()";

async function get(p: SpawnedHerald, method: string, path: string): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(p.url + path, { method, headers: { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

await describePostgres('roles as separate processes on PostgreSQL', (admin) => {
  let c: Cluster;
  const receivers: Receiver[] = [];
  beforeAll(() => ensureBuilt(), 120_000);
  beforeEach(async () => {
    // Shutdown waits up to the delivery timeout + 1 s: at 10 s that is far from the 1 s holds
    // of the signal tests, which can then give a loaded machine room and still tell them apart.
    c = await startCluster(admin, { HERALD_DELIVERY_TIMEOUT_MS: '10000' });
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
    await c.close();
  });
  async function receiver(holdMs = 0): Promise<Receiver> {
    const rx = await startReceiver(async (_r, res) => {
      if (holdMs) await sleep(holdMs);
      res.end('ok');
    });
    receivers.push(rx);
    return rx;
  }

  it('--role api serves the API and never delivers; --role worker delivers and serves only health and metrics', async () => {
    const rx = await receiver();
    const api = await c.spawn('api');
    const { acc } = await accountWithWebhook(api, rx.url);
    const ids = await publish(api, acc, 5);
    await sleep(1000); // five poll intervals: an api process that delivered would have by now
    expect(rx.received).toHaveLength(0);
    expect(await statusCounts(c)).toEqual({ pending: 5 });
    for (const path of ['/healthz', '/readyz', '/metrics', '/v1/meta', '/openapi.json']) expect((await get(api, 'GET', path)).status, path).toBe(200);

    const worker = await c.spawn('worker');
    await waitFor(async () => (await statusCounts(c)).succeeded === 5, 10_000, 50);
    expect(new Set(rx.received.map((r) => r.headers['x-herald-delivery']))).toEqual(new Set(ids));
    expect(rx.received).toHaveLength(5);

    expect((await get(worker, 'GET', '/healthz')).status).toBe(200);
    expect((await get(worker, 'GET', '/readyz')).status).toBe(200);
    const metrics = await get(worker, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/herald_deliveries_total\{outcome="succeeded"\} 5/);
    // Nothing of the API or the dashboard on a worker's port: 404 in the API's error shape.
    for (const [method, path] of [
      ['GET', '/v1/meta'], ['POST', '/v1/accounts'], ['GET', `/v1/accounts/${acc}/deliveries`], ['POST', `/v1/accounts/${acc}/events`],
      ['GET', '/'], ['GET', '/docs'], ['GET', '/openapi.json'],
    ] as const) {
      const r = await get(worker, method, path);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(JSON.parse(r.text).error.code).toBe('not_found');
    }
  }, 40_000);

  it('--role all serves the API and delivers in one process', async () => {
    const rx = await receiver();
    const all = await c.spawn('all');
    const { acc } = await accountWithWebhook(all, rx.url);
    await publish(all, acc, 3);
    await waitFor(async () => (await statusCounts(c)).succeeded === 3, 10_000, 50);
    expect(rx.received).toHaveLength(3);
    for (const path of ['/healthz', '/readyz', '/metrics', '/v1/meta', '/docs']) expect((await get(all, 'GET', path)).status, path).toBe(200);
  }, 30_000);

  it('an api process wakes workers in other processes at once (LISTEN/NOTIFY), not at their next poll', async () => {
    const rx = await receiver();
    const api = await c.spawn('api');
    const { acc } = await accountWithWebhook(api, rx.url);
    // Polling once a minute: only a notification can explain a delivery within a second.
    const worker = await c.spawn('worker', { HERALD_POLL_INTERVAL_MS: '60000' });
    await waitFor(async () => (await c.sql(LISTENERS)).length === 1, 5000, 50);
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const [id] = await publish(api, acc, 1);
      await waitFor(() => rx.received.some((r) => r.headers['x-herald-delivery'] === id), 10_000, 5);
      latencies.push(Date.now() - t0);
    }
    console.log(`publish → arrival across processes (the worker polls every 60 s): ${latencies.join(', ')} ms`);
    // Typically a few ms; the bound leaves room for three processes and PostgreSQL sharing a
    // loaded 2-core machine, and is still far below the 60 s poll.
    expect(Math.max(...latencies)).toBeLessThan(3000);
    expect(worker.logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
  }, 30_000);

  it('a worker whose listening connection is killed listens again and keeps waking at once', async () => {
    const rx = await receiver();
    const api = await c.spawn('api');
    const { acc } = await accountWithWebhook(api, rx.url);
    const worker = await c.spawn('worker', { HERALD_POLL_INTERVAL_MS: '60000' });
    const [before] = await waitFor(async () => {
      const l = await c.sql<{ pid: number }>(LISTENERS);
      return l.length === 1 ? l : null;
    }, 5000, 50);
    await c.sql('SELECT pg_terminate_backend($1)', [before!.pid]);
    await waitFor(async () => {
      const l = await c.sql<{ pid: number }>(LISTENERS);
      return l.length === 1 && l[0]!.pid !== before!.pid;
    }, 5000, 20);
    await waitFor(() => worker.logs.some((l) => String(l.msg).includes('notification connection')), 2000, 20);
    const t0 = Date.now();
    const [id] = await publish(api, acc, 1);
    await waitFor(() => rx.received.some((r) => r.headers['x-herald-delivery'] === id), 10_000, 5);
    expect(Date.now() - t0).toBeLessThan(3000); // far below the 60 s poll, as above
  }, 30_000);

  it('SIGTERM while the database does not answer: the process still exits, within its grace and the backstop', async () => {
    const rx = await receiver();
    const api = await c.spawn('api');
    const { acc } = await accountWithWebhook(api, rx.url);
    const worker = await c.spawn('worker', { HERALD_DELIVERY_TIMEOUT_MS: '1000', HERALD_POLL_INTERVAL_MS: '50' });
    await publish(api, acc, 1);
    await waitFor(async () => (await statusCounts(c)).succeeded === 1, 5000, 10);
    // Every claim now waits on the lock: the database is up, but answers nothing the worker asks.
    await c.sql('BEGIN');
    await c.sql('LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE');
    try {
      await sleep(300);
      const t0 = Date.now();
      worker.kill('SIGTERM');
      const exited = await worker.exited;
      // The claim waits no longer than the grace (delivery timeout + 1 s), closing the
      // connections 2 s, and room for a loaded machine; the backstop (2 × timeout + 15 s) is not
      // what ended it, or the exit code would be 1.
      const took = Date.now() - t0;
      expect(took).toBeLessThan(9000);
      expect(exited).toEqual({ code: 0, signal: null });
    } finally {
      await c.sql('ROLLBACK');
    }
  }, 30_000);

  it('SIGTERM in every role: in-flight work finishes, nothing more starts, exit 0', async () => {
    // Each request is held 1 s: long enough to signal while it is in flight.
    const rx = await receiver(1000);
    const api = await c.spawn('api');
    const { acc } = await accountWithWebhook(api, rx.url);

    // worker: three deliveries at the receiver when the signal comes.
    const worker = await c.spawn('worker');
    await publish(api, acc, 3);
    await waitFor(() => rx.received.length === 3, 5000, 10);
    let t0 = Date.now();
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    // The 1 s answers, then out: not the shutdown grace (delivery timeout + 1 s = 11 s). Room
    // for a loaded machine in between.
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(worker.logs.some((l) => l.msg === 'stopped')).toBe(true);
    expect(await statusCounts(c)).toEqual({ succeeded: 3 });
    expect((await c.sql<{ n: number }>('SELECT COUNT(*)::int AS n FROM deliveries WHERE lease_owner IS NOT NULL'))[0]!.n).toBe(0);

    // api: a Test Connection request in flight (it waits for the receiver) still gets its answer.
    const ping = fetch(`${api.url}/v1/accounts/${acc}/webhooks/test`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ url: rx.url }),
    });
    await waitFor(() => rx.received.length === 4, 5000, 10);
    t0 = Date.now();
    api.kill('SIGTERM');
    const answer = await ping;
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { ok: boolean }).ok).toBe(true);
    // The client's connection was busy when the signal came; it must not be kept alive after.
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(6000);

    // all: deliveries in flight, and SIGINT (Ctrl-C) behaves the same.
    const all = await c.spawn('all');
    await publish(all, acc, 2);
    await waitFor(() => rx.received.length === 6, 5000, 10);
    t0 = Date.now();
    all.kill('SIGINT');
    expect(await all.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(await statusCounts(c)).toEqual({ succeeded: 5 });
    expect(rx.received).toHaveLength(6);
  }, 40_000);
});
