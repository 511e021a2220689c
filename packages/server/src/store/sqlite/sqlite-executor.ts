import Database from 'better-sqlite3';
import { mkdirSync, realpathSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Dialect, SqlExecutor, SqlParam, TxOptions } from '../executor.js';
import { Checkpointer, CHECKPOINT_DEFAULTS, type CheckpointerOptions } from './checkpointer.js';

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
  notify: () => null,
  isUniqueViolation: (err) => {
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  },
};

type Statement = Database.Statement<unknown[]>;

/** SQLite's own default: checkpoint in the COMMIT that takes the WAL past this many pages. */
const AUTOCHECKPOINT_PAGES = 1000;

export interface SqliteOptions {
  synchronous: 'full' | 'normal';
  /**
   * Checkpoint on a thread of its own (checkpointer.ts) once this many transactions have run;
   * until then, and with `false`, SQLite checkpoints inside commits as usual. Starting late
   * spares a thread to the short-lived stores of tests and CLI commands.
   */
  checkpointThread?: false | { afterTx: number; options?: CheckpointerOptions };
}

const DEFAULT_CHECKPOINT_THREAD = { afterTx: 500 };

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

  readonly #path: string;
  readonly #checkpointThread: SqliteOptions['checkpointThread'];
  #txCount = 0;
  #checkpointer: Checkpointer | null = null;
  /** The WAL file, opened at the first `syncAfter` commit, for fdatasync (see TxOptions). */
  #wal: FileHandle | null = null;
  /**
   * Set when the disk failed an fdatasync: a commit is then visible but maybe not on disk, and
   * after a failed fsync Linux may drop the dirty pages and report success next time, so no
   * later sync could be trusted. Every later statement fails with it, and readiness with them,
   * until the process is restarted (PostgreSQL does the same with data_sync_retry=off).
   */
  #diskFailed: Error | null = null;

  constructor(path: string, opts: SqliteOptions) {
    this.#synchronous = opts.synchronous;
    this.#path = path;
    this.#checkpointThread = path === ':memory:' ? false : (opts.checkpointThread ?? DEFAULT_CHECKPOINT_THREAD);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous.toUpperCase()}`);
    this.db.pragma('foreign_keys = ON');
    // Another process (a `herald migrate`, a test reading the file) may hold the lock briefly.
    this.db.pragma('busy_timeout = 5000');
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

  #usable(): void {
    if (this.#diskFailed) throw this.#diskFailed;
  }

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    while (this.#txOpen) await this.#txTail;
    this.#usable();
    if (this.#relaxedNow && !this.#stmt(sql).readonly) this.#strict(); // INSERT … RETURNING, say
    return this.allSync<T>(sql, params);
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    while (this.#txOpen) await this.#txTail;
    this.#usable();
    this.#strict();
    return this.runSync(sql, params);
  }

  async tx<T>(fn: (q: SqlExecutor) => Promise<T>, opts?: TxOptions): Promise<T> {
    const prev = this.#txTail;
    let release!: () => void;
    this.#txTail = new Promise<void>((r) => (release = r));
    await prev;
    this.#txOpen = true;
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
      // past busy_timeout, and the mutex must still be released or this executor hangs forever.
      // In WAL mode a NORMAL commit skips the fsync; the next FULL commit syncs it too.
      this.#usable();
      const syncAfter = opts?.syncAfter === true && this.#synchronous === 'full' && this.#path !== ':memory:';
      if (opts?.relaxed || syncAfter) this.#relax();
      else this.#strict();
      this.db.exec('BEGIN IMMEDIATE');
      const out = await fn(inner);
      this.db.exec('COMMIT');
      // Still holding the executor: nothing else of this process reads or writes until the
      // commit is on disk, as with a FULL commit, but the event loop serves requests meanwhile.
      if (syncAfter) await this.#syncWal();
      return out;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.#txOpen = false;
      release();
      if (this.#checkpointThread && ++this.#txCount === this.#checkpointThread.afterTx) {
        try {
          this.#startCheckpointer(this.#checkpointThread.options);
        } catch {
          // No thread (resource limits): SQLite goes on checkpointing inside commits.
        }
      }
    }
  }

  /**
   * fdatasync the WAL: what a FULL commit does itself. The file stays the same while this
   * connection is open (SQLite only truncates and reuses it), so the handle is kept.
   */
  async #syncWal(): Promise<void> {
    try {
      // SQLite puts the WAL beside the real file when the database path is a symlink.
      this.#wal ??= await open(`${realpathSync(this.#path)}-wal`, 'r+');
      await this.#wal.datasync();
    } catch (e) {
      this.#diskFailed = new Error(`the disk failed to sync the SQLite WAL; restart Herald (${e instanceof Error ? e.message : String(e)})`, { cause: e });
      await this.#wal?.close().catch(() => {});
      this.#wal = null;
      throw this.#diskFailed;
    }
  }

  /** The background checkpointer, once started (tests). */
  get checkpointer(): Checkpointer | null {
    return this.#checkpointer;
  }

  #startCheckpointer(options = CHECKPOINT_DEFAULTS): void {
    const c = new Checkpointer(this.#path, options);
    // Should the thread stop, commits checkpoint again, so the WAL never grows without bound.
    c.onLost = () => {
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    };
    this.db.pragma('wal_autocheckpoint = 0');
    this.#checkpointer = c;
  }

  async exec(sql: string): Promise<void> {
    while (this.#txOpen) await this.#txTail;
    this.#usable();
    this.#strict();
    this.db.exec(sql);
  }

  async close(): Promise<void> {
    await this.#txTail;
    // Its connection first, so this one is the last and checkpoints the WAL away as it closes.
    try {
      await this.#checkpointer?.close();
      await this.#wal?.close();
    } finally {
      this.#wal = null;
      this.db.close();
    }
  }
}
