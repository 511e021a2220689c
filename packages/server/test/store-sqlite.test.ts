import { describe, expect, it } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteExecutor } from '../src/store/sqlite/sqlite-executor.js';
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

  it('relaxed transactions commit at synchronous=NORMAL; every other write gets FULL back first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sync-'));
    const q = new SqliteExecutor(join(dir, 'h.db'), { synchronous: 'full' });
    try {
      await migrate(q);
      const level = (): number => q.db.pragma('synchronous', { simple: true }) as number; // 1 NORMAL, 2 FULL
      let inside = 0;
      expect(level()).toBe(2);
      await q.tx(async () => void (inside = level()), { relaxed: true });
      expect(inside).toBe(1);
      // Reads between relaxed transactions leave it relaxed (a drain never switches)…
      await q.all('SELECT 1');
      expect(level()).toBe(1);
      await q.tx(async () => void (inside = level()), { relaxed: true });
      expect(inside).toBe(1);
      // …and each kind of durable write restores FULL before it runs.
      const writes: Array<() => Promise<unknown>> = [
        () => q.tx(async (t) => void (inside = level(), t)),
        () => q.run("INSERT INTO cluster_jobs (name, next_run_at, owner) VALUES ('t1', 0, NULL)"),
        () => q.all("INSERT INTO cluster_jobs (name, next_run_at, owner) VALUES ('t2', 0, NULL) RETURNING name"),
        () => q.exec("INSERT INTO cluster_jobs (name, next_run_at, owner) VALUES ('t3', 0, NULL)"),
      ];
      for (const [i, write] of writes.entries()) {
        await q.tx(async () => {}, { relaxed: true });
        expect(level()).toBe(1);
        inside = 0;
        await write();
        expect(level(), `write ${i}`).toBe(2);
        if (i === 0) expect(inside).toBe(2);
      }
    } finally {
      await q.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
