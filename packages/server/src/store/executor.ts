/**
 * The one port between the store and a database: run SQL with `?` placeholders, inside or
 * outside a transaction. Each dialect is a small adapter behind it (sqlite/, postgres/);
 * everything else in the store is shared SQL, so both backends run the same queries.
 */
/** Cluster-wide locks, one per kind of work that must not run twice at once. */
export type TxLock = 'migrate' | 'claim';

export type SqlParam = string | number | null | boolean | string[];

export interface SqlExecutor {
  readonly dialect: Dialect;
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  run(sql: string, params?: readonly SqlParam[]): Promise<{ changes: number }>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Run `fn` in one transaction. `fn` must do all its database work through the executor it
   * receives. `lock` takes a cluster-wide lock for the whole transaction (a PostgreSQL
   * advisory lock; SQLite write transactions are exclusive anyway).
   */
  tx<T>(fn: (q: SqlExecutor) => Promise<T>, opts?: { lock?: TxLock }): Promise<T>;
  close(): Promise<void>;
}

/** The few places where SQLite and PostgreSQL SQL differ. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** `col IN (list)` with the whole list as one parameter, so the statement text never varies. */
  inList(column: string): string;
  listParam(values: string[]): SqlParam;
  /** Appended to the candidate query of a claim. */
  readonly skipLocked: string;
  /** A UNIQUE or PRIMARY KEY violation: lets the store retry a transaction that lost a race. */
  isUniqueViolation(err: unknown): boolean;
}

const insertCache = new Map<string, string>();

/** Multi-row INSERT in chunks; statement texts are cached per row count so they are prepared once. */
export async function insertMany(
  q: SqlExecutor,
  table: string,
  columns: readonly string[],
  rows: readonly SqlParam[][],
  chunk = 100,
): Promise<void> {
  for (let i = 0; i < rows.length; i += chunk) {
    const part = rows.slice(i, i + chunk);
    const key = `${table}|${columns.join(',')}|${part.length}`;
    let sql = insertCache.get(key);
    if (!sql) {
      const one = `(${columns.map(() => '?').join(',')})`;
      sql = `INSERT INTO ${table} (${columns.join(',')}) VALUES ${Array(part.length).fill(one).join(',')}`;
      insertCache.set(key, sql);
    }
    await q.run(sql, part.flat());
  }
}
