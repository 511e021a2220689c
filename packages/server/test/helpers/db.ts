import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';

/**
 * Real databases for tests, never mocks: a fresh SQLite file in a temp dir, or a fresh
 * throwaway PostgreSQL database (`herald_test_<random>`) created on the server named by
 * HERALD_TEST_DATABASE_URL (else the local default) and dropped afterwards.
 */
export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly kind: 'sqlite' | 'postgres';
  /** A HERALD_DATABASE_URL value for this database. */
  readonly url: string;
  /** A new Store with its own connection (SQLite) or pool (PostgreSQL), like another process. Not migrated. */
  open(opts?: { poolSize?: number }): Promise<Store>;
  /**
   * Empty every table but schema_migrations, keeping the built-in event types the migrations
   * seeded, so one migrated database can serve a whole suite: creating a PostgreSQL database
   * per test costs 0.1–0.5 s, emptying one a few ms.
   */
  reset(): Promise<void>;
  /** Close every Store opened here and delete the database. */
  drop(): Promise<void>;
}

/** The reset shared by both kinds: the table list comes from the catalog, so new tables are covered. */
function resetter(kind: 'sqlite' | 'postgres', open: () => Promise<Store>): () => Promise<void> {
  let own: Promise<Store> | undefined;
  return async () => {
    const q = (await (own ??= open())).q;
    const tables = (
      await q.all<{ name: string }>(
        kind === 'sqlite'
          ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
          : 'SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()',
      )
    )
      .map((r) => r.name)
      .filter((t) => t !== 'schema_migrations' && t !== 'event_types');
    // DELETE, not TRUNCATE: on tables this small it takes ~2 ms against TRUNCATE's ~60 ms.
    // A delete refused by a foreign key is retried after the tables that reference it are empty.
    for (let left = tables; left.length; ) {
      const refused: string[] = [];
      for (const t of left) await q.run(`DELETE FROM ${t}`).catch(() => refused.push(t));
      if (refused.length === left.length) throw new Error(`reset: cannot empty ${refused.join(', ')}`);
      left = refused;
    }
    await q.run('DELETE FROM event_types WHERE builtin = 0');
  };
}

export async function freshSqlite(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-test-'));
  const path = join(dir, 'herald.db');
  const opened: Store[] = [];
  const open = async () => {
    // `normal` skips the fsync per commit: tests need isolation, not power-loss durability.
    const s = await openStore({ db: { kind: 'sqlite', path }, sqliteSynchronous: 'normal', dbPoolSize: 1 });
    opened.push(s);
    return s;
  };
  return {
    kind: 'sqlite',
    url: `sqlite:${path}`,
    open,
    reset: resetter('sqlite', open),
    async drop() {
      await Promise.all(opened.map((s) => s.close().catch(() => {})));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The server to create test databases on, or null when none answers. An explicitly set
 * HERALD_TEST_DATABASE_URL that does not answer is an error, not a skip: CI sets it so that
 * a broken PostgreSQL fails the run instead of silently testing SQLite only. `none` skips
 * PostgreSQL without trying (scripts/test.mjs sets it after one failed probe).
 */
export async function postgresAdminUrl(): Promise<string | null> {
  const explicit = process.env.HERALD_TEST_DATABASE_URL;
  if (explicit === 'none') return null;
  const url = explicit || DEFAULT_PG_URL;
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return url;
  } catch (e) {
    if (explicit) throw new Error(`HERALD_TEST_DATABASE_URL is set but PostgreSQL is not reachable at ${redact(url)}: ${(e as Error).message}`);
    return null;
  } finally {
    await c.end().catch(() => {});
  }
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable url>';
  }
}

/** Test databases are named `herald_test_<creation time, base 36 ms>_<random>`. */
const TEST_DB_PREFIX = 'herald_test_';

export async function freshPostgres(adminUrl: string): Promise<TestDatabase> {
  const name = `${TEST_DB_PREFIX}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  // scripts/test.mjs drops whatever a test forgot (one that never calls close()) after the run.
  if (process.env.HERALD_TEST_DB_REGISTRY) appendFileSync(process.env.HERALD_TEST_DB_REGISTRY, `${name}\n`);
  // FILE_COPY: creating costs about the same as the default WAL_LOG, but dropping is ~5×
  // cheaper (60 against 350 ms here), and the API suites create one database per Herald.
  // PostgreSQL before 15 has no STRATEGY and gets the plain statement.
  await adminQuery(adminUrl, `CREATE DATABASE ${name} STRATEGY FILE_COPY`).catch(async (e: { code?: string }) => {
    if (e.code !== '42601' && e.code !== '42704') throw e; // syntax error / unknown option
    await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  });
  // Throwaway data needs no flush per commit; this halves the time of a test on a slow disk.
  await adminQuery(adminUrl, `ALTER DATABASE ${name} SET synchronous_commit = off`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const opened: Store[] = [];
  const open = async (opts?: { poolSize?: number }) => {
    const s = await openStore({ db: { kind: 'postgres', url }, sqliteSynchronous: 'normal', dbPoolSize: opts?.poolSize ?? 4 });
    opened.push(s);
    return s;
  };
  return {
    kind: 'postgres',
    url,
    open,
    reset: resetter('postgres', () => open({ poolSize: 1 })),
    async drop() {
      await Promise.all(opened.map((s) => s.close().catch(() => {})));
      // FORCE: a test that failed mid-way may have left a connection open.
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * Drop test databases created more than `olderThanMs` ago: what a killed test run left
 * behind. Younger ones may belong to a run in progress (other engineers, other CI jobs on
 * the same server) and are left alone. Returns the names dropped.
 */
export async function dropStaleTestDatabases(adminUrl: string, olderThanMs = 60 * 60 * 1000): Promise<string[]> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    const { rows } = await c.query<{ datname: string; sessions: number }>(
      `SELECT d.datname, (SELECT COUNT(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::int AS sessions
         FROM pg_database d WHERE d.datname LIKE $1`,
      [`${TEST_DB_PREFIX.replaceAll('_', '\\_')}%`],
    );
    const dropped: string[] = [];
    for (const { datname, sessions } of rows) {
      const parts = datname.slice(TEST_DB_PREFIX.length).split('_');
      const born = parts.length === 2 ? parseInt(parts[0]!, 36) : NaN;
      // A name without a time (an older helper's) is dropped only when nobody is connected.
      const stale = Number.isFinite(born) ? Date.now() - born >= olderThanMs : sessions === 0;
      if (!stale) continue;
      await c.query(`DROP DATABASE IF EXISTS "${datname.replaceAll('"', '""')}" WITH (FORCE)`);
      dropped.push(datname);
    }
    return dropped;
  } finally {
    await c.end();
  }
}
