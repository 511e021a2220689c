import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { expect } from 'vitest';
import { openStore } from '../../src/store/open.js';
import type { SqlExecutor, SqlParam } from '../../src/store/executor.js';
import type { TestHerald } from './herald.js';

/**
 * Helpers for the HTTP API tests: API keys, the error shape, and grey-box looks at the database
 * behind a test Herald (rows, row counts, stored bytes), so "nothing stored" and "encrypted at
 * rest" are checked on the database itself rather than through the API that might hide them.
 * They work on both backends (SQLite, or PostgreSQL with HERALD_TEST_BACKEND=postgres).
 */

/** Creates an API key for the account with the admin token; returns the key as shown once. */
export async function createApiKey(h: TestHerald, accountId: string): Promise<{ id: string; key: string }> {
  const r = await h.api('POST', `/v1/accounts/${accountId}/api-keys`);
  if (r.status !== 201) throw new Error(`create api key: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.id, key: r.body.key };
}

/** Asserts the one error shape of the API and returns the code. */
export function expectError(res: { status: number; body: unknown }, status: number, code: string): void {
  expect({ status: res.status, body: res.body }).toEqual({
    status,
    body: { error: { code, message: expect.any(String) } },
  });
  expect(Object.keys((res.body as { error: object }).error).sort()).toEqual(['code', 'message']);
}

/**
 * Runs `fn` on a Store of its own (a second SQLite connection, or a second PostgreSQL pool), as
 * another process would, never through the Herald's store: there, on SQLite, a statement waits
 * for the open transaction to end (the executor's mutex), so a reply sent before its commit
 * would go unnoticed. A second connection sees only what is committed, on both backends.
 */
async function withReader<T>(h: TestHerald, fn: (q: SqlExecutor) => Promise<T>): Promise<T> {
  const store = await openStore({ db: h.config.db, sqliteSynchronous: h.config.sqliteSynchronous, dbPoolSize: 1 });
  try {
    return await fn(store.q);
  } finally {
    await store.close();
  }
}

/** Rows of `sql` (`?` placeholders on both backends), read as another process would. */
export async function query<T = Record<string, unknown>>(h: TestHerald, sql: string, ...params: SqlParam[]): Promise<T[]> {
  return withReader(h, (q) => q.all<T>(sql, params));
}

// PostgreSQL's COUNT(*) is a bigint: a string unless the driver parses it, hence Number().
const countSql = (table: string, where = '1 = 1') => `SELECT COUNT(*) AS c FROM ${table} WHERE ${where}`;

export async function count(h: TestHerald, table: string, where = '1 = 1', ...params: SqlParam[]): Promise<number> {
  const [row] = await query<{ c: number | string }>(h, countSql(table, where), ...params);
  return Number(row!.c);
}

const TABLES = ['accounts', 'api_keys', 'event_types', 'webhooks', 'events', 'deliveries', 'attempts', 'audit_events'] as const;

/** Row counts of every table that a refused request must leave alone, read in one go. */
export async function snapshotCounts(h: TestHerald): Promise<Record<(typeof TABLES)[number], number>> {
  return withReader(h, async (q) => {
    const out = {} as Record<(typeof TABLES)[number], number>;
    for (const t of TABLES) out[t] = Number((await q.all<{ c: number | string }>(countSql(t)))[0]!.c);
    return out;
  });
}

/**
 * SQLite only: every byte the database has on disk, the main file plus the WAL (recent commits
 * live there until a checkpoint, so reading only `herald.db` could miss a plaintext written a
 * moment ago).
 */
export function rawDatabaseBytes(h: TestHerald): Buffer {
  if (h.config.db.kind !== 'sqlite') throw new Error('rawDatabaseBytes reads the SQLite file');
  const path = h.config.db.path;
  const dir = dirname(path);
  const files = readdirSync(dir).filter((f) => f.startsWith(basename(path)));
  return Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * True when `needle` is stored in the database.
 * - SQLite: searched in the raw bytes of the database files (main file and WAL, see
 *   rawDatabaseBytes) as UTF-8 and, for good measure, UTF-16LE: whatever any table, index or
 *   page not yet overwritten holds.
 * - PostgreSQL: its files belong to the server, so the search reads what the database holds
 *   instead: every value of every column of every table of the current schema (taken from the
 *   catalog, so tables added later are covered), text as stored and anything else cast to text,
 *   bytea compared as bytes with the UTF-8 needle. Not searched: the server's WAL and logs.
 */
export async function databaseContains(h: TestHerald, needle: string): Promise<boolean> {
  if (h.config.db.kind === 'sqlite') {
    const bytes = rawDatabaseBytes(h);
    return bytes.includes(Buffer.from(needle, 'utf8')) || bytes.includes(Buffer.from(needle, 'utf16le'));
  }
  return withReader(h, async (q) => {
    const columns = await q.all<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT c.table_name, c.column_name, c.data_type
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
        ORDER BY c.table_name, c.ordinal_position`,
    );
    const byTable = new Map<string, typeof columns>();
    for (const c of columns) byTable.set(c.table_name, [...(byTable.get(c.table_name) ?? []), c]);
    if (!byTable.size) throw new Error('databaseContains: no tables in the current schema');
    for (const [table, cols] of byTable) {
      // strpos on the value's text, not on a row cast to text: a record's text form quotes and
      // escapes its fields, and a needle with a quote or backslash would no longer match.
      const tests = cols.map((c) =>
        c.data_type === 'bytea' ? `position(convert_to(?, 'UTF8') IN ${quoteIdent(c.column_name)}) > 0` : `strpos(${quoteIdent(c.column_name)}::text, ?) > 0`,
      );
      const found = await q.all(`SELECT 1 AS hit FROM ${quoteIdent(table)} WHERE ${tests.join(' OR ')} LIMIT 1`, cols.map(() => needle));
      if (found.length) return true;
    }
    return false;
  });
}
