import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open.js';
import { waitFor } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { ensureBuilt, spawnHerald, type SpawnedHerald } from './helpers/spawn-herald.js';

/**
 * The real `herald serve` process, killed the hard way and the polite way (SPEC §5:
 * at-least-once, leases, graceful stop). Each test runs on its own SQLite file, shared by
 * the process and its successor.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delivery across process death and shutdown', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  beforeAll(() => ensureBuilt(), 120_000);

  function tempDb(): string {
    const dir = mkdtempSync(join(tmpdir(), 'herald-proc-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return `sqlite:${join(dir, 'herald.db')}`;
  }

  async function spawn(env: Record<string, string>): Promise<SpawnedHerald> {
    const p = await spawnHerald({ HERALD_DEV: 'true', ...env });
    cleanup.push(async () => {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.kill('SIGKILL');
        await p.exited;
      }
    });
    return p;
  }

  async function receiver(holdMs: number): Promise<Receiver> {
    const rx = await startReceiver(async (_r, res) => {
      await sleep(holdMs);
      res.end('ok');
    });
    cleanup.push(() => rx.close());
    return rx;
  }

  async function setupAndPublish(p: SpawnedHerald, url: string, events: number): Promise<{ acc: string; ids: string[] }> {
    const a = await p.api('POST', '/v1/accounts', { name: 'Acme', plan: 'pro' });
    const acc = a.body.id as string;
    const w = await p.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['*'] });
    expect(w.status).toBe(201);
    const ids: string[] = [];
    for (let i = 0; i < events; i++) {
      const r = await p.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } });
      ids.push(r.body.deliveries[0].id);
    }
    return { acc, ids };
  }

  const arrivals = (rx: Receiver, id: string) => rx.received.filter((r) => r.headers['x-herald-delivery'] === id);

  it('kill -9 mid-delivery: after a restart on the same database every delivery arrives and succeeds', async () => {
    const db = tempDb();
    // Lease = timeout + 5 s = 8 s: short enough for a test.
    const env = { HERALD_DATABASE_URL: db, HERALD_DELIVERY_TIMEOUT_MS: '3000', HERALD_ENDPOINT_CONCURRENCY: '10' };
    const leaseMs = 3000 + 5000;
    // The first five requests are answered only after the kill, however slow the publishing
    // before it: all five are surely in flight when the process dies. The resends answer at once.
    let release = (): void => {};
    const killed = new Promise<void>((r) => (release = r));
    const rx = await startReceiver(async (_r, res, n) => {
      if (n <= 5) await killed;
      res.end('ok');
    });
    cleanup.push(() => rx.close());
    cleanup.push(release); // runs before rx.close() should the test fail early
    const a = await spawn(env);
    const { acc, ids } = await setupAndPublish(a, rx.url, 5);
    await waitFor(() => rx.received.length === 5, 5000);
    a.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    const killedAt = Date.now();
    release();

    const b = await spawn(env);
    await waitFor(async () => {
      const l = await b.api('GET', `/v1/accounts/${acc}/deliveries?status=succeeded`);
      return l.body.data.length === 5;
    }, 20_000, 100);

    for (const id of ids) {
      const got = arrivals(rx, id);
      expect(got.length).toBeGreaterThanOrEqual(2);
      // The new process honoured the dead one's lease: it waited for it to run out, then sent
      // again within seconds (not at its next scheduled retry).
      const resent = got[1]!.at - got[0]!.at;
      expect(resent).toBeGreaterThanOrEqual(leaseMs - 1000);
      expect(resent).toBeLessThan(leaseMs + 5000);
      // Same delivery, same bytes.
      expect(got[1]!.body.equals(got[0]!.body)).toBe(true);
      const d = await b.api('GET', `/v1/accounts/${acc}/deliveries/${id}`);
      expect(d.body.status).toBe('succeeded');
    }
    expect(Date.now() - killedAt).toBeLessThan(leaseMs + 8000);
  }, 60_000);

  it('SIGTERM lets in-flight deliveries finish and be recorded, claims nothing more, and exits 0', async () => {
    const db = tempDb();
    const env = { HERALD_DATABASE_URL: db, HERALD_DELIVERY_TIMEOUT_MS: '5000', HERALD_ENDPOINT_CONCURRENCY: '5' };
    const rx = await receiver(1000);
    const p = await spawn(env);
    const { ids } = await setupAndPublish(p, rx.url, 10);
    await waitFor(() => rx.received.length === 5, 5000);
    const t0 = Date.now();
    p.kill('SIGTERM');
    const exit = await p.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(p.logs.some((l) => l.msg === 'stopped')).toBe(true);
    // The five queued behind the endpoint limit were not started during shutdown.
    expect(rx.received).toHaveLength(5);

    const store = await openStore({ db: { kind: 'sqlite', path: db.slice('sqlite:'.length) }, sqliteSynchronous: 'normal', dbPoolSize: 1 });
    try {
      expect(await store.countByStatus()).toEqual({ pending: 5, succeeded: 5, failed: 0 });
      const leased = await store.q.all<{ c: number }>('SELECT COUNT(*) AS c FROM deliveries WHERE lease_until IS NOT NULL');
      expect(Number(leased[0]!.c)).toBe(0);
    } finally {
      await store.close();
    }

    // The next process sends the other five at once, and none of the first five again.
    const q = await spawn(env);
    await waitFor(() => rx.received.length >= 10, 10_000);
    await sleep(1500);
    await q.api('GET', '/healthz');
    for (const id of ids) expect(arrivals(rx, id)).toHaveLength(1);
  }, 60_000);
});
