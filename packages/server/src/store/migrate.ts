import { readdirSync, readFileSync } from 'node:fs';
import type { SqlExecutor } from './executor.js';

/**
 * Forward-only numbered SQL migrations, one folder per dialect, in lockstep. Each runs in a
 * transaction of its own under the `migrate` lock, so when several processes start on an
 * empty PostgreSQL database they take turns and each finds what the others applied; on
 * PostgreSQL a migration waits a bounded time for table locks (MigrateOptions).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dialect: 'sqlite' | 'postgres'): Migration[] {
  const dir = new URL(`./migrations/${dialect}/`, import.meta.url);
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.slice(5, -4), sql: readFileSync(new URL(f, dir), 'utf8') }));
}

export class SchemaTooNewError extends Error {
  constructor(dbVersion: number, codeVersion: number) {
    super(
      `the database schema is at version ${dbVersion} but this Herald knows versions up to ${codeVersion}: ` +
        `upgrade Herald (a newer release migrated this database) or point HERALD_DATABASE_URL elsewhere`,
    );
    this.name = 'SchemaTooNewError';
  }
}

/** The versions applied, in order. */
async function readVersions(q: SqlExecutor): Promise<number[]> {
  return (await q.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));
}

/** readVersions, or null where there is no schema_migrations table (or it cannot be read). */
const appliedVersions = (q: SqlExecutor): Promise<number[] | null> => readVersions(q).catch(() => null);

export interface MigrateOptions {
  /**
   * PostgreSQL: how long a migration's statement waits for a table lock before its transaction
   * is rolled back and tried again. A DDL statement waiting for a lock (held by a long
   * transaction of a running process) makes every later statement on that table queue behind
   * it: without a bound, publishing and delivery would stop for as long as it waits.
   */
  lockTimeoutMs?: number;
  /** How many times a migration is tried before migrate() gives up and says which. */
  tries?: number;
}

const LOCK_TIMEOUT_MS = 5000;
const LOCK_TRIES = 12;

export async function migrate(q: SqlExecutor, migrations = loadMigrations(q.dialect.name), opts: MigrateOptions = {}): Promise<{ applied: number[]; version: number }> {
  const latest = migrations.at(-1)?.version ?? 0;
  // Nothing to apply: no DDL at all (not even CREATE TABLE IF NOT EXISTS, which PostgreSQL
  // checks against the schema's CREATE privilege first), so processes may run as a role that
  // can only read and write the tables, with `herald migrate` run by the owner ahead of them.
  const before = await appliedVersions(q);
  if (before) {
    const current = before.at(-1) ?? 0;
    if (current > latest) throw new SchemaTooNewError(current, latest);
    const done = new Set(before);
    if (migrations.every((m) => done.has(m.version))) return { applied: [], version: Math.max(current, latest) };
  }
  // One migration per transaction, each under the `migrate` lock and reading afresh what is
  // applied (another process may have applied it meanwhile): locks are held for one
  // migration's statements only, and a failing migration keeps those before it.
  const applied: number[] = [];
  for (;;) {
    const step = await withLockRetries(q, opts, (t) => applyNext(t, migrations));
    if (step.next === null) return { applied, version: Math.max(step.current, latest) };
    applied.push(step.next);
  }
}

/** Applies the first migration not yet applied; `next` is null when there was none. */
async function applyNext(t: SqlExecutor, migrations: Migration[]): Promise<{ next: number | null; current: number }> {
  const latest = migrations.at(-1)?.version ?? 0;
  await t.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  const versions = await readVersions(t);
  const done = new Set(versions);
  const current = versions.at(-1) ?? 0;
  if (current > latest) throw new SchemaTooNewError(current, latest);
  const m = migrations.find((x) => !done.has(x.version));
  if (!m) return { next: null, current };
  await t.exec(m.sql);
  await t.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
  return { next: m.version, current: m.version };
}

/** PostgreSQL's lock_not_available: a statement's lock_timeout ran out. */
const lockTimedOut = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === '55P03';

/**
 * Runs `fn` in a migration transaction whose statements wait at most `lockTimeoutMs` for a
 * lock (PostgreSQL), trying again a while later when one did not come; SQLite's write lock is
 * waited for by its executor.
 */
async function withLockRetries<T>(q: SqlExecutor, opts: MigrateOptions, fn: (t: SqlExecutor) => Promise<T>): Promise<T> {
  const lockTimeoutMs = opts.lockTimeoutMs ?? LOCK_TIMEOUT_MS;
  const tries = opts.tries ?? LOCK_TRIES;
  for (let n = 1; ; n++) {
    try {
      return await q.tx(
        async (t) => {
          if (t.dialect.name === 'postgres') await t.exec(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
          return fn(t);
        },
        { lock: 'migrate' },
      );
    } catch (e) {
      if (!lockTimedOut(e)) throw e;
      if (n >= tries) {
        throw new Error(
          `a migration could not take the table locks it needs (waited ${lockTimeoutMs} ms, ${tries} times): a long transaction holds them; ` +
            'find it in pg_stat_activity, or run `herald migrate` when the database is quieter',
          { cause: e },
        );
      }
      // The lock's holder may be a transaction of a few seconds: give it time to end.
      await new Promise((r) => setTimeout(r, Math.min(lockTimeoutMs, 1000)));
    }
  }
}
