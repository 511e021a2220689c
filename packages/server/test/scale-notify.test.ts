import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import type { QueuedLane, Store } from '../src/store/store.js';
import { freshPostgres, freshSqlite, type TestDatabase } from './helpers/db.js';
import { waitFor } from './helpers/herald.js';
import { describePostgres, sleep } from './helpers/cluster.js';

/**
 * Store.onDeliveriesQueued: how workers in one process hear that another process queued
 * deliveries (PostgreSQL LISTEN/NOTIFY), and that it is a harmless no-op on SQLite.
 */
const T0 = Date.UTC(2024, 4, 20, 14, 30);

async function fixtures(s: Store): Promise<{ acc: string; quiet: string }> {
  const acc = await s.createAccount('Acme', 'pro', T0);
  await s.createWebhook({ accountId: acc.id, url: 'https://example.com/h', description: '', events: ['content.generated'], headersEnc: null, secretEnc: null, enabled: true }, T0);
  const quiet = await s.createAccount('No hooks', 'pro', T0);
  return { acc: acc.id, quiet: quiet.id };
}
const input = (accountId: string, type = 'content.generated') => ({ accountId, type, data: '{}', idempotencyKey: null, now: T0 });

describe('Store.onDeliveriesQueued: sqlite', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshSqlite();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('subscribes to nothing (the one process wakes its own worker) and unsubscribes cleanly', async () => {
    const s = await db.open();
    await migrate(s.q);
    const heard: Array<QueuedLane | null> = [];
    const off = s.onDeliveriesQueued((l) => heard.push(l));
    const { acc } = await fixtures(s);
    await s.publishMany([input(acc)]);
    await sleep(50);
    expect(heard).toEqual([]);
    off();
  });
});

await describePostgres('Store.onDeliveriesQueued: postgres', (admin) => {
  let db: TestDatabase;
  let writer: Store; // stands in for an api process
  let listener: Store; // and this one for a worker process
  let heard: Array<QueuedLane | null>;
  let errors: unknown[];
  let off: () => void;
  let ids: { acc: string; quiet: string };

  beforeAll(async () => {
    db = await freshPostgres(admin);
    writer = await db.open();
    await migrate(writer.q);
    listener = await db.open();
  });
  afterAll(async () => {
    off?.();
    await db.drop();
  });
  beforeEach(async () => {
    off?.();
    await db.reset();
    ids = await fixtures(writer);
    heard = [];
    errors = [];
    off = listener.onDeliveriesQueued((l) => heard.push(l), (e) => errors.push(e));
    // Listening has begun when the first (null: "anything may be queued") call arrives.
    await waitFor(() => heard.length === 1, 5000, 5);
    expect(heard).toEqual([null]);
    heard.length = 0;
  });

  it('hears every committed publish that queued deliveries, from another pool, once per transaction', async () => {
    await writer.publishMany([input(ids.acc), input(ids.acc), input(ids.acc)]);
    await waitFor(() => heard.length === 1, 2000, 5);
    await writer.publishMany([input(ids.acc)]);
    await waitFor(() => heard.length === 2, 2000, 5);
    await sleep(50);
    expect(heard).toEqual(['first', 'first']);
  });

  it('hears nothing for a publish that queued no delivery, or that rolled back', async () => {
    await writer.publishMany([input(ids.quiet), input(ids.acc, 'analysis.completed')]); // no webhook wants these
    await expect(writer.publishMany([input('acc_does_not_exist')])).rejects.toThrow(); // foreign key: rolled back
    await sleep(200);
    expect(heard).toEqual([]);
  });

  it('hears a redelivery as the retry lane and leases given back as either lane', async () => {
    const [r] = await writer.publishMany([input(ids.acc)]);
    await waitFor(() => heard.length === 1, 2000, 5);
    const id = r!.deliveries[0]!.id;
    // One failed attempt, so the redelivery belongs to the retry lane.
    const claim = async () => (await writer.claimDue({ owner: 'w1', now: Date.now(), leaseMs: 60_000, limit: 1, lane: 'retry', endpointLimit: 10 }))[0];
    await writer.claimDue({ owner: 'w1', now: Date.now(), leaseMs: 60_000, limit: 1, lane: 'first', endpointLimit: 10 });
    await writer.recordAttempts([{
      attempt: { id: 'att_1', deliveryId: id, attemptNo: 1, startedAt: T0, durationMs: 1, statusCode: 500, success: false, errorKind: 'http_status', errorMessage: 'HTTP 500', requestHeaders: {}, responseHeaders: null, responseBody: null, responseTruncated: false },
      owner: 'w1', status: 'failed', nextAttemptAt: null, error: 'HTTP 500', disableWebhook: null, webhookId: 'unused',
    }]);
    expect(await writer.redeliver(ids.acc, id)).toBe(true);
    await waitFor(() => heard.length === 2, 2000, 5);
    expect((await claim())?.id).toBe(id);
    await writer.releaseLeases([id], 'someone-else'); // changes nothing: no notification
    await writer.releaseLeases([id], 'w1');
    await waitFor(() => heard.length === 3, 2000, 5);
    await sleep(50);
    expect(heard).toEqual(['first', 'retry', null]);
  });

  it('after its connection is killed it reconnects, says so, and hears again', async () => {
    const [{ pid }] = await writer.q.all<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'herald-listen' AND datname = current_database()");
    await writer.q.all('SELECT pg_terminate_backend(?)', [pid]);
    await waitFor(() => errors.length >= 1 && heard.includes(null), 5000, 5); // reported, then listening again
    heard.length = 0;
    await writer.publishMany([input(ids.acc)]);
    await waitFor(() => heard.length === 1, 2000, 5);
    expect(heard).toEqual(['first']);
  });

  it('unsubscribing stops the calls and closes the listening connection', async () => {
    off();
    await waitFor(async () => (await writer.q.all("SELECT 1 FROM pg_stat_activity WHERE application_name = 'herald-listen' AND datname = current_database()")).length === 0, 2000, 10);
    await writer.publishMany([input(ids.acc)]);
    await sleep(200);
    expect(heard).toEqual([]);
  });
});
