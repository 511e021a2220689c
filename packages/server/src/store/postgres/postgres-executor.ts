import pg from 'pg';
import type { Column, Dialect, ListenHandlers, SqlExecutor, SqlParam, TxLock, TxOptions } from '../executor.js';

const PG_TYPES: Record<Column[1], string> = { text: 'text', int: 'int', bigint: 'bigint' };

export const postgresDialect: Dialect = {
  name: 'postgres',
  inList: (column) => `${column} = ANY(?::text[])`,
  listParam: (values) => values,
  // One array parameter per column, whatever the number of rows: no 65535-parameter ceiling,
  // and one statement text that PostgreSQL plans once.
  rows: (columns) => `unnest(${columns.map(([, t]) => `?::${PG_TYPES[t]}[]`).join(', ')}) AS v(${columns.map(([c]) => c).join(', ')})`,
  rowsParams: (columns, rows) =>
    columns.map((_c, i) => rows.map((r) => {
      const p = r[i];
      if (p === true) return 1;
      if (p === false) return 0;
      if (p === undefined || (typeof p === 'object' && p !== null)) throw new TypeError(`rowsParams: column ${i} holds ${typeof p}`);
      return p;
    })),
  // Up to 256 rows and ~4000 parameters a statement: one round trip per few hundred rows, while
  // far bigger statements cost more to parse than the round trips they save. The row cap also
  // bounds the cached statement texts (one per row count) to 256 per table.
  valuesRows: (columns) => Math.max(1, Math.min(256, Math.floor(4000 / columns))),
  lateral: true,
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  // Not FOR UPDATE, which would also block the foreign-key checks of inserts referencing the row.
  forUpdate: ' FOR NO KEY UPDATE',
  // Queued by PostgreSQL and delivered when (and only if) the transaction commits.
  notify: (channel, payload) => {
    if (!/^[a-z_]*$/.test(payload)) throw new Error(`notify: payload must be a plain word, not ${payload}`);
    return `NOTIFY ${channel}, '${payload}'`;
  },
  isUniqueViolation: (err) => (err as { code?: unknown } | null)?.code === '23505',
};

// BIGINT (epoch ms, counts) as numbers: every value Herald stores fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Advisory lock keys (arbitrary constants, one per TxLock), held for one transaction. */
const LOCK_KEYS: Record<TxLock, number> = { migrate: 72_541_001, claim: 72_541_002 };
/**
 * A transaction's opening, in one simple-protocol round trip (the claim lock serialises every
 * worker of the cluster, so each round trip taken while holding it costs cluster throughput):
 * BEGIN; the limits, as SET LOCAL so that they hold behind a transaction-mode pooler too and
 * never outlive the transaction; the lock, whose wait they bound; the commit mode. The limits:
 * statement_timeout (see STATEMENT_TIMEOUT_MS), and idle_in_transaction_session_timeout, so
 * that a session whose client vanished mid-transaction (a dropped connection) gives its locks
 * back, the cluster-wide claim lock among them, instead of holding them until TCP notices.
 * The migration transaction has neither limit.
 */
function beginSql(statementTimeoutMs: number, opts?: TxOptions): string {
  const ms = opts?.lock === 'migrate' ? 0 : statementTimeoutMs;
  const parts = ['BEGIN', `SET LOCAL statement_timeout = ${ms}`, `SET LOCAL idle_in_transaction_session_timeout = ${ms}`];
  if (opts?.lock) parts.push(`SELECT pg_advisory_xact_lock(${LOCK_KEYS[opts.lock]})`);
  if (opts?.relaxed) parts.push('SET LOCAL synchronous_commit = off');
  return parts.join('; ');
}

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

/**
 * The longest any one statement may run. PostgreSQL itself cancels it then (the session's
 * `statement_timeout`), so a statement stuck behind a lock neither commits later, after the
 * caller was told it failed, nor keeps its session busy. Herald's statements take
 * milliseconds; a claim waiting for the cluster-wide claim lock, seconds at worst. The
 * migration transaction has no limit: building an index can take minutes.
 */
export const STATEMENT_TIMEOUT_MS = 30_000; // PostgresExecutor.connect's statementTimeoutMs
/**
 * This process stops waiting a little later than the server would have cancelled the statement
 * (the driver's `query_timeout`): that only happens when the connection went silent (a
 * failover, a NAT that dropped its state: no FIN, no RST), and the work on it then fails
 * instead of wedging the worker, a request or a shutdown for ever.
 */
const silentConnectionMs = (statementTimeoutMs: number): number => statementTimeoutMs + Math.min(5000, statementTimeoutMs);
/** How long to wait for a connection, new or from the busy pool, before failing the work. */
const CONNECT_TIMEOUT_MS = 10_000;
/** The driver reads `query_timeout` from a query's config too; its types do not list it. */
type TimedQuery = pg.QueryConfig & { query_timeout?: number };

const statementNames = new Map<string, string | null>();
/** Statements with more parameters (multi-row inserts, one shape per row count) stay unnamed. */
const MAX_NAMED_PARAMS = 64;
/** `SELECT *` would break a prepared statement when a rolling migration adds a column. */
const STAR = /\b(?:SELECT|RETURNING)\s+\*|\w\.\*/i;
/**
 * The hot statements run as named prepared statements: each connection parses and plans them
 * once instead of at every call (the claim's LATERAL and unnest statements cost PostgreSQL more
 * to plan than to run). One name per distinct text. Left unnamed: statements without
 * parameters; multi-row inserts, whose up to 256 shapes per table would each stay prepared on
 * every connection; and `SELECT *`, whose cached plan PostgreSQL refuses ("cached plan must not
 * change result type") once a migration adds a column under a running process.
 */
function query(sql: string, params: readonly SqlParam[], self: PostgresExecutor): TimedQuery {
  const text = toPg(sql);
  const values = bind(params);
  const base: TimedQuery = { text, values, query_timeout: self.queryTimeoutMs };
  if (!self.preparedStatements || !values.length) return base;
  let name = statementNames.get(text);
  if (name === undefined) {
    name = values.length <= MAX_NAMED_PARAMS && !STAR.test(text) ? `herald_${statementNames.size + 1}` : null;
    statementNames.set(text, name);
  }
  return name ? { ...base, name } : base;
}

/** A statement of a transaction's frame, with the statement timeout unless it waits for the migration lock. */
function timed(self: PostgresExecutor, text: string, lock?: TxLock, values?: unknown[]): TimedQuery {
  return lock === 'migrate' ? { text, values } : { text, values, query_timeout: self.queryTimeoutMs };
}
const isReadTimeout = (e: unknown): boolean => e instanceof Error && e.message === 'Query read timeout';

/** Booleans as 0/1, as on SQLite: the schema keeps flags in INTEGER columns on both backends. */
const bind = (params: readonly SqlParam[]): unknown[] => params.map((p) => (p === true ? 1 : p === false ? 0 : p));

function executorOn(c: Queryable, self: PostgresExecutor): SqlExecutor {
  return {
    dialect: postgresDialect,
    all: async <T>(sql: string, params: readonly SqlParam[] = []) => (await c.query(query(sql, params, self))).rows as T[],
    run: async (sql: string, params: readonly SqlParam[] = []) => ({ changes: (await c.query(query(sql, params, self))).rowCount ?? 0 }),
    exec: async (sql: string) => void (await c.query(sql)),
    tx: async (fn, opts) => {
      if (!('release' in c)) return self.tx(fn, opts);
      // Already inside a transaction: join it, but still take a requested lock (held to its end).
      if (opts?.lock) await c.query(timed(self, 'SELECT pg_advisory_xact_lock($1)', opts.lock, [LOCK_KEYS[opts.lock]]));
      return fn(executorOn(c, self));
    },
    close: async () => {},
  };
}

/** Reconnect delays of a listener whose connection failed. */
const LISTEN_RETRY_MIN_MS = 100;
const LISTEN_RETRY_MAX_MS = 5000;
/**
 * How often an idle listening connection proves it is alive. A connection cut without a FIN
 * or RST (a failover, a NAT dropping state) would otherwise stay silent for the OS keepalive
 * time (hours); polling still finds the work meanwhile, so this only bounds the slow period.
 */
const LISTEN_HEARTBEAT_MS = 30_000;
const LISTEN_HEARTBEAT_TIMEOUT_MS = 5000;
export const LISTEN_APPLICATION_NAME = 'herald-listen';

/**
 * One dedicated connection (outside the pool: LISTEN belongs to a session, and a pooled
 * client would be handed to other queries) that LISTENs on one channel for every subscriber
 * in this process, and reconnects with backoff when it fails.
 */
class Listener {
  readonly #handlers = new Set<ListenHandlers>();
  #client: pg.Client | null = null;
  #connecting = false;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(
    private readonly url: string,
    private readonly channel: string,
  ) {}

  get size(): number {
    return this.#handlers.size;
  }

  add(h: ListenHandlers): void {
    this.#handlers.add(h);
    // Joining a live listener: listening from now on, so tell it as a fresh connection would.
    if (this.#client) queueMicrotask(() => this.#handlers.has(h) && h.onNotify(null));
    else void this.#connect();
  }

  delete(h: ListenHandlers): void {
    this.#handlers.delete(h);
  }

  #fire(payload: string | null): void {
    for (const h of this.#handlers) h.onNotify(payload);
  }

  async #connect(): Promise<void> {
    if (this.#stopped || this.#connecting || this.#client) return;
    this.#connecting = true;
    // application_name: operators (and tests) find it in pg_stat_activity.
    const c = new pg.Client({ connectionString: this.url, application_name: LISTEN_APPLICATION_NAME, keepAlive: true, keepAliveInitialDelayMillis: 10_000, connectionTimeoutMillis: 10_000, query_timeout: LISTEN_HEARTBEAT_TIMEOUT_MS });
    let dead = false;
    const lost = (err: unknown): void => {
      if (dead) return; // 'error' and 'end' both arrive for one failure
      dead = true;
      if (this.#client === c) this.#client = null;
      c.removeAllListeners('notification');
      c.end().catch(() => {});
      if (this.#stopped) return;
      for (const h of this.#handlers) h.onError?.(err);
      this.#retryMs = Math.min(LISTEN_RETRY_MAX_MS, Math.max(LISTEN_RETRY_MIN_MS, this.#retryMs * 2));
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        void this.#connect();
      }, this.#retryMs);
      this.#retryTimer.unref();
    };
    c.on('notification', (m) => this.#fire(m.payload ?? ''));
    c.on('error', lost);
    c.on('end', () => lost(new Error('the listening connection was closed')));
    try {
      await c.connect();
      await c.query(`LISTEN ${this.channel}`);
    } catch (e) {
      this.#connecting = false;
      lost(e);
      return;
    }
    this.#connecting = false;
    if (dead) return;
    if (this.#stopped) {
      dead = true;
      await c.end().catch(() => {});
      return;
    }
    this.#client = c;
    this.#retryMs = 0;
    this.#fire(null);
    if (!this.#heartbeat) {
      this.#heartbeat = setInterval(() => {
        const live = this.#client;
        // query_timeout fired or the socket failed: drop this connection and start over
        // (its 'error' handler does; on a connection already given up it does nothing).
        live?.query('SELECT 1').catch((e: unknown) => live.emit('error', e));
      }, LISTEN_HEARTBEAT_MS);
      this.#heartbeat.unref();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const c = this.#client;
    this.#client = null;
    await c?.end().catch(() => {});
  }
}

export class PostgresExecutor implements SqlExecutor {
  readonly dialect = postgresDialect;
  readonly #pool: pg.Pool;
  readonly #direct: SqlExecutor;
  readonly #url: string;
  readonly #listeners = new Map<string, Listener>();
  /** How long this process waits for any statement's answer (silentConnectionMs). */
  readonly queryTimeoutMs: number;

  private constructor(
    pool: pg.Pool,
    url: string,
    /** Named prepared statements for the hot statements (HERALD_PG_PREPARED_STATEMENTS). */
    readonly preparedStatements: boolean,
    /** See STATEMENT_TIMEOUT_MS. */
    readonly statementTimeoutMs: number,
  ) {
    this.queryTimeoutMs = silentConnectionMs(statementTimeoutMs);
    this.#pool = pool;
    this.#url = url;
    this.#direct = executorOn(pool, this);
  }

  /** Connection string options (sslmode, sslrootcert, …) pass through to the driver unchanged. */
  static async connect(url: string, opts: { poolSize: number; preparedStatements?: boolean; statementTimeoutMs?: number }): Promise<PostgresExecutor> {
    const statementTimeoutMs = opts.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
    const pool = new pg.Pool({
      connectionString: url, max: opts.poolSize, connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // TCP keepalive on every connection: keeps idle ones through NAT timeouts, and lets the
      // kernel notice a peer that vanished.
      keepAlive: true, keepAliveInitialDelayMillis: 10_000,
    });
    // An idle client that errors (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    // The statement limit for statements outside a transaction too. Set after connecting rather
    // than as a startup parameter, which PgBouncer refuses. Not behind a transaction-mode pooler
    // (prepared statements off), where a session SET would stay on a server connection other
    // clients share: there, give the database role the limit (`ALTER ROLE … SET statement_timeout`).
    const preparedStatements = opts.preparedStatements ?? true;
    if (preparedStatements) pool.on('connect', (c) => void c.query(`SET statement_timeout = ${statementTimeoutMs}`).catch(() => {}));
    const c = await pool.connect();
    c.release();
    return new PostgresExecutor(pool, url, preparedStatements, statementTimeoutMs);
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

  async tx<T>(fn: (q: SqlExecutor) => Promise<T>, opts?: TxOptions): Promise<T> {
    const c = await this.#pool.connect();
    // While a client is checked out the pool does not listen for its errors, and an 'error'
    // event nobody listens for ends the process: a connection killed mid-transaction (a
    // server restart, a failover, pg_terminate_backend) took down every busy Herald. The query
    // in flight rejects as well, so this only keeps the error, and the client is destroyed
    // rather than handed to the next transaction.
    let broken: Error | undefined;
    const onError = (e: Error): void => {
      broken ??= e;
    };
    c.on('error', onError);
    try {
      await c.query(timed(this, beginSql(this.statementTimeoutMs, opts), opts?.lock));
      const out = await fn(executorOn(c, this));
      await c.query(timed(this, 'COMMIT'));
      return out;
    } catch (e) {
      // A statement that timed out may still be running on the server: such a session is not
      // handed to anyone else either.
      if (isReadTimeout(e)) broken ??= e as Error;
      if (!broken) await c.query(timed(this, 'ROLLBACK')).catch((re: Error) => void (broken ??= re));
      throw e;
    } finally {
      c.removeListener('error', onError);
      c.release(broken);
    }
  }

  listen(channel: string, handlers: ListenHandlers): () => void {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`listen: bad channel name ${channel}`);
    let l = this.#listeners.get(channel);
    if (!l) this.#listeners.set(channel, (l = new Listener(this.#url, channel)));
    l.add(handlers);
    const listener = l;
    return () => {
      listener.delete(handlers);
      if (listener.size === 0 && this.#listeners.get(channel) === listener) {
        this.#listeners.delete(channel);
        void listener.stop();
      }
    };
  }

  #closed = false;

  /** Idempotent: a test (or a shutdown path) may close a store that something else closes too. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ls = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(ls.map((l) => l.stop()));
    await this.#pool.end();
  }
}
