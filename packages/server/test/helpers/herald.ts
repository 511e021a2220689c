import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHerald, createLogger, type Herald } from '../../src/app.js';
import type { Store } from '../../src/store/store.js';
import { loadConfig, type Config } from '../../src/config/load.js';
import { sha256 } from '../../src/api/auth.js';
import { migrate } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import type { Plugin } from '../../src/plugins.js';
import { freshPostgres, postgresAdminUrl, type TestDatabase } from './db.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const SECRET_KEY = '0'.repeat(63) + '1';

/**
 * The backend startHerald() puts each Herald on: `sqlite` (default), or `postgres` when
 * HERALD_TEST_BACKEND=postgres (scripts/test.mjs runs the API and delivery suites a second
 * time that way). A test that passes HERALD_DATABASE_URL itself uses that database instead.
 */
export const TEST_BACKEND: 'sqlite' | 'postgres' = process.env.HERALD_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
if (process.env.HERALD_TEST_BACKEND && !['sqlite', 'postgres'].includes(process.env.HERALD_TEST_BACKEND)) {
  throw new Error(`HERALD_TEST_BACKEND must be sqlite or postgres, not ${process.env.HERALD_TEST_BACKEND}`);
}

export interface TestHerald {
  url: string;
  /** Where this Herald's data lives. */
  backend: 'sqlite' | 'postgres';
  herald: Herald;
  config: Config;
  dir: string;
  /** fetch against the server with the admin token (or another token). */
  api: (method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string>; raw?: string | Buffer }) => Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** A throwaway PostgreSQL database for one startHerald(), dropped by its close(). */
export async function throwawayPostgres(): Promise<TestDatabase> {
  const admin = await postgresAdminUrl(); // throws when HERALD_TEST_DATABASE_URL is set but unreachable
  if (!admin) {
    throw new Error('HERALD_TEST_BACKEND=postgres, but PostgreSQL is not reachable at the default 127.0.0.1:5432 and HERALD_TEST_DATABASE_URL is not set');
  }
  return freshPostgres(admin);
}

/**
 * A real Herald on a real SQLite file in a temp dir (or a throwaway PostgreSQL database with
 * HERALD_TEST_BACKEND=postgres, or the database in `env`), listening on 127.0.0.1 with an
 * ephemeral port; requests go over real HTTP.
 */
export async function startHerald(env: Record<string, string> = {}, opts: { worker?: boolean; plugins?: Plugin[] } = {}): Promise<TestHerald> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-test-'));
  const pgDb = TEST_BACKEND === 'postgres' && env.HERALD_DATABASE_URL === undefined ? await throwawayPostgres() : null;
  let config: Config;
  let store: Store | undefined;
  let herald: Herald;
  let url: string;
  try {
    config = loadConfig({
      HERALD_DATABASE_URL: pgDb?.url ?? `sqlite:${join(dir, 'herald.db')}`,
      // A few connections are plenty for a test, and keep parallel test files well under
      // PostgreSQL's max_connections (100 by default).
      HERALD_DB_POOL_SIZE: '4',
      HERALD_PORT: '0',
      HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
      HERALD_SECRET_KEY: SECRET_KEY,
      HERALD_LOG_LEVEL: process.env.HERALD_TEST_LOG_LEVEL ?? 'silent',
      HERALD_SQLITE_SYNCHRONOUS: 'normal',
      ...env,
    });
    store = await openStore(config);
    await migrate(store.q);
    herald = await buildHerald({
      config, store, logger: createLogger(config.logLevel), adminTokenHash: sha256(config.adminToken), secretKey: config.secretKeyBytes ?? Buffer.from(SECRET_KEY, 'hex'), plugins: opts.plugins,
    });
    await herald.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = herald.app.server.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}`;
  } catch (e) {
    // Nothing may outlive a failed start: a throwaway database left behind would pile up.
    await store?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await pgDb?.drop();
    throw e;
  }
  if (opts.worker !== false) herald.startWorker();
  const api: TestHerald['api'] = async (method, path, body, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const token = o.token === undefined ? ADMIN_TOKEN : o.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined = o.raw;
    if (payload === undefined && body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(url + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
  return {
    url, herald, config, dir, api,
    backend: store.dialect,
    async close() {
      try {
        await herald.close();
        await store!.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await pgDb?.drop();
      }
    },
  };
}

/** Create an account (pro unless said otherwise) and return its id. */
export async function createAccount(h: TestHerald, plan = 'pro', name = 'Acme'): Promise<string> {
  const r = await h.api('POST', '/v1/accounts', { name, plan });
  if (r.status !== 201) throw new Error(`create account: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
