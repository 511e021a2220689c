import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import { PostgresExecutor } from '../src/store/postgres/postgres-executor.js';
import { Store } from '../src/store/store.js';
import { describePostgres } from './helpers/cluster.js';
import { freshPostgres, type TestDatabase } from './helpers/db.js';

/**
 * Deleting a webhook or an account with a long history on PostgreSQL: each statement runs under
 * statement_timeout (30 s in production, 1 s here), and one DELETE of every delivery at once
 * outlasted it for good (about 9 s a million rows on this machine). 200,000 deliveries with an
 * attempt each take about 2 s in one statement.
 */
const ROWS = 200_000;

await describePostgres('deleting a long history (PostgreSQL)', (admin) => {
  let db: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    db = await freshPostgres(admin);
    const owner = await db.open({ poolSize: 1 });
    await migrate(owner.q);
    await owner.q.exec(`
      INSERT INTO accounts VALUES ('acc_a', 'A', 'pro', 0, 0), ('acc_b', 'B', 'pro', 0, 0);
      INSERT INTO webhooks (id, account_id, url, description, events, enabled, created_at, updated_at) VALUES
        ('wh_long', 'acc_a', 'https://a.example/', '', '["*"]', 1, 0, 0),
        ('wh_kept', 'acc_a', 'https://b.example/', '', '["*"]', 1, 0, 0),
        ('wh_other', 'acc_b', 'https://c.example/', '', '["*"]', 1, 0, 0);
      INSERT INTO events SELECT 'evt_' || g, 'acc_a', 'content.generated', g, '{}', NULL FROM generate_series(1, ${ROWS}) g;
      INSERT INTO events VALUES ('evt_b', 'acc_b', 'content.generated', 1, '{}', NULL);
      INSERT INTO deliveries (id, account_id, event_id, webhook_id, event_type, status, attempts, created_at, updated_at)
        SELECT 'dlv_' || g, 'acc_a', 'evt_' || g, CASE WHEN g % 1000 = 0 THEN 'wh_kept' ELSE 'wh_long' END, 'content.generated', 'succeeded', 1, g, g
        FROM generate_series(1, ${ROWS}) g;
      INSERT INTO deliveries (id, account_id, event_id, webhook_id, event_type, status, attempts, created_at, updated_at)
        VALUES ('dlv_b', 'acc_b', 'evt_b', 'wh_other', 'content.generated', 'succeeded', 1, 1, 1);
      INSERT INTO attempts SELECT 'att_' || g, 'dlv_' || g, 1, g, 5, 200, 1, NULL, NULL, '{}', '{}', 'ok', 0 FROM generate_series(1, ${ROWS}) g;
      ANALYZE;
    `);
    store = new Store(await PostgresExecutor.connect(db.url, { poolSize: 2, statementTimeoutMs: 1000 }));
  }, 120_000);
  afterAll(async () => {
    await store?.q.close();
    await db?.drop();
  });

  const count = async (where: string) => Number((await store.q.all<{ c: string }>(`SELECT COUNT(*) AS c FROM deliveries WHERE ${where}`))[0]!.c);

  it('deletes a webhook whose history one statement could not delete in time, and nothing of another account', async () => {
    expect(await store.deleteWebhook('acc_b', 'wh_long')).toBe(false); // another account's webhook: untouched
    expect(await count(`webhook_id = 'wh_long'`)).toBe(ROWS - ROWS / 1000);
    expect(await store.deleteWebhook('acc_a', 'wh_long')).toBe(true);
    expect(await count(`webhook_id = 'wh_long'`)).toBe(0);
    expect(await count(`webhook_id = 'wh_kept'`)).toBe(ROWS / 1000);
    expect(Number((await store.q.all<{ c: string }>('SELECT COUNT(*) AS c FROM attempts'))[0]!.c)).toBe(ROWS / 1000);
    // Events left without a delivery went with it; those another webhook was sent stay.
    expect(Number((await store.q.all<{ c: string }>('SELECT COUNT(*) AS c FROM events'))[0]!.c)).toBe(ROWS / 1000 + 1);
  }, 60_000);

  it('deletes an account the same way, and only that account', async () => {
    expect(await store.deleteAccount('acc_a')).toBe(true);
    expect(await count(`account_id = 'acc_a'`)).toBe(0);
    expect(await count(`account_id = 'acc_b'`)).toBe(1);
    expect(await store.deleteAccount('acc_a')).toBe(false);
  }, 60_000);
});
