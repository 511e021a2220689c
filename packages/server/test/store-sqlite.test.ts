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
  it("waits for another process's write lock without stopping the event loop, and fails with SQLITE_BUSY past its wait", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-busy-'));
    const holder = new SqliteExecutor(join(dir, 'h.db'), { synchronous: 'normal' }); // stands in for another process
    const q = new SqliteExecutor(join(dir, 'h.db'), { synchronous: 'normal', busyWaitMs: 2000 });
    const ticks = { n: 0 };
    const timer = setInterval(() => ticks.n++, 5);
    try {
      await migrate(holder);
      const insert = (name: string) => (t: { run: SqliteExecutor['run'] }) => t.run('INSERT INTO cluster_jobs (name, next_run_at, owner) VALUES (?, 0, NULL)', [name]);
      // Released after 150 ms, by this same process's event loop: SQLite's own busy wait, which
      // blocks the loop, could never see it released.
      holder.db.exec('BEGIN IMMEDIATE');
      setTimeout(() => holder.db.exec('COMMIT'), 150);
      await expect(q.tx(async (t) => (await insert('a')(t), 'began'))).resolves.toBe('began');
      expect(ticks.n).toBeGreaterThan(5); // timers ran while it waited
      // Held past the wait: SQLITE_BUSY, for a transaction and for a write outside one.
      holder.db.exec('BEGIN IMMEDIATE');
      await expect(q.tx(async () => 1)).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
      await expect(insert('b')(q)).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
      // Transactions queued behind one that waits share its wait instead of each waiting as
      // long again, and a read (WAL lets it through) is not held up by them.
      const ended: number[] = [];
      const queuedAt = Date.now();
      const queued = [1, 2, 3].map(() => q.tx(async () => 0).catch(() => void ended.push(Date.now())));
      await expect(q.all('SELECT COUNT(*) AS n FROM cluster_jobs')).resolves.toEqual([{ n: 1 }]);
      expect(ended).toHaveLength(0); // the read came back while all three still waited
      await Promise.all(queued);
      expect(Math.max(...ended) - Math.min(...ended)).toBeLessThan(1000); // not 2 s apart each
      expect(Math.min(...ended) - queuedAt).toBeGreaterThanOrEqual(1500); // but they did wait
      holder.db.exec('COMMIT');
      // And the executor is usable afterwards.
      await expect(q.tx(async (t) => (await insert('c')(t), 3))).resolves.toBe(3);
      expect(await q.all<{ name: string }>('SELECT name FROM cluster_jobs ORDER BY name')).toEqual([{ name: 'a' }, { name: 'c' }]);
    } finally {
      clearInterval(timer);
      await q.close();
      await holder.close();
      rmSync(dir, { recursive: true, force: true });
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
