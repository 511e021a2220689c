import { readdirSync, readFileSync } from 'node:fs';
import type { SqlExecutor } from './executor.js';

/**
 * Forward-only numbered SQL migrations, one folder per dialect, in lockstep. Each runs in one
 * transaction under the `migrate` lock, so when several processes start on an empty
 * PostgreSQL database one migrates and the others wait, then find nothing left to do.
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

/** The versions applied, or null where there is no schema_migrations table (or it cannot be read). */
async function appliedVersions(q: SqlExecutor): Promise<number[] | null> {
  try {
    return (await q.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));
  } catch {
    return null;
  }
}

export async function migrate(q: SqlExecutor, migrations = loadMigrations(q.dialect.name)): Promise<{ applied: number[]; version: number }> {
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
  return q.tx(
    async (t) => {
      await t.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
      );
      const rows = await t.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      const done = new Set(rows.map((r) => Number(r.version)));
      const current = rows.length ? Number(rows.at(-1)!.version) : 0;
      if (current > latest) throw new SchemaTooNewError(current, latest);
      const applied: number[] = [];
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await t.exec(m.sql);
        await t.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
        applied.push(m.version);
      }
      return { applied, version: Math.max(current, latest) };
    },
    { lock: 'migrate' },
  );
}
