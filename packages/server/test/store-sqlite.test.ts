import { describe, expect, it, vi } from 'vitest';
import { migrate } from '../src/store/migrate.js';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
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

  it('checkpoints on its own thread once started: commits stop checkpointing, and the WAL is copied back and reused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-ckpt-'));
    const path = join(dir, 'h.db');
    const q = new SqliteExecutor(path, { synchronous: 'normal', checkpointThread: { afterTx: 3, options: { everyMs: 60_000, restartFrames: 20_000 } } });
    try {
      await q.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      const autoPages = (): number => q.db.pragma('wal_autocheckpoint', { simple: true }) as number;
      const fill = async (rows: number): Promise<void> => {
        await q.tx(async (t) => {
          for (let i = 0; i < rows; i++) await t.run('INSERT INTO t (v) VALUES (?)', ['x'.repeat(2000)]);
        });
      };
      await fill(1);
      await fill(1);
      expect(q.checkpointer).toBeNull();
      expect(autoPages()).toBe(1000);
      await fill(1); // the third transaction starts the thread
      expect(q.checkpointer).not.toBeNull();
      expect(autoPages()).toBe(0);
      // 3,000 rows of 2 kB: about 1,500 pages, past SQLite's 1,000-page automatic checkpoint,
      // which no longer runs in a commit: the WAL keeps every frame until the thread copies them.
      await fill(3000);
      const walPages = statSync(`${path}-wal`).size / 4096;
      expect(walPages).toBeGreaterThan(1200);
      // Nothing was copied into the database file by the commit (SQLite's own checkpoint would have).
      expect(statSync(path).size).toBeLessThan(1024 * 1024);
      const next = q.checkpointer!.next();
      q.checkpointer!.nudge();
      const r = await next;
      expect(r?.error).toBeUndefined();
      expect(r!.log).toBeGreaterThan(1200);
      expect(r!.checkpointed).toBe(r!.log); // all of it copied into the database file…
      expect(statSync(path).size).toBeGreaterThan(5 * 1024 * 1024); // …which now holds the 6 MB
      // Copied back, the WAL starts over: the next commits write at its start, so it does not grow.
      const before = statSync(`${path}-wal`).size;
      await fill(10);
      expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(before);
      const [{ c }] = await q.all<{ c: number }>('SELECT COUNT(*) AS c FROM t');
      expect(c).toBe(3013);
    } finally {
      await q.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('goes back to checkpointing in commits if the thread stops', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-ckpt-'));
    const q = new SqliteExecutor(join(dir, 'h.db'), { synchronous: 'normal', checkpointThread: { afterTx: 1 } });
    try {
      await q.tx(async (t) => void (await t.run('CREATE TABLE t (id INTEGER PRIMARY KEY)')));
      expect(q.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      const lost = new Promise<void>((resolve) => {
        const prev = q.checkpointer!.onLost!;
        q.checkpointer!.onLost = () => (prev(), resolve());
      });
      await q.checkpointer!.kill();
      await lost;
      expect(q.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    } finally {
      await q.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a syncAfter transaction commits without SQLite\'s fsync, fsyncs the WAL itself, and holds the executor until then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sync-after-'));
    const probe = await open(join(dir, 'probe'), 'w');
    const FileHandleProto = Object.getPrototypeOf(probe) as { datasync(): Promise<void>; stat(): Promise<{ ino: number }> };
    await probe.close();
    const realDatasync = FileHandleProto.datasync;
    const order: string[] = [];
    const fullPath = join(dir, 'full.db');
    let other: Database.Database | null = null;
    // Observed, still the real call: which file, and whether the commit was already in it.
    const syncs = vi.spyOn(FileHandleProto, 'datasync').mockImplementation(async function (this: { stat(): Promise<{ ino: number }> }) {
      const { ino } = await this.stat();
      const [{ c }] = other!.prepare('SELECT COUNT(*) AS c FROM t').all() as Array<{ c: number }>;
      order.push(`sync ${ino === statSync(`${fullPath}-wal`).ino ? 'the WAL' : 'another file'} with ${c} row(s) committed`);
      await realDatasync.call(this);
    });
    const full = new SqliteExecutor(fullPath, { synchronous: 'full' });
    const normal = new SqliteExecutor(join(dir, 'normal.db'), { synchronous: 'normal' });
    try {
      for (const q of [full, normal]) await q.exec('CREATE TABLE t (v INTEGER)');
      other = new Database(fullPath, { readonly: true }); // another connection, as a reader
      const level = (q: SqliteExecutor): number => q.db.pragma('synchronous', { simple: true }) as number;
      let inside = 0;
      syncs.mockClear();
      let read: Promise<Array<{ c: number }>> | null = null;
      await full.tx(async (t) => {
        inside = level(full);
        await t.run('INSERT INTO t (v) VALUES (1)');
        // Another request's read, arriving while the transaction runs: it waits for the executor.
        read = full.all<{ c: number }>('SELECT COUNT(*) AS c FROM t').then((r) => (order.push('read'), r));
      }, { syncAfter: true });
      await read;
      expect(inside).toBe(1); // NORMAL: SQLite itself does not fsync this commit…
      expect(syncs).toHaveBeenCalledTimes(1); // …Herald fsyncs the WAL, after the commit…
      expect(order).toEqual(['sync the WAL with 1 row(s) committed', 'read']); // …before anything else of this process runs
      expect((await read!)[0]!.c).toBe(1);
      // The next durable write gets FULL back.
      await full.tx(async () => void (inside = level(full)));
      expect(inside).toBe(2);
      // Where the configured durability is `normal`, there is nothing to wait for.
      syncs.mockClear();
      await normal.tx(async (t) => void (await t.run('INSERT INTO t (v) VALUES (1)')), { syncAfter: true });
      expect(syncs).not.toHaveBeenCalled();
    } finally {
      syncs.mockRestore();
      other?.close();
      await full.close();
      await normal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('after the disk fails a WAL sync, the publish fails and so does every later statement', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sync-fail-'));
    const probe = await open(join(dir, 'probe'), 'w');
    const FileHandleProto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const q = new SqliteExecutor(join(dir, 'h.db'), { synchronous: 'full' });
    const syncs = vi.spyOn(FileHandleProto, 'datasync');
    try {
      await q.exec('CREATE TABLE t (v INTEGER)');
      syncs.mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      await expect(q.tx(async (t) => void (await t.run('INSERT INTO t (v) VALUES (1)')), { syncAfter: true })).rejects.toThrow(/disk failed to sync.*EIO/);
      // Later syncs would be reported fine whether or not the data got there: nothing goes on.
      await expect(q.all('SELECT COUNT(*) AS c FROM t')).rejects.toThrow(/restart Herald/);
      await expect(q.run('INSERT INTO t (v) VALUES (2)')).rejects.toThrow(/restart Herald/);
      await expect(q.tx(async () => 1, { relaxed: true })).rejects.toThrow(/restart Herald/);
    } finally {
      syncs.mockRestore();
      await q.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
