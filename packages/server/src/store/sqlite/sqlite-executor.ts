import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Dialect, SqlExecutor, SqlParam, TxOptions } from '../executor.js';

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  inList: (column) => `${column} IN (SELECT value FROM json_each(?))`,
  listParam: (values) => JSON.stringify(values),
  // One JSON array of row arrays; `->>` gives SQL values (text, integer, NULL), as bound
  // parameters would. better-sqlite3 has no round trips, but one statement still beats a
  // prepared statement run per row (about 2× on 1000-row outcome batches).
  rows: (columns) => `(SELECT ${columns.map(([c], i) => `value ->> ${i} AS ${c}`).join(', ')} FROM json_each(?)) AS v`,
  rowsParams: (_columns, rows) => [JSON.stringify(rows.map((r) => r.map((p) => (p === true ? 1 : p === false ? 0 : p))))],
  // No round trips to save, so one short prepared statement per row: cheaper than parsing
  // long statements, and it keeps the statement cache to one entry per table.
  valuesRows: () => 1,
  lateral: false,
  skipLocked: '',
  forUpdate: '',
  notify: () => null,
  isUniqueViolation: (err) => {
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  },
};

type Statement = Database.Statement<unknown[]>;

/**
 * How long, in all, a statement or transaction waits for another process's write lock (a
 * `herald migrate`, a backup, a script reading the file) before it fails with SQLITE_BUSY.
 */
export const BUSY_WAIT_MS = 5000;
const isBusy = (e: unknown): boolean => String((e as { code?: unknown } | null)?.code ?? '').startsWith('SQLITE_BUSY');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function bind(params: readonly SqlParam[]): unknown[] {
  // better-sqlite3 refuses booleans; the schema stores them as 0/1 on both backends.
  return params.map((p) => (p === true ? 1 : p === false ? 0 : p));
}

/**
 * better-sqlite3 is synchronous and has one connection, so a transaction that awaits could
 * let another request's statements run inside it. A small mutex makes every statement
 * outside a transaction wait until the open transaction ends.
 */
export class SqliteExecutor implements SqlExecutor {
  readonly dialect = sqliteDialect;
  readonly db: Database.Database;
  readonly #stmts = new Map<string, Statement>();
  #txTail: Promise<void> = Promise.resolve();
  #txOpen = false;

  readonly #synchronous: 'full' | 'normal';
  /**
   * The connection runs at synchronous=NORMAL since a relaxed transaction set it. It stays so
   * until a write that needs FULL comes: a drain is nothing but relaxed claims and outcome
   * writes, and switching back and forth cost two statements per transaction.
   */
  #relaxedNow = false;

  readonly #busyWaitMs: number;

  constructor(path: string, opts: { synchronous: 'full' | 'normal'; busyWaitMs?: number }) {
    this.#synchronous = opts.synchronous;
    this.#busyWaitMs = opts.busyWaitMs ?? BUSY_WAIT_MS;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous.toUpperCase()}`);
    this.db.pragma('foreign_keys = ON');
    // Another process may hold the write lock for a while. SQLite's busy_timeout would wait for
    // it inside the call, with the event loop stopped: every request, timer and attempt of the
    // process froze, 5 s per statement. #whenFree waits between tries instead.
    this.db.pragma('busy_timeout = 0');
  }

  /**
   * Runs `attempt` until it does not fail with SQLITE_BUSY, waiting between tries (1 ms
   * doubling to 50 ms) without blocking the event loop, until `deadline` (BUSY_WAIT_MS from
   * now by default); it always tries at least once. A statement outside a transaction
   * (`outside`) first waits for an open one to end, and runs in the same synchronous step as
   * that check, so that no transaction can open in between and take it in.
   */
  async #whenFree<T>(attempt: () => T, outside: boolean, deadline = Date.now() + this.#busyWaitMs): Promise<T> {
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      if (outside) while (this.#txOpen) await this.#txTail;
      try {
        return attempt();
      } catch (e) {
        if (!isBusy(e) || Date.now() >= deadline) throw e;
      }
      await sleep(delay);
    }
  }

  #stmt(sql: string): Statement {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  allSync<T>(sql: string, params: readonly SqlParam[] = []): T[] {
    const s = this.#stmt(sql);
    if (s.reader) return s.all(...bind(params)) as T[];
    s.run(...bind(params));
    return [];
  }

  runSync(sql: string, params: readonly SqlParam[] = []): { changes: number } {
    const s = this.#stmt(sql);
    if (s.reader) return { changes: s.all(...bind(params)).length };
    return { changes: s.run(...bind(params)).changes };
  }

  /** Writes outside a relaxed transaction get the configured durability back. */
  #strict(): void {
    if (!this.#relaxedNow) return;
    this.db.exec(`PRAGMA synchronous = ${this.#synchronous.toUpperCase()}`);
    this.#relaxedNow = false;
  }

  #relax(): void {
    if (this.#relaxedNow || this.#synchronous !== 'full') return;
    this.db.exec('PRAGMA synchronous = NORMAL');
    this.#relaxedNow = true;
  }

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.#whenFree(() => {
      if (this.#relaxedNow && !this.#stmt(sql).readonly) this.#strict(); // INSERT … RETURNING, say
      return this.allSync<T>(sql, params);
    }, true);
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    return this.#whenFree(() => {
      this.#strict();
      return this.runSync(sql, params);
    }, true);
  }

  async tx<T>(fn: (q: SqlExecutor) => Promise<T>, opts?: TxOptions): Promise<T> {
    // The wait for another process's lock counts from here: transactions queued behind one
    // that waits for it must not each wait as long again.
    const deadline = Date.now() + this.#busyWaitMs;
    const prev = this.#txTail;
    let release!: () => void;
    this.#txTail = new Promise<void>((r) => (release = r));
    await prev;
    const inner: SqlExecutor = {
      dialect: this.dialect,
      all: async <R>(sql: string, params?: readonly SqlParam[]) => this.allSync<R>(sql, params),
      run: async (sql: string, params?: readonly SqlParam[]) => this.runSync(sql, params),
      exec: async (sql: string) => void this.db.exec(sql),
      tx: (f) => f(inner),
      close: async () => {},
    };
    try {
      // Inside the try: BEGIN fails with SQLITE_BUSY when another process holds the write lock
      // past the deadline, and the mutex must still be released or this executor hangs forever.
      // Until BEGIN succeeds the transaction is not open: statements outside it (reads, which
      // WAL lets through) go on meanwhile. Once BEGIN IMMEDIATE holds the write lock, nothing
      // inside can be busy. The durability pragma and the open flag go with BEGIN, in the same
      // synchronous step: no statement from outside may run in between, or inside.
      // In WAL mode a NORMAL commit skips the fsync; the next FULL commit syncs it too.
      await this.#whenFree(() => {
        if (opts?.relaxed) this.#relax();
        else this.#strict();
        this.db.exec('BEGIN IMMEDIATE');
        this.#txOpen = true;
      }, false, deadline);
      const out = await fn(inner);
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.#txOpen = false;
      release();
    }
  }

  /** In a transaction of its own: a script retried after SQLITE_BUSY must not run twice in part. */
  async exec(sql: string): Promise<void> {
    await this.tx(async (t) => t.exec(sql));
  }

  async close(): Promise<void> {
    await this.#txTail;
    this.db.close();
  }
}
