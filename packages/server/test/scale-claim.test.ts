import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import type { ClaimOptions, Store } from '../src/store/store.js';
import { freshPostgres, freshSqlite, postgresAdminUrl, type TestDatabase } from './helpers/db.js';

/**
 * Claims that look at named webhooks (ClaimOptions.webhooks, and the thorough walk): on
 * PostgreSQL one statement per chunk of webhooks (LATERAL), on SQLite one per webhook. Both
 * must choose the same deliveries.
 */
const T0 = Date.UTC(2024, 4, 20, 14, 30);

function suite(name: string, makeDb: () => Promise<TestDatabase>): void {
  describe(`claims by webhook: ${name}`, () => {
    let db: TestDatabase;
    let s: Store;
    let acc: string;
    beforeAll(async () => {
      db = await makeDb();
      s = await db.open();
      await migrate(s.q);
    });
    afterAll(async () => {
      await db?.drop();
    });
    beforeEach(async () => {
      await db.reset();
      acc = (await s.createAccount('Acme', 'pro', T0)).id;
    });

    /** A webhook with `n` deliveries due at T0 + 0, 1, 2, … ms (published in that order). */
    async function hookWith(n: number, offset = 0): Promise<{ id: string; deliveries: string[] }> {
      const w = await s.createWebhook({ accountId: acc, url: 'https://example.com/h', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true }, T0);
      // One webhook at a time receives events: disable the others meanwhile.
      const others = (await s.listWebhooks(acc)).filter((x) => x.id !== w.id && x.enabled);
      for (const o of others) await s.updateWebhook(acc, o.id, { enabled: false }, T0);
      const out = await s.publishMany(Array.from({ length: n }, (_, i) => ({ accountId: acc, type: 'content.generated', data: '{}', idempotencyKey: null, now: T0 + offset + i })));
      for (const o of others) await s.updateWebhook(acc, o.id, { enabled: true }, T0);
      return { id: w.id, deliveries: out.map((r) => r.deliveries[0]!.id) };
    }
    const claim = (o: Partial<ClaimOptions>) =>
      s.claimDue({ owner: 'A', now: T0 + 1_000_000, leaseMs: 60_000, limit: 10, lane: 'first', endpointLimit: 10, ...o });

    it('named webhooks: the oldest due of each, at most its free slots, oldest first', async () => {
      const a = await hookWith(5, 0);
      const b = await hookWith(5, 100);
      const c = await hookWith(5, 200);
      // c has one lease already, so one slot fewer.
      await claim({ owner: 'B', limit: 1, webhooks: [c.id] });
      const got = await claim({ limit: 5, endpointLimit: 2, webhooks: [c.id, a.id, b.id, a.id] });
      expect(got.map((g) => g.id)).toEqual([a.deliveries[0], a.deliveries[1], b.deliveries[0], b.deliveries[1], c.deliveries[1]]);
    });

    it('a thorough claim finds a webhook hidden behind a full webhook\'s backlog', async () => {
      const stalled = await hookWith(300, 0);
      const behind = await hookWith(3, 1000);
      // The stalled endpoint is at its limit (held by another worker).
      await claim({ owner: 'B', limit: 2, endpointLimit: 2 });
      expect(await claim({ limit: 4, endpointLimit: 2 })).toEqual([]); // the window saw only the backlog
      const got = await claim({ limit: 4, endpointLimit: 2, thorough: true });
      expect(got.map((g) => g.id)).toEqual(behind.deliveries.slice(0, 2));
      expect(stalled.deliveries).toHaveLength(300);
    });

    it('finished ids free their slots only while their leases are still held (no double discount)', async () => {
      const w = await hookWith(4);
      const [d0, d1] = await claim({ limit: 2, endpointLimit: 2 });
      expect(await claim({ endpointLimit: 2 })).toEqual([]);
      // d0's attempt ended, outcome not written yet: its slot is free.
      const [d2] = await claim({ endpointLimit: 2, finished: [d0!.id] });
      expect(d2!.id).toBe(w.deliveries[2]);
      // Now d0's outcome lands (its lease goes) while the worker still lists it as finished:
      // d1 and d2 are open, the webhook is full, and nothing more may be claimed.
      await s.recordAttempts([{
        attempt: { id: 'att_x', deliveryId: d0!.id, attemptNo: 1, startedAt: T0, durationMs: 1, statusCode: 200, success: true, errorKind: null, errorMessage: null, requestHeaders: {}, responseHeaders: null, responseBody: null, responseTruncated: false },
        owner: 'A', status: 'succeeded', nextAttemptAt: null, error: null, disableWebhook: null, webhookId: w.id,
      }]);
      expect(await claim({ endpointLimit: 2, finished: [d0!.id] })).toEqual([]);
      // Another owner's lease is never discounted by this owner's list.
      expect(await claim({ owner: 'B', endpointLimit: 2, finished: [d1!.id] })).toEqual([]);
    });

    it('many named webhooks (more than one statement\'s worth) stop at the limit', async () => {
      const hooks = [];
      for (let i = 0; i < 70; i++) hooks.push(await hookWith(1, i));
      const got = await claim({ limit: 66, endpointLimit: 1, webhooks: hooks.map((h) => h.id).reverse() });
      expect(got).toHaveLength(66);
      expect(new Set(got.map((g) => g.webhookId)).size).toBe(66);
    });
  });
}

suite('sqlite', freshSqlite);
const admin = await postgresAdminUrl();
if (admin) suite('postgres', () => freshPostgres(admin));
else {
  console.warn('\n!!! claims by webhook on PostgreSQL SKIPPED: no PostgreSQL\n');
  describe.skip('claims by webhook: postgres — SKIPPED (no PostgreSQL)', () => {
    it('needs a PostgreSQL server', () => {});
  });
}
