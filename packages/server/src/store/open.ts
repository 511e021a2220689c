import type { Config } from '../config/load.js';
import { SqliteExecutor } from './sqlite/sqlite-executor.js';
import type { SqlExecutor } from './executor.js';
import { Store } from './store.js';

/** Open the configured backend. The PostgreSQL driver is loaded only when it is used. */
export async function openStore(config: Pick<Config, 'db' | 'sqliteSynchronous' | 'dbPoolSize'> & Partial<Pick<Config, 'pgPreparedStatements'>>): Promise<Store> {
  let q: SqlExecutor;
  if (config.db.kind === 'sqlite') {
    q = new SqliteExecutor(config.db.path, { synchronous: config.sqliteSynchronous });
  } else {
    const { PostgresExecutor } = await import('./postgres/postgres-executor.js');
    q = await PostgresExecutor.connect(config.db.url, { poolSize: config.dbPoolSize, preparedStatements: config.pgPreparedStatements });
  }
  return new Store(q);
}
