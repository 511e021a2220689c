import { mkdtempSync, rmSync } from 'node:fs';
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
  /** Close every Store opened here and delete the database. */
  drop(): Promise<void>;
}

export async function freshSqlite(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-test-'));
  const path = join(dir, 'herald.db');
  const opened: Store[] = [];
  return {
    kind: 'sqlite',
    url: `sqlite:${path}`,
    async open() {
      // `normal` skips the fsync per commit: tests need isolation, not power-loss durability.
      const s = await openStore({ db: { kind: 'sqlite', path }, sqliteSynchronous: 'normal', dbPoolSize: 1 });
      opened.push(s);
      return s;
    },
    async drop() {
      await Promise.all(opened.map((s) => s.close().catch(() => {})));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The server to create test databases on, or null when none answers. An explicitly set
 * HERALD_TEST_DATABASE_URL that does not answer is an error, not a skip: CI sets it so that
 * a broken PostgreSQL fails the run instead of silently testing SQLite only.
 */
export async function postgresAdminUrl(): Promise<string | null> {
  const explicit = process.env.HERALD_TEST_DATABASE_URL;
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

export async function freshPostgres(adminUrl: string): Promise<TestDatabase> {
  const name = `herald_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const opened: Store[] = [];
  return {
    kind: 'postgres',
    url,
    async open(opts) {
      const s = await openStore({ db: { kind: 'postgres', url }, sqliteSynchronous: 'normal', dbPoolSize: opts?.poolSize ?? 4 });
      opened.push(s);
      return s;
    },
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
