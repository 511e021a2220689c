import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import { openStore } from '../src/store/open.js';
import { PostgresExecutor } from '../src/store/postgres/postgres-executor.js';
import type { Store } from '../src/store/store.js';
import { DEFAULT_PG_URL, freshPostgres, postgresAdminUrl, type TestDatabase } from './helpers/db.js';
import { runStoreConformance } from './store.conformance.js';

// Throws when HERALD_TEST_DATABASE_URL is set but unreachable; null when nothing is configured
// and the local default does not answer.
const admin = await postgresAdminUrl();
if (admin) {
  runStoreConformance('postgres', () => freshPostgres(admin), { multiProcess: true });

  describe('named prepared statements (PostgreSQL)', () => {
    let db: TestDatabase;
    const stores: Store[] = [];
    const open = async (preparedStatements: boolean) => {
      // One connection, so what a statement prepares is visible to the next query.
      const s = await openStore({ db: { kind: 'postgres', url: db.url }, sqliteSynchronous: 'normal', dbPoolSize: 1, pgPreparedStatements: preparedStatements });
      stores.push(s);
      return s;
    };
    const prepared = async (s: Store) => Number((await s.q.all<{ c: string }>('SELECT COUNT(*) AS c FROM pg_prepared_statements'))[0]!.c);
    const work = async (s: Store) => {
      const a = await s.createAccount('Acme', 'pro');
      const w = await s.createWebhook({ accountId: a.id, url: 'https://example.com/h', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true });
      await s.publishMany([{ accountId: a.id, type: 'content.generated', data: '{}', idempotencyKey: null, now: Date.now() }]);
      const claimed = await s.claimDue({ owner: 'A', now: Date.now(), leaseMs: 30_000, limit: 10, lane: 'first', endpointLimit: 4, webhooks: [w.id], onlyWebhooks: true });
      expect(claimed).toHaveLength(1);
      expect(await s.getWebhookWithPlan(w.id)).toMatchObject({ webhook: { id: w.id }, plan: 'pro' });
      return w;
    };

    beforeAll(async () => {
      db = await freshPostgres(admin);
      await migrate((await db.open()).q);
    });
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await db?.drop();
    });

    it('prepare the hot statements once per connection, and none when turned off', async () => {
      const on = await open(true);
      await work(on);
      const once = await prepared(on);
      expect(once).toBeGreaterThan(0);
      // The same statements again on the same connection: prepared already, nothing new.
      await work(on);
      expect(await prepared(on)).toBe(once);
      const off = await open(false);
      await work(off);
      expect(await prepared(off)).toBe(0);
    });

    it('a connection killed inside a transaction fails that transaction, not the process; the next one works', async () => {
      const s = await open(true);
      const killer = new pg.Client({ connectionString: db.url });
      await killer.connect();
      try {
        const inTx = s.q.tx(async (t) => {
          await t.all('SELECT pg_sleep(10)');
        });
        // Wait until the sleep runs, then end every other session of this database.
        for (let i = 0; i < 200; i++) {
          const { rows } = await killer.query("SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%' AND state = 'active'");
          if (rows[0].n > 0) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        await killer.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
        await expect(inTx).rejects.toThrow();
        // The dead connection did not go back to the pool: the next transaction gets a live one.
        await expect(s.q.tx(async (t) => t.all<{ one: number }>('SELECT 1 AS one'))).resolves.toEqual([{ one: 1 }]);
        await work(s);
      } finally {
        await killer.end();
      }
    });

    it('a statement stuck behind a lock is cancelled by the server at the statement timeout, and commits nothing later', async () => {
      const q = await PostgresExecutor.connect(db.url, { poolSize: 2, statementTimeoutMs: 300 });
      const locker = new pg.Client({ connectionString: db.url });
      await locker.connect();
      try {
        await migrate(q);
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE cluster_jobs IN ACCESS EXCLUSIVE MODE');
        const insert = "INSERT INTO cluster_jobs (name, next_run_at, owner) VALUES ('stuck', 0, NULL)";
        await expect(q.run(insert)).rejects.toMatchObject({ code: '57014' });
        await expect(q.tx(async (t) => t.run(insert))).rejects.toMatchObject({ code: '57014' });
        await locker.query('COMMIT');
        // Nothing of it is left running, and nothing of it landed once the lock was gone.
        const { rows } = await locker.query("SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'INSERT INTO cluster_jobs%' AND state = 'active'");
        expect(rows[0].n).toBe(0);
        expect(await q.all("SELECT name FROM cluster_jobs WHERE name = 'stuck'")).toEqual([]);
        // A transaction whose client stops talking mid-way is ended by the server, its locks
        // (the cluster-wide claim lock, say) given back.
        await expect(q.tx(async (t) => {
          await t.all('SELECT 1 AS one');
          await new Promise((r) => setTimeout(r, 1000)); // idle inside the transaction
          await t.all('SELECT 2 AS two');
        }, { lock: 'claim' })).rejects.toThrow();
        await expect(q.tx(async (t) => t.all('SELECT 3 AS three'), { lock: 'claim' })).resolves.toEqual([{ three: 3 }]);
        // Migrations are exempt: the migration transaction may wait and run as long as it needs.
        await expect(q.tx(async (t) => {
          await t.exec('SELECT pg_sleep(0.5)');
          await new Promise((r) => setTimeout(r, 500));
        }, { lock: 'migrate' })).resolves.toBeUndefined();
      } finally {
        await locker.end();
        await q.close();
      }
    });

    it('retention leaves a delivery that is redelivered while it runs', async () => {
      const s = await open(true);
      const day = 86_400_000;
      const old = Date.now() - 40 * day;
      const a = await s.createAccount('Acme', 'pro', old);
      await s.createWebhook({ accountId: a.id, url: 'https://example.com/h', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true }, old);
      const [p] = await s.publishMany([{ accountId: a.id, type: 'content.generated', data: '{}', idempotencyKey: null, now: old }]);
      const id = p!.deliveries[0]!.id;
      await s.q.run("UPDATE deliveries SET status = 'failed', attempts = 1 WHERE id = ?", [id]);
      // Another session redelivers it and has not committed yet when retention looks.
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query("UPDATE deliveries SET status = 'pending' WHERE id = $1", [id]);
        const purge = s.purgeOlderThan(Date.now() - 30 * day);
        // Commit only once retention is seen waiting on the row lock: committing before it
        // looks would let it pass without the lock.
        let waited = false;
        for (let i = 0; i < 500 && !waited; i++) {
          // `other` is inside its transaction, where PostgreSQL keeps the first pg_stat_activity
          // it read: without clearing it, a first look taken before retention began waiting
          // would be seen again at every poll.
          await other.query('SELECT pg_stat_clear_snapshot()');
          const { rows } = await other.query(
            "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'SELECT id FROM deliveries%'",
          );
          waited = rows[0].n > 0;
          if (!waited) await new Promise((r) => setTimeout(r, 10));
        }
        expect(waited).toBe(true);
        await other.query('COMMIT');
        await purge;
      } finally {
        await other.end();
      }
      expect(await s.getDeliveryRow(a.id, id)).toMatchObject({ status: 'pending' });
    });

    it('a connection that goes silent fails its statement after the statement timeout, and the next statement gets a live one', async () => {
      // A proxy to PostgreSQL that can stop forwarding on the connections it has, without FIN
      // or RST, as a failover or a NAT that lost its state would; new connections still pass.
      const target = new URL(db.url);
      const open = new Set<{ frozen: boolean }>();
      const proxy = net.createServer((client) => {
        const link = { frozen: false };
        open.add(link);
        const server = net.connect(Number(target.port || 5432), target.hostname);
        client.on('data', (b) => void (link.frozen || server.write(b)));
        server.on('data', (b) => void (link.frozen || client.write(b)));
        const end = () => (client.destroy(), server.destroy(), open.delete(link));
        client.on('close', end).on('error', end);
        server.on('close', end).on('error', end);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      const viaProxy = new URL(db.url);
      viaProxy.host = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
      const q = await PostgresExecutor.connect(viaProxy.toString(), { poolSize: 2, statementTimeoutMs: 300 });
      try {
        await expect(q.all('SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]); // one pooled connection now
        for (const link of open) link.frozen = true;
        const started = Date.now();
        await expect(q.tx(async (t) => t.all('SELECT 2 AS two'))).rejects.toThrow();
        expect(Date.now() - started).toBeLessThan(5000);
        // The silent connections were thrown away; new ones work.
        await expect(q.all('SELECT 4 AS four')).resolves.toEqual([{ four: 4 }]);
      } finally {
        await Promise.race([q.close(), new Promise((r) => setTimeout(r, 2000))]);
        proxy.close();
      }
    });

    it('an audited change of a webhook or key locks the account before the row, as deleting the account does', async () => {
      const s = await open(true);
      const a = await s.createAccount('Locks', 'pro');
      const w = await s.createWebhook({ accountId: a.id, url: 'https://example.com/h', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true });
      const { id: key } = await s.createApiKey(a.id, 'hash-locks', 'hk_locks');
      const entry = () => ({ accountId: a.id, at: Date.now(), actor: 'test', action: 'x', target: null, details: null });
      // A failed delivery of w, for recovery and redelivery, and a second webhook to delete.
      const [pub] = await s.publishMany([{ accountId: a.id, type: 'content.generated', data: '{}', idempotencyKey: null, now: Date.now() - 1000 }]);
      const dlv = pub!.deliveries[0]!.id;
      const [c] = await s.claimDue({ owner: 'L', now: Date.now(), leaseMs: 30_000, limit: 1, lane: 'first', endpointLimit: 16 });
      const att = { id: `att_${dlv}`, deliveryId: dlv, attemptNo: 1, startedAt: Date.now(), durationMs: 1, statusCode: 500, success: false, errorKind: 'http_status' as const, errorMessage: 'HTTP 500', requestHeaders: {}, responseHeaders: null, responseBody: null, responseTruncated: false };
      expect(await s.recordAttempts([{ attempt: att, owner: 'L', status: 'failed', nextAttemptAt: null, error: 'HTTP 500', disableWebhook: null, webhookId: c!.webhookId }])).toBe(0);
      const w2 = await s.createWebhook({ accountId: a.id, url: 'https://example.com/h2', description: '', events: ['ping'], headersEnc: null, secretEnc: null, enabled: true });
      // Deleting the account holds its row (as here) and then needs every row it owns. A change
      // that held one of those rows while waiting for the account (its audit entry's foreign
      // key) would deadlock with it; the change must wait before it takes any.
      const deleter = new pg.Client({ connectionString: db.url });
      const prober = new pg.Client({ connectionString: db.url });
      await deleter.connect();
      await prober.connect();
      try {
        const changes: Array<[string, string, string, () => Promise<unknown>]> = [
          ['update', 'webhooks', w.id, () => s.updateWebhook(a.id, w.id, { description: 'changed' }, Date.now(), entry)],
          ['rotate', 'webhooks', w.id, () => s.rotateWebhookSecret(a.id, w.id, 'enc-new', null, Date.now(), entry)],
          ['revoke', 'api_keys', key, () => s.deleteApiKey(a.id, key, entry)],
          ['recover', 'deliveries', dlv, () => s.recoverFailed(a.id, w.id, { since: 0, until: Date.now() + 1000 }, Date.now(), () => entry())],
          ['redeliver', 'deliveries', dlv, () => s.redeliver(a.id, dlv, Date.now(), entry)],
          ['delete', 'webhooks', w2.id, () => s.deleteWebhook(a.id, w2.id, entry)],
        ];
        for (const [what, table, id, change] of changes) {
          await deleter.query('BEGIN');
          await deleter.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [a.id]);
          const pending = change();
          await new Promise((r) => setTimeout(r, 300)); // it has started, and waits
          const free = await prober.query(`SELECT id FROM ${table} WHERE id = $1 FOR UPDATE SKIP LOCKED`, [id]);
          expect(free.rows, `${what} holds no ${table} row while it waits for the account`).toHaveLength(1);
          await deleter.query('ROLLBACK');
          expect(await pending, `${what} went ahead once the account was free`).toBeTruthy();
        }
      } finally {
        await deleter.end();
        await prober.end();
      }
    });

    it('an outcome batch in any order waits for a delivery a deletion holds while holding none the deletion needs, so the two cannot deadlock', async () => {
      const s = await open(true);
      const a = await s.createAccount('Order', 'pro');
      await s.createWebhook({ accountId: a.id, url: 'https://example.com/h', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true });
      const now = Date.now();
      await s.publishMany([0, 1].map((i) => ({ accountId: a.id, type: 'content.generated', data: '{}', idempotencyKey: null, now: now - 10 + i })));
      const claimed = await s.claimDue({ owner: 'O', now, leaseMs: 30_000, limit: 10, lane: 'first', endpointLimit: 16 });
      const [d1, d2] = claimed.map((c) => c.id).sort();
      const rec = (id: string) => ({
        attempt: { id: `att_${id}`, deliveryId: id, attemptNo: 1, startedAt: now, durationMs: 1, statusCode: 200, success: true, errorKind: null, errorMessage: null, requestHeaders: {}, responseHeaders: null, responseBody: null, responseTruncated: false },
        owner: 'O', status: 'succeeded' as const, nextAttemptAt: null, error: null, disableWebhook: null, webhookId: claimed[0]!.webhookId,
      });
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      try {
        // A deletion in id order holds the first delivery and will want the second.
        await other.query('BEGIN');
        await other.query('SELECT id FROM deliveries WHERE id = $1 FOR UPDATE', [d1]);
        // Outcomes come in the order their requests ended: the second delivery's first.
        const write = s.recordAttempts([rec(d2!), rec(d1!)]);
        await new Promise((r) => setTimeout(r, 300));
        await other.query('SELECT id FROM deliveries WHERE id = $1 FOR UPDATE', [d2]); // no cycle
        await other.query('ROLLBACK');
        expect(await write).toBe(0);
      } finally {
        await other.end();
      }
      expect((await s.getDeliveryRow(a.id, d2!))).toMatchObject({ status: 'succeeded' });
    });

    it('a change of an account applies to the row as committed when it is saved, not as read before', async () => {
      const s = await open(true);
      const a = await s.createAccount('Before', 'pro');
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      try {
        // Another process changes the plan; its transaction is open while the rename starts.
        await other.query('BEGIN');
        await other.query("UPDATE accounts SET plan = 'enterprise' WHERE id = $1", [a.id]);
        const rename = s.updateAccount(a.id, { name: 'After' });
        await new Promise((r) => setTimeout(r, 300));
        await other.query('COMMIT');
        expect(await rename).toMatchObject({ name: 'After', plan: 'enterprise' });
        expect(await s.getAccount(a.id)).toMatchObject({ name: 'After', plan: 'enterprise' });
      } finally {
        await other.end();
      }
    });

    it('publish inserts new Idempotency-Keys in key order, so two publishers of the same keys cannot deadlock', async () => {
      const s = await open(true);
      const a = await s.createAccount('Keys', 'pro');
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      const row = (k: string) => other.query('INSERT INTO events (id, account_id, type, created_at, data, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6)', [`evt_${k}`, a.id, 'content.generated', Date.now(), '{}', k]);
      try {
        // Another publisher, in key order, holds key-1 and will want key-2.
        await other.query('BEGIN');
        await row('key-1');
        const input = (k: string) => ({ accountId: a.id, type: 'content.generated', data: '{}', idempotencyKey: k, now: Date.now() });
        // Given in the other order: taken as given, this group would hold key-2 while it waits
        // for key-1, and the other's key-2 would close the cycle.
        const pub = s.publishMany([input('key-2'), input('key-1')]);
        await new Promise((r) => setTimeout(r, 300));
        await row('key-2'); // no cycle: the group waits holding nothing of the other's
        await other.query('ROLLBACK');
        const out = await pub;
        expect(out.map((r) => r.replayed)).toEqual([false, false]);
      } finally {
        await other.end();
      }
    });

    it('keep working when a migration adds columns under a running process', async () => {
      const s = await open(true);
      const w = await work(s);
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        await c.query('ALTER TABLE webhooks ADD COLUMN rolling_extra TEXT');
        await c.query('ALTER TABLE deliveries ADD COLUMN rolling_extra TEXT');
      } finally {
        await c.end();
      }
      await work(s);
      expect(await s.getWebhookWithPlan(w.id)).toMatchObject({ webhook: { id: w.id }, plan: 'pro' });
    });
  });
} else {
  const why =
    process.env.HERALD_TEST_DATABASE_URL === 'none'
      ? 'turned off by HERALD_TEST_DATABASE_URL=none'
      : `PostgreSQL not reachable at ${DEFAULT_PG_URL}; set HERALD_TEST_DATABASE_URL to run these`;
  console.warn(`\n!!! Store conformance on PostgreSQL SKIPPED: ${why}\n`);
  describe.skip(`Store conformance: postgres — SKIPPED (${why})`, () => {
    it('needs a PostgreSQL server', () => {});
  });
}
