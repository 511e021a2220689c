import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError } from './helpers/api-kit.js';
import { freshPostgres, postgresAdminUrl, type TestDatabase } from './helpers/db.js';
import { startHerald, type TestHerald } from './helpers/herald.js';

// PostgreSQL only: a transaction PostgreSQL ends to break a deadlock is the database's call,
// not a fault of the request.
const admin = await postgresAdminUrl();
describe.skipIf(!admin)('a request whose transaction PostgreSQL ends to break a deadlock', () => {
  let db: TestDatabase;
  let h: TestHerald;
  beforeAll(async () => {
    db = await freshPostgres(admin!);
    h = await startHerald({ HERALD_DATABASE_URL: db.url }, { worker: false });
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('answers 503 unavailable with Retry-After, changes nothing, and goes through when sent again', async () => {
    const acc = (await h.api('POST', '/v1/accounts', { name: 'Deadlock', plan: 'pro' })).body.id as string;
    const w = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: 'https://example.com/hook', events: ['*'] })).body;
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      // Another session holds the webhook's row; the PATCH takes the account's key lock and
      // waits for the row; then the other session wants the account's row: a cycle, which
      // PostgreSQL breaks after deadlock_timeout (1 s) by ending the PATCH, the first to wait.
      await other.query('BEGIN');
      await other.query('SELECT id FROM webhooks WHERE id = $1 FOR UPDATE', [w.id]);
      const patch = h.api('PATCH', `/v1/accounts/${acc}/webhooks/${w.id}`, { description: 'changed' });
      await new Promise((r) => setTimeout(r, 300));
      const second = other.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [acc]).then(() => 'locked', (e: { code?: string }) => e.code);
      const res = await patch;
      expect(await second).toBe('locked');
      await other.query('ROLLBACK');
      expectError(res, 503, 'unavailable');
      expect(res.headers.get('retry-after')).toBe('1');
    } finally {
      await other.end();
    }
    expect((await h.api('GET', `/v1/accounts/${acc}/webhooks/${w.id}`)).body.description).toBe('');
    const again = await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${w.id}`, { description: 'changed' });
    expect(again.status).toBe(200);
    expect(again.body.description).toBe('changed');
  });
});
