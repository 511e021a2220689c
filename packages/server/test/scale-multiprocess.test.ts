import { createServer, type Server } from 'node:http';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { loadMigrations } from '../src/store/migrate.js';
import { waitFor } from './helpers/herald.js';
import { ensureBuilt, type SpawnedHerald } from './helpers/spawn-herald.js';
import { accountWithWebhook, describePostgres, publish, sleep, startCluster, statusCounts, type Cluster } from './helpers/cluster.js';

/**
 * Scale-out on PostgreSQL with nothing but the database between processes (SPEC §1, §5):
 * several `--role worker` processes and an `--role api` process, a worker killed with
 * SIGKILL mid-request, concurrent start-up on an empty database, and the per-endpoint
 * concurrency limit held across processes.
 */

/** A receiver that counts arrivals per delivery id and open requests, and can hold its answers. */
interface CountingReceiver {
  url: string;
  /** Arrivals per X-Herald-Delivery. */
  arrivals: Map<string, number>;
  /** When each request arrived (Date.now()). */
  times: number[];
  total(): number;
  /** Requests open now, and the most ever open at once. */
  open(): number;
  maxOpen(): number;
  /** Requests whose connection closed before they were answered (their sender died). */
  abandoned(): number;
  /** Answer nothing until release(). */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

async function countingReceiver(answerAfterMs = 0): Promise<CountingReceiver> {
  const arrivals = new Map<string, number>();
  const times: number[] = [];
  let total = 0;
  let open = 0;
  let maxOpen = 0;
  let abandoned = 0;
  let gate: Promise<void> | null = null;
  let release = () => {};
  const server: Server = createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    res.on('close', () => {
      open--;
      if (!res.writableFinished) abandoned++;
    });
    req.resume();
    req.on('end', async () => {
      const id = String(req.headers['x-herald-delivery']);
      arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
      times.push(Date.now());
      total++;
      if (answerAfterMs) await sleep(answerAfterMs);
      while (gate) await gate;
      res.end('ok');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    arrivals,
    times,
    total: () => total,
    open: () => open,
    maxOpen: () => maxOpen,
    abandoned: () => abandoned,
    hold: () => {
      gate ??= new Promise<void>((r) => (release = r));
    },
    release: () => {
      gate = null;
      release();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const metric = async (p: SpawnedHerald, re: RegExp): Promise<number> => Number((await (await fetch(p.url + '/metrics')).text()).match(re)?.[1] ?? 0);

await describePostgres('scale-out: several processes on one PostgreSQL database', (admin) => {
  const cleanup: Array<() => Promise<unknown>> = [];
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  async function cluster(env: Record<string, string>): Promise<Cluster> {
    const c = await startCluster(admin, env);
    cleanup.push(() => c.close());
    return c;
  }
  async function receiver(answerAfterMs = 0): Promise<CountingReceiver> {
    const rx = await countingReceiver(answerAfterMs);
    cleanup.push(() => rx.close());
    return rx;
  }

  it('three processes starting at once on an empty database all come up; each migration is applied once', async () => {
    const c = await cluster({});
    const procs = await Promise.all([c.spawn('api'), c.spawn('worker'), c.spawn('worker')]);
    for (const p of procs) expect((await fetch(p.url + '/readyz')).status).toBe(200);
    const rows = await c.sql<{ version: number; n: number }>('SELECT version, COUNT(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version');
    expect(rows).toEqual(loadMigrations('postgres').map((m) => ({ version: m.version, n: 1 })));
    // They took turns under the lock, a migration each time: the ones each applied add up to
    // every migration, once.
    const applied = procs.flatMap((p) => p.logs.filter((l) => l.msg === 'database migrated').flatMap((l) => l.applied as number[]));
    expect(applied.sort((a, b) => a - b)).toEqual(loadMigrations('postgres').map((m) => m.version));
  }, 30_000);

  it('5,000 events through an api process, 3 workers, one SIGKILLed mid-request: none lost, duplicates bounded by its in-flight requests', async () => {
    const EVENTS = 5000;
    const CONCURRENCY = 16; // HERALD_WORKER_CONCURRENCY: the most requests one worker has open
    // Leases run out after the timeout + 5 s = 10 s; the endpoint limit is above 3 workers × 16,
    // so every worker can fill its slots on the one webhook. The 5 s timeout is well beyond the
    // answers held around the kill (below) even on a loaded machine: a held answer that timed
    // out would be a second attempt, which the test rightly counts as a failure.
    const c = await cluster({ HERALD_DELIVERY_TIMEOUT_MS: '5000', HERALD_WORKER_CONCURRENCY: String(CONCURRENCY), HERALD_ENDPOINT_CONCURRENCY: '64' });
    const rx = await receiver();
    const t0 = Date.now();
    const [api, ...workers] = await Promise.all([c.spawn('api'), c.spawn('worker'), c.spawn('worker'), c.spawn('worker')]);
    const victim = workers[0]!;
    const { acc } = await accountWithWebhook(api, rx.url);

    // When about half have arrived: hold every answer, so no worker has outcomes waiting to be
    // written (they are written within milliseconds of an answer), then SIGKILL one worker
    // while its requests are open, then answer again.
    let killedAt = 0;
    let victimOpen = 0;
    const kill = (async () => {
      await waitFor(() => rx.arrivals.size >= EVENTS / 2, 40_000, 5);
      rx.hold();
      await sleep(300);
      const abandonedBefore = rx.abandoned();
      victim.kill('SIGKILL');
      await victim.exited;
      killedAt = Date.now();
      await waitFor(() => rx.abandoned() > abandonedBefore, 2000, 5).catch(() => {});
      // The kernel closes all of the dead process's sockets at once; count until no more come.
      for (let seen = -1; seen !== rx.abandoned(); ) {
        seen = rx.abandoned();
        await sleep(100);
      }
      victimOpen = rx.abandoned() - abandonedBefore;
      rx.release();
    })();

    const published = Date.now();
    const ids = await publish(api, acc, EVENTS, 50);
    const publishMs = Date.now() - published;
    await kill;
    expect(new Set(ids).size).toBe(EVENTS);

    await waitFor(async () => (await statusCounts(c)).succeeded === EVENTS, 45_000, 250);
    const doneMs = Date.now() - published;
    expect(await statusCounts(c)).toEqual({ succeeded: EVENTS });

    const missing = ids.filter((id) => !rx.arrivals.has(id));
    expect(missing).toEqual([]);
    const known = new Set(ids);
    expect([...rx.arrivals.keys()].filter((id) => !known.has(id))).toEqual([]);
    const duplicates = rx.total() - rx.arrivals.size;
    // Each delivery's outcome was written once: the dead worker's attempts were never recorded,
    // and the delivery it held was sent again as the same attempt.
    const [att] = await c.sql<{ n: number; max: number }>('SELECT COUNT(*)::int AS n, MAX(d.attempts)::int AS max FROM deliveries d JOIN attempts a ON a.delivery_id = d.id');
    expect(att).toEqual({ n: EVENTS, max: 1 });

    console.log(
      `scale-multiprocess: ${EVENTS} deliveries, 1 api + 3 workers (one SIGKILLed with ${victimOpen} requests open): ` +
        `published in ${publishMs} ms, all succeeded ${doneMs} ms after publishing began ` +
        `(${Date.now() - killedAt} ms after the kill, leases 10 s); ${rx.total()} requests, ${duplicates} duplicate(s); ` +
        `whole test ${Date.now() - t0} ms`,
    );
    expect(victimOpen).toBeGreaterThan(0); // the kill really was mid-request
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    expect(duplicates).toBeLessThanOrEqual(victimOpen);
  }, 90_000);

  it('HERALD_ENDPOINT_CONCURRENCY holds across processes: 3 workers, limit 4, never more than 4 requests open', async () => {
    // Two requests per worker at most: reaching 4 open takes at least two processes at once,
    // so the limit is really shared, and with 3 × 2 = 6 slots it is what binds.
    const c = await cluster({ HERALD_ENDPOINT_CONCURRENCY: '4', HERALD_WORKER_CONCURRENCY: '2' });
    const rx = await receiver(200); // every answer takes 200 ms, so requests pile up if allowed
    const [api, ...workers] = await Promise.all([c.spawn('api'), c.spawn('worker'), c.spawn('worker'), c.spawn('worker')]);
    const { acc } = await accountWithWebhook(api, rx.url);
    await publish(api, acc, 40, 40);
    await waitFor(async () => (await statusCounts(c)).succeeded === 40, 20_000, 100);
    expect(rx.maxOpen()).toBe(4); // reached, and never exceeded
    const perWorker = await Promise.all(workers.map((w) => metric(w, /herald_deliveries_total\{outcome="succeeded"\} (\d+)/)));
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(40);
    expect(perWorker.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 40_000);

  it('a rate limit holds across processes: 3 workers share one bucket of 20 a second', async () => {
    const c = await cluster({});
    const rx = await receiver();
    const [api, ...workers] = await Promise.all([c.spawn('api'), c.spawn('worker'), c.spawn('worker'), c.spawn('worker')]);
    const { acc, webhook } = await accountWithWebhook(api, rx.url);
    expect((await api.api('PATCH', `/v1/accounts/${acc}/webhooks/${webhook}`, { rate_limit: 20 })).status).toBe(200);
    const t0 = Date.now();
    await publish(api, acc, 100, 50);
    await waitFor(async () => (await statusCounts(c)).succeeded === 100, 30_000, 100);
    expect(rx.total()).toBe(100);
    // 20 at once, then 80 at 20 a second: not before 4 s, whichever process sent them.
    expect(Math.max(...rx.times) - t0).toBeGreaterThanOrEqual(4000);
    // No second saw more requests start than the bucket and a second of refill (40), give or
    // take two that started a little after their claim. (Arrival times bunch more: a request
    // may take longer to arrive than the next ones.)
    const started = (await c.sql<{ s: string }>('SELECT started_at::text AS s FROM attempts')).map((r) => Number(r.s));
    for (const t of started) expect(started.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(42);
    const perWorker = await Promise.all(workers.map((w) => metric(w, /herald_deliveries_total\{outcome="succeeded"\} (\d+)/)));
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(100);
    expect(perWorker.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('prefetch across processes: with workers leasing a fast webhook ahead, never more than 4 requests open', async () => {
    // Default worker concurrency, a receiver that answers in 5 ms: each worker may lease the
    // webhook a few rounds ahead while no other process holds leases of it. The rule itself is
    // checked exactly in store.conformance.ts, and that a worker alone leases ahead in
    // delivery-worker.test.ts (both backends); this runs it in real processes, where a broken
    // rule shows as a second worker opening requests beside the first (not in every run: it
    // depends on the timing of the claims).
    const c = await cluster({ HERALD_ENDPOINT_CONCURRENCY: '4' });
    const rx = await receiver(5);
    const [api, ...workers] = await Promise.all([c.spawn('api'), c.spawn('worker'), c.spawn('worker'), c.spawn('worker')]);
    const { acc } = await accountWithWebhook(api, rx.url);
    const EVENTS = 1500;
    await publish(api, acc, EVENTS, 50);
    await waitFor(async () => (await statusCounts(c)).succeeded === EVENTS, 40_000, 100);
    expect(rx.maxOpen()).toBeLessThanOrEqual(4);
    expect(rx.total()).toBe(EVENTS); // each sent once
    const perWorker = await Promise.all(workers.map((w) => metric(w, /herald_deliveries_total\{outcome="succeeded"\} (\d+)/)));
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(EVENTS);
  }, 60_000);
});
