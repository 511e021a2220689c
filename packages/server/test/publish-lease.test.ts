import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import type { Store } from '../src/store/store.js';
import { freshSqlite, type TestDatabase } from './helpers/db.js';

/**
 * One process on SQLite leases new deliveries to its worker inside the publish transaction
 * (PublishLease): within the worker's free slots and each webhook's concurrency limit, the
 * rest left pending for the normal claim.
 */
describe('leasing at publish', () => {
  let db: TestDatabase;
  let s: Store;
  let acc: string;
  let hook: string;
  const leaseOf = async (id: string) =>
    (await s.q.all<{ lease_owner: string | null; lease_until: number | null }>('SELECT lease_owner, lease_until FROM deliveries WHERE id = ?', [id]))[0]!;
  const publish = (n: number, lease: Parameters<Store['publishMany']>[1]) =>
    s.publishMany(Array.from({ length: n }, () => ({ accountId: acc, type: 'content.generated', data: '{"x":1}', idempotencyKey: null, now: Date.now() })), lease);

  beforeAll(async () => {
    db = await freshSqlite();
    s = await db.open();
    await migrate(s.q);
  });
  afterAll(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    await db.reset();
    acc = (await s.createAccount('Acme', 'pro')).id;
    hook = (await s.createWebhook({ accountId: acc, url: 'https://example.com/h', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true })).id;
  });

  it('leases up to the offered slots and hands back what the sender needs', async () => {
    const out = await publish(3, { owner: 'w1', leaseMs: 15_000, limit: 2, endpointLimit: 16 });
    const leased = out.flatMap((r) => r.leased ?? []);
    expect(leased).toHaveLength(2);
    expect(leased[0]).toMatchObject({ webhookId: hook, eventType: 'content.generated', attempts: 0, data: '{"x":1}' });
    expect((await leaseOf(leased[0]!.id)).lease_owner).toBe('w1');
    const rest = out.flatMap((r) => r.deliveries).find((d) => !leased.some((l) => l.id === d.id))!;
    expect(await leaseOf(rest.id)).toEqual({ lease_owner: null, lease_until: null });
    // What was not leased is claimed as usual; what was leased is not claimed twice.
    const claimed = await s.claimDue({ owner: 'w2', now: Date.now() + 1, leaseMs: 15_000, limit: 10, lane: 'first', endpointLimit: 16 });
    expect(claimed.map((c) => c.id)).toEqual([rest.id]);
  });

  it('respects the webhook concurrency limit, counting leases already held', async () => {
    await publish(1, { owner: 'w1', leaseMs: 15_000, limit: 10, endpointLimit: 2 });
    const out = await publish(3, { owner: 'w1', leaseMs: 15_000, limit: 10, endpointLimit: 2 });
    expect(out.flatMap((r) => r.leased ?? [])).toHaveLength(1);
  });

  it('leases ahead (prefetch) at most prefetch.max rows over all webhooks, besides what they may send now', async () => {
    // A second webhook of the account: each event makes a delivery to both. Both are fast, so
    // each may send 2 now and hold 4 more: 8 events would lease 2 × (2 + 4) without the cap.
    const other = (await s.createWebhook({ accountId: acc, url: 'https://example.com/g', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true })).id;
    const offer = (max?: number) => ({ owner: 'w1', leaseMs: 15_000, limit: 20, endpointLimit: 2, prefetch: { extra: 4, webhooks: new Set([hook, other]), max } });
    const perHook = (out: Awaited<ReturnType<typeof publish>>) =>
      [hook, other].map((w) => out.flatMap((r) => r.leased ?? []).filter((l) => l.webhookId === w).length).sort();
    // 2 + 2 sendable now, then the 3 oldest rows ahead: one webhook holds 2 of them.
    expect(perHook(await publish(8, offer(3)))).toEqual([3, 4]);
    // The next publish finds each webhook over its 2 requests and the cap at 0: nothing leased.
    expect(perHook(await publish(2, offer(0)))).toEqual([0, 0]);
    // Without a cap, the limit of 20 is what stops it.
    await s.q.run('UPDATE deliveries SET lease_until = NULL, lease_owner = NULL');
    expect(perHook(await publish(8, offer()))).toEqual([6, 6]);
  });

  it('leaves a rate-limited webhook\'s deliveries to the claim, which takes the oldest first', async () => {
    const other = (await s.createWebhook({ accountId: acc, url: 'https://example.com/g', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true })).id;
    await s.updateWebhook(acc, hook, { rateLimit: 2 });
    const older = await publish(3, null);
    const out = await publish(3, { owner: 'w1', leaseMs: 15_000, limit: 10, endpointLimit: 16 });
    // The unlimited webhook's new deliveries are leased at publish; the limited one's are not.
    expect(out.flatMap((r) => r.leased ?? []).map((l) => l.webhookId)).toEqual([other, other, other]);
    const claimed = await s.claimDue({ owner: 'w2', now: Date.now(), leaseMs: 15_000, limit: 10, lane: 'first', endpointLimit: 16, webhooks: [hook], onlyWebhooks: true });
    const oldest = older.flatMap((r) => r.deliveries).filter((d) => d.webhookId === hook).slice(0, 2).map((d) => d.id);
    expect(claimed.map((c) => c.id).sort()).toEqual(oldest.sort());
  });

  it('leases nothing without an offer', async () => {
    const out = await publish(2, null);
    expect(out.flatMap((r) => r.leased ?? [])).toEqual([]);
  });
});
