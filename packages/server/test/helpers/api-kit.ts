import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { expect } from 'vitest';
import type { TestHerald } from './herald.js';

/**
 * Helpers for the HTTP API tests: API keys, the error shape, and grey-box looks at the SQLite
 * file behind a test Herald (row counts, raw bytes), so "nothing stored" and "encrypted at rest"
 * are checked on the database itself rather than through the API that might hide them.
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

function dbPath(h: TestHerald): string {
  if (h.config.db.kind !== 'sqlite') throw new Error('these helpers read the SQLite file');
  return h.config.db.path;
}

/** Reads the database through a second, read-only connection, as another process would. */
export function query<T = Record<string, unknown>>(h: TestHerald, sql: string, ...params: unknown[]): T[] {
  const db = new Database(dbPath(h), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

export function count(h: TestHerald, table: string, where = '1 = 1', ...params: unknown[]): number {
  return query<{ c: number }>(h, `SELECT COUNT(*) AS c FROM ${table} WHERE ${where}`, ...params)[0]!.c;
}

const TABLES = ['accounts', 'api_keys', 'event_types', 'webhooks', 'events', 'deliveries', 'attempts'] as const;

/** Row counts of every table that a refused request must leave alone. */
export function snapshotCounts(h: TestHerald): Record<(typeof TABLES)[number], number> {
  return Object.fromEntries(TABLES.map((t) => [t, count(h, t)])) as Record<(typeof TABLES)[number], number>;
}

/**
 * Every byte the database has on disk: the main file plus the WAL (recent commits live there
 * until a checkpoint, so reading only `herald.db` could miss a plaintext written a moment ago).
 */
export function rawDatabaseBytes(h: TestHerald): Buffer {
  const path = dbPath(h);
  const dir = dirname(path);
  const files = readdirSync(dir).filter((f) => f.startsWith(basename(path)));
  return Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
}

/** True when `needle` appears in the database files as UTF-8 (and, for good measure, UTF-16LE). */
export function databaseContains(h: TestHerald, needle: string): boolean {
  const bytes = rawDatabaseBytes(h);
  return bytes.includes(Buffer.from(needle, 'utf8')) || bytes.includes(Buffer.from(needle, 'utf16le'));
}
