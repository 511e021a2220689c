import { describe, it } from 'vitest';
import pg from 'pg';
import { DEFAULT_PG_URL, freshPostgres, postgresAdminUrl, type TestDatabase } from './db.js';
import { spawnHerald, type SpawnedHerald } from './spawn-herald.js';

/**
 * Several real `herald serve` processes on one throwaway PostgreSQL database, the way a
 * scaled-out installation runs: no other coordinator, the same admin token and secret key.
 */

/**
 * `describe` for suites that need PostgreSQL. Without a server they are skipped LOUDLY (a
 * warning and a visibly skipped suite); with HERALD_TEST_DATABASE_URL set, an unreachable
 * server is an error, never a skip (postgresAdminUrl throws).
 */
export async function describePostgres(name: string, body: (adminUrl: string) => void): Promise<void> {
  const admin = await postgresAdminUrl();
  if (admin) {
    describe(name, () => body(admin));
    return;
  }
  const why =
    process.env.HERALD_TEST_DATABASE_URL === 'none'
      ? 'turned off by HERALD_TEST_DATABASE_URL=none'
      : `PostgreSQL not reachable at ${DEFAULT_PG_URL}; set HERALD_TEST_DATABASE_URL to run these`;
  console.warn(`\n!!! ${name} SKIPPED: ${why}\n`);
  describe.skip(`${name} — SKIPPED (${why})`, () => {
    it('needs a PostgreSQL server', () => {});
  });
}

export type Role = 'api' | 'worker' | 'all';

export interface Cluster {
  readonly db: TestDatabase;
  /** Start `herald serve --role <role>` on the cluster's database. */
  spawn(role: Role, env?: Record<string, string>): Promise<SpawnedHerald>;
  /** One query on the database, through a client of the test's own. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** SIGKILL whatever still runs, close the client, drop the database. */
  close(): Promise<void>;
}

export async function startCluster(adminUrl: string, env: Record<string, string> = {}): Promise<Cluster> {
  const db = await freshPostgres(adminUrl);
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => {});
  await client.connect();
  const procs: SpawnedHerald[] = [];
  return {
    db,
    async spawn(role, more = {}) {
      const p = await spawnHerald({
        HERALD_DATABASE_URL: db.url,
        HERALD_ROLE: role,
        HERALD_DEV: 'true',
        // Few connections each: a test runs several processes beside other test files.
        HERALD_DB_POOL_SIZE: '4',
        ...env,
        ...more,
      });
      procs.push(p);
      return p;
    },
    sql: async <T>(text: string, params: unknown[] = []) => (await client.query(text, params)).rows as T[],
    async close() {
      await Promise.all(
        procs.map(async (p) => {
          if (p.child.exitCode === null && p.child.signalCode === null) {
            p.kill('SIGKILL');
            await p.exited;
          }
        }),
      );
      await client.end().catch(() => {});
      await db.drop();
    },
  };
}

/** A pro account with one webhook to `url` for every event type, created through `p`'s API. */
export async function accountWithWebhook(p: SpawnedHerald, url: string): Promise<{ acc: string; webhook: string }> {
  const a = await p.api('POST', '/v1/accounts', { name: 'Acme', plan: 'pro' });
  if (a.status !== 201) throw new Error(`create account: ${a.status} ${JSON.stringify(a.body)}`);
  const w = await p.api('POST', `/v1/accounts/${a.body.id}/webhooks`, { url, events: ['*'] });
  if (w.status !== 201) throw new Error(`create webhook: ${w.status} ${JSON.stringify(w.body)}`);
  return { acc: a.body.id as string, webhook: w.body.id as string };
}

/** Publish `n` events through `p`, `parallel` requests at a time; returns every delivery id. */
export async function publish(p: SpawnedHerald, acc: string, n: number, parallel = 50): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += parallel) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(parallel, n - i) }, (_, j) => p.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i: i + j } })),
    );
    for (const r of batch) {
      if (r.status !== 202) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body)}`);
      for (const d of r.body.deliveries as Array<{ id: string }>) ids.push(d.id);
    }
  }
  return ids;
}

/** Delivery counts by status, straight from the database. */
export async function statusCounts(c: Cluster): Promise<Record<string, number>> {
  const rows = await c.sql<{ status: string; n: number }>('SELECT status, COUNT(*)::int AS n FROM deliveries GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
