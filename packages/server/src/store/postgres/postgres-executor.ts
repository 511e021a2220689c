import pg from 'pg';
import type { Dialect, SqlExecutor, SqlParam, TxLock } from '../executor.js';

export const postgresDialect: Dialect = {
  name: 'postgres',
  inList: (column) => `${column} = ANY(?::text[])`,
  listParam: (values) => values,
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  isUniqueViolation: (err) => (err as { code?: unknown } | null)?.code === '23505',
};

// BIGINT (epoch ms, counts) as numbers: every value Herald stores fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Advisory lock keys (arbitrary constants, one per TxLock), held for one transaction. */
const LOCK_KEYS: Record<TxLock, number> = { migrate: 72_541_001, claim: 72_541_002 };

const placeholderCache = new Map<string, string>();
/**
 * The store writes `?` placeholders; PostgreSQL wants $1, $2, … A `?` inside a quoted string
 * literal is text, not a placeholder: numbering it would shift every later parameter.
 */
function toPg(sql: string): string {
  let out = placeholderCache.get(sql);
  if (out === undefined) {
    let i = 0;
    out = sql.replace(/'(?:[^']|'')*'|\?/g, (m) => (m === '?' ? `$${++i}` : m));
    placeholderCache.set(sql, out);
  }
  return out;
}

type Queryable = pg.Pool | pg.PoolClient;

/** Booleans as 0/1, as on SQLite: the schema keeps flags in INTEGER columns on both backends. */
const bind = (params: readonly SqlParam[]): unknown[] => params.map((p) => (p === true ? 1 : p === false ? 0 : p));

function executorOn(c: Queryable, self: PostgresExecutor): SqlExecutor {
  return {
    dialect: postgresDialect,
    all: async <T>(sql: string, params: readonly SqlParam[] = []) => (await c.query(toPg(sql), bind(params))).rows as T[],
    run: async (sql: string, params: readonly SqlParam[] = []) => ({ changes: (await c.query(toPg(sql), bind(params))).rowCount ?? 0 }),
    exec: async (sql: string) => void (await c.query(sql)),
    tx: async (fn, opts) => {
      if (!('release' in c)) return self.tx(fn, opts);
      // Already inside a transaction: join it, but still take a requested lock (held to its end).
      if (opts?.lock) await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEYS[opts.lock]]);
      return fn(executorOn(c, self));
    },
    close: async () => {},
  };
}

export class PostgresExecutor implements SqlExecutor {
  readonly dialect = postgresDialect;
  readonly #pool: pg.Pool;
  readonly #direct: SqlExecutor;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
    this.#direct = executorOn(pool, this);
  }

  /** Connection string options (sslmode, sslrootcert, …) pass through to the driver unchanged. */
  static async connect(url: string, opts: { poolSize: number }): Promise<PostgresExecutor> {
    const pool = new pg.Pool({ connectionString: url, max: opts.poolSize });
    // An idle client that errors (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const c = await pool.connect();
    c.release();
    return new PostgresExecutor(pool);
  }

  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.#direct.all<T>(sql, params);
  }
  run(sql: string, params?: readonly SqlParam[]): Promise<{ changes: number }> {
    return this.#direct.run(sql, params);
  }
  exec(sql: string): Promise<void> {
    return this.#direct.exec(sql);
  }

  async tx<T>(fn: (q: SqlExecutor) => Promise<T>, opts?: { lock?: TxLock }): Promise<T> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      if (opts?.lock) await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEYS[opts.lock]]);
      const out = await fn(executorOn(c, this));
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
