import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Publisher } from '../src/api/publisher.js';
import { migrate } from '../src/store/migrate.js';
import type { PublishInput, Store } from '../src/store/store.js';
import { freshSqlite, type TestDatabase } from './helpers/db.js';

/**
 * The group commit while the database is slow: what waits for it is bounded (events and
 * characters of data), past that publishing is refused with `unavailable` (503) and nothing of
 * the refused event is stored, and what was taken is stored once the database answers. The
 * database is made slow for real: a second connection holds SQLite's write lock.
 */
describe('publishing while the database is slow', () => {
  let db: TestDatabase;
  let s: Store;
  let acc: string;
  let blocker: Database.Database | null = null;
  const input = (data: string): PublishInput => ({ accountId: acc, type: 'content.generated', data, idempotencyKey: null, now: Date.now() });
  /** The data of the events stored, sorted (ids made in the same millisecond need not sort in publish order). */
  const stored = async () => (await s.q.all<{ data: string }>('SELECT data FROM events')).map((r) => r.data).sort();
  const lock = () => {
    blocker = new Database(db.url.slice('sqlite:'.length));
    blocker.exec('BEGIN IMMEDIATE');
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Whether a promise has settled yet. */
  const settled = (p: Promise<unknown>) => {
    let done = false;
    p.then(() => (done = true), () => (done = true));
    return () => done;
  };
  const unlock = () => {
    blocker?.exec('COMMIT');
    blocker?.close();
    blocker = null;
  };

  beforeAll(async () => {
    db = await freshSqlite();
    s = await db.open();
    await migrate(s.q);
  });
  afterAll(async () => {
    unlock();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.reset();
    acc = (await s.createAccount('Acme', 'pro')).id;
  });

  it('refuses events past the number that may wait, and stores those it took once the database answers', async () => {
    let refused = 0;
    const p = new Publisher(s, () => {}, null, { events: 3, chars: 1_000_000 }, () => refused++);
    lock();
    const taken = ['{"i":0}', '{"i":1}', '{"i":2}'].map((d) => p.publish(input(d)));
    const done = taken.map(settled);
    await sleep(100); // the group commit has started and waits for the lock
    expect(done.map((d) => d())).toEqual([false, false, false]);
    await expect(p.publish(input('{"i":3}'))).rejects.toMatchObject({ code: 'unavailable', statusCode: 503 });
    expect(refused).toBe(1);
    expect(p.waiting).toBe(3);
    expect(await stored()).toEqual([]);
    unlock();
    expect((await Promise.all(taken)).map((r) => r.event.data)).toEqual(['{"i":0}', '{"i":1}', '{"i":2}']);
    expect(p.waiting).toBe(0);
    // Room again.
    await p.publish(input('{"i":4}'));
    expect(await stored()).toEqual(['{"i":0}', '{"i":1}', '{"i":2}', '{"i":4}']);
  });

  it('refuses an event whose data would pass the characters that may wait, and takes one of any size when nothing waits', async () => {
    const p = new Publisher(s, () => {}, null, { events: 100, chars: 100 });
    const sized = (n: number) => `"${'x'.repeat(n - 2)}"`;
    lock();
    const first = p.publish(input(sized(60)));
    await sleep(100);
    expect(p.waiting).toBe(1);
    await expect(p.publish(input(sized(60)))).rejects.toMatchObject({ code: 'unavailable' });
    const small = p.publish(input(sized(40))); // 60 + 40: still within 100
    await sleep(50);
    expect(p.waiting).toBe(2);
    unlock();
    await Promise.all([first, small]);
    // Nothing waits: a single event larger than the budget still goes.
    await p.publish(input(sized(500)));
    expect((await stored()).map((d) => d.length).sort((a, b) => a - b)).toEqual([40, 60, 500]);
  });
});
