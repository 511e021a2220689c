import { afterEach, describe, expect, it } from 'vitest';
import { AccountCache } from '../src/api/account-cache.js';
import type { Account } from '../src/core/types.js';
import { migrate } from '../src/store/migrate.js';
import type { Store } from '../src/store/store.js';
import { freshSqlite, type TestDatabase } from './helpers/db.js';

/** The accounts publishing reads (api/account-cache.ts), on a real SQLite store. */
describe('account cache', () => {
  let db: TestDatabase | null = null;
  afterEach(async () => {
    await db?.drop();
    db = null;
  });
  async function store(): Promise<Store> {
    db = await freshSqlite();
    const s = await db.open();
    await migrate(s.q);
    return s;
  }

  it('serves a second read from memory until the entry expires', async () => {
    const s = await store();
    const acc = await s.createAccount('Acme', 'pro');
    const cache = new AccountCache(s, 200);
    expect((await cache.get(acc.id))!.plan).toBe('pro');
    await s.updateAccount(acc.id, { plan: 'free' }); // as another process would, without invalidating
    expect((await cache.get(acc.id))!.plan).toBe('pro');
    await new Promise((r) => setTimeout(r, 250));
    expect((await cache.get(acc.id))!.plan).toBe('free');
  });

  it('never caches a missing account, so one created a moment later is found', async () => {
    const s = await store();
    const cache = new AccountCache(s, 60_000);
    expect(await cache.get('acc_00000000000000000000000000')).toBeNull();
    const acc = await s.createAccount('Acme', 'pro');
    expect(await cache.get(acc.id)).not.toBeNull();
  });

  it('keeps nothing from a read that an invalidation overtook', async () => {
    const s = await store();
    const acc = await s.createAccount('Acme', 'pro');
    const cache = new AccountCache(s, 60_000);
    // The first read gets its row (plan pro), then is held up before it returns; meanwhile the
    // plan changes and the change invalidates the cache, as the PATCH route does.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const read = s.getAccount.bind(s);
    let first = true;
    s.getAccount = async (id: string): Promise<Account | null> => {
      const a = await read(id);
      if (first) {
        first = false;
        await gate;
      }
      return a;
    };
    const slow = cache.get(acc.id);
    await s.updateAccount(acc.id, { plan: 'free' });
    cache.invalidate(acc.id);
    release();
    expect((await slow)!.plan).toBe('pro'); // what was true when it was read
    expect((await cache.get(acc.id))!.plan).toBe('free');
  });

  it('holds at most maxEntries accounts, dropping the oldest', async () => {
    const s = await store();
    const a = await s.createAccount('A', 'pro');
    const b = await s.createAccount('B', 'pro');
    const c = await s.createAccount('C', 'pro');
    const cache = new AccountCache(s, 60_000, 2);
    for (const x of [a, b, c]) await cache.get(x.id);
    // As another process would: only the entry dropped for room is read again.
    for (const x of [a, b, c]) await s.updateAccount(x.id, { plan: 'enterprise' });
    expect((await cache.get(a.id))!.plan).toBe('enterprise');
    expect((await cache.get(c.id))!.plan).toBe('pro');
  });
});
