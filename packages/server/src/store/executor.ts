/**
 * The one port between the store and a database: run SQL with `?` placeholders, inside or
 * outside a transaction. Each dialect is a small adapter behind it (sqlite/, postgres/);
 * everything else in the store is shared SQL, so both backends run the same queries.
 */
/** Cluster-wide locks, one per kind of work that must not run twice at once. */
export type TxLock = 'migrate' | 'claim';

export interface TxOptions {
  lock?: TxLock;
  /**
   * Commit without waiting for the disk (SQLite synchronous=NORMAL, PostgreSQL
   * synchronous_commit=off): the transaction survives a crash of the process but may be lost
   * with the machine. Only for claims and attempt outcomes, which at-least-once recovers
   * (a lost lease is claimable again, a lost outcome means one more send); never for publishing.
   */
  relaxed?: boolean;
}

export type SqlParam = string | number | null | boolean | readonly (string | number | null)[];

/** The SQL type of one column of a row set passed as parameters (see Dialect.rows). */
export type ColumnType = 'text' | 'int' | 'bigint';
export type Column = readonly [name: string, type: ColumnType];

/** Told about a notification channel, by a backend that other processes can write to. */
export interface ListenHandlers {
  /**
   * A notification arrived with its payload, or listening (re)started (payload null): anything
   * sent while not listening was missed, so the listener should look as if told everything.
   */
  onNotify(payload: string | null): void;
  /** The listening connection failed; it reconnects by itself. For logging. */
  onError?(err: unknown): void;
}

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
  tx<T>(fn: (q: SqlExecutor) => Promise<T>, opts?: TxOptions): Promise<T>;
  /**
   * Hear `Dialect.notify(channel)` sent by any process, on a connection of its own that
   * reconnects after errors. Only where several processes share the database (PostgreSQL);
   * absent on SQLite, where the one process tells itself. Returns the unsubscribe function.
   */
  listen?(channel: string, handlers: ListenHandlers): () => void;
  close(): Promise<void>;
}

/** PostgreSQL error codes for a server going away or refusing connections (class 08: connection exception). */
// 57014: cancelled, here by statement_timeout (nothing it did is kept).
const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300', '57014']);
const NET_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/**
 * The database cannot serve this right now (another process holds SQLite's write lock, the
 * PostgreSQL server is restarting, unreachable, out of connections, or a statement timed
 * out), as opposed to refusing the request itself: worth trying again shortly. The API answers
 * such errors with `503` and `Retry-After` instead of `500`.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  const code = String((e as { code?: unknown } | null)?.code ?? '');
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('08') || PG_UNAVAILABLE.has(code) || NET_UNAVAILABLE.has(code)) return true;
  const msg = e instanceof Error ? e.message : '';
  return msg === 'Query read timeout' || msg.startsWith('timeout exceeded when trying to connect') || msg.startsWith('Connection terminated');
}

/**
 * PostgreSQL chose this transaction to end so that another could go on: a deadlock
 * (40P01), a serialization failure (40001) or a lock wait past lock_timeout (55P03). Nothing
 * it did is kept and nothing is wrong with the request, so the API answers `503` with
 * `Retry-After`, as for an unavailable database, instead of `500`.
 */
export function isTransactionConflict(e: unknown): boolean {
  const code = String((e as { code?: unknown } | null)?.code ?? '');
  return code === '40P01' || code === '40001' || code === '55P03';
}

/** The few places where SQLite and PostgreSQL SQL differ. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** `col IN (list)` with the whole list as one parameter, so the statement text never varies. */
  inList(column: string): string;
  listParam(values: string[]): SqlParam;
  /**
   * A FROM item `v(col, …)` whose rows are passed as parameters (`rowsParams`): any number of
   * rows in one statement with a fixed text, for batched INSERT … SELECT, UPDATE … FROM and
   * joins. PostgreSQL: `unnest` of one array per column; SQLite: `json_each` of one JSON array.
   */
  rows(columns: readonly Column[]): string;
  rowsParams(columns: readonly Column[], rows: readonly (readonly SqlParam[])[]): SqlParam[];
  /** Rows per multi-row VALUES statement with `columns` parameters each (see insertValues). */
  valuesRows(columns: number): number;
  /**
   * `CROSS JOIN LATERAL (…)` works: a top-N per row of a row set in one statement. Without it
   * (SQLite) the store runs one statement per row, which costs no round trip there.
   */
  readonly lateral: boolean;
  /** Appended to the candidate query of a claim. */
  readonly skipLocked: string;
  /**
   * Appended to a SELECT whose rows must stay locked until the transaction ends, so that
   * transactions doing the same, or updating them, wait their turn (PostgreSQL: FOR NO KEY
   * UPDATE). SQLite: nothing, since its write transactions run one at a time anyway.
   */
  readonly forUpdate: string;
  /**
   * The statement that wakes `listen`ers of `channel` with `payload` (a plain word) when its
   * transaction commits, or null where nobody else can be listening (SQLite: one process per
   * database file).
   */
  notify(channel: string, payload: string): string | null;
  /** A UNIQUE or PRIMARY KEY violation: lets the store retry a transaction that lost a race. */
  isUniqueViolation(err: unknown): boolean;
}

/**
 * Text per INSERT at most (a row bigger than this goes alone). Past ~1 MB a statement saves
 * nothing on round trips and costs memory and parse time: measured on PostgreSQL 15, 200
 * events of 12 KB went in ~10 % faster as four statements than as one.
 */
const INSERT_MAX_BYTES = 1024 * 1024; // 1 MiB
/** Rows per `rows` INSERT at most; beyond a few thousand, bigger statements stop paying off. */
const ROWS_INSERT_MAX = 1000;

/** Cut `rows` into runs of at most `maxRows` rows and INSERT_MAX_BYTES of text. */
async function inChunks(rows: readonly (readonly SqlParam[])[], maxRows: number, each: (part: readonly (readonly SqlParam[])[]) => Promise<void>): Promise<void> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    for (const v of rows[i]!) if (typeof v === 'string') bytes += v.length;
    if (i === rows.length - 1 || i + 1 - start >= maxRows || bytes >= INSERT_MAX_BYTES) {
      await each(rows.slice(start, i + 1));
      start = i + 1;
      bytes = 0;
    }
  }
}

/**
 * Multi-row INSERT of small scalar rows as `INSERT … SELECT … FROM <rows>` (Dialect.rows):
 * one statement, one round trip on PostgreSQL, for up to ROWS_INSERT_MAX rows, with a text
 * that never varies. Not for payloads: PostgreSQL parses array literals of long quoted text
 * slowly (12 KB JSON bodies inserted ~8× slower than with `insertValues`).
 */
export async function insertRows(q: SqlExecutor, table: string, columns: readonly Column[], rows: readonly (readonly SqlParam[])[]): Promise<void> {
  const names = columns.map(([c]) => c).join(', ');
  const sql = `INSERT INTO ${table} (${names}) SELECT ${names} FROM ${q.dialect.rows(columns)}`;
  await inChunks(rows, ROWS_INSERT_MAX, async (part) => void (await q.run(sql, q.dialect.rowsParams(columns, part))));
}

const valuesCache = new Map<string, string>();

/**
 * Multi-row `INSERT … VALUES (…), (…)` for rows that carry payloads: every value is its own
 * parameter, sent as is. Rows per statement come from the dialect (Dialect.valuesRows).
 */
export async function insertValues(
  q: SqlExecutor, table: string, columns: readonly Column[], rows: readonly (readonly SqlParam[])[], opts?: { skipExisting?: boolean },
): Promise<void> {
  const names = columns.map(([c]) => c).join(',');
  const tail = opts?.skipExisting ? ' ON CONFLICT DO NOTHING' : '';
  await inChunks(rows, q.dialect.valuesRows(columns.length), async (part) => {
    const key = `${table}|${names}|${part.length}${tail}`;
    let sql = valuesCache.get(key);
    if (!sql) {
      const one = `(${columns.map(() => '?').join(',')})`;
      sql = `INSERT INTO ${table} (${names}) VALUES ${Array(part.length).fill(one).join(',')}${tail}`;
      valuesCache.set(key, sql);
    }
    await q.run(sql, part.flat());
  });
}
