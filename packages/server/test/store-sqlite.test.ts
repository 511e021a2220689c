import { describe, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import type { SqliteExecutor } from '../src/store/sqlite/sqlite-executor.js';
import { freshSqlite } from './helpers/db.js';
import { runStoreConformance } from './store.conformance.js';

// One process per SQLite file is Herald's embedded mode, so no multi-process races here.
runStoreConformance('sqlite', freshSqlite, { multiProcess: false });

describe('SqliteExecutor', () => {
  it('a transaction that cannot begin (another process holds the write lock) fails and leaves the executor usable', async () => {
    const db = await freshSqlite();
    try {
      const holder = await db.open(); // stands in for another process, e.g. `herald migrate`
      await migrate(holder.q);
      const s = await db.open();
      (s.q as SqliteExecutor).db.pragma('busy_timeout = 50'); // fail fast instead of after 5 s
      (holder.q as SqliteExecutor).db.exec('BEGIN IMMEDIATE');
      await expect(s.q.tx(async () => 1)).rejects.toThrow(/locked|busy/i);
      (holder.q as SqliteExecutor).db.exec('COMMIT');
      await expect(s.q.tx(async () => 2)).resolves.toBe(2);
      await expect(s.ping()).resolves.toBeUndefined();
    } finally {
      await db.drop();
    }
  });
});
