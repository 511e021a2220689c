#!/usr/bin/env node
// `npm test`: typecheck every package, find out which database backends can be tested, run the
// whole suite once, and say loudly which backends ran: a green run on SQLite alone must never
// pass for a PostgreSQL-tested one.
import { spawnSync } from 'node:child_process';
import pg from 'pg';

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECT_TIMEOUT_MS = 3000; // a local server answers in milliseconds; a firewalled one never does

const run = (cmd, args, env = {}) => spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

const banner = (line) => {
  const rule = '='.repeat(Math.min(line.length, 80));
  console.log(`\n${rule}\n${line}\n${rule}\n`);
};

const redact = (url) => {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable url>';
  }
};

/** null when reachable, else the reason. */
async function probe(url) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return e.message || e.code || String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

const explicit = process.env.HERALD_TEST_DATABASE_URL;
const url = explicit && explicit !== 'none' ? explicit : DEFAULT_PG_URL;
const why = explicit === 'none' ? 'HERALD_TEST_DATABASE_URL=none' : await probe(url);
let backends;
const env = {};
if (why === null) {
  backends = 'Backends: sqlite, postgres';
  env.HERALD_TEST_DATABASE_URL = url;
} else if (explicit && explicit !== 'none') {
  // Asked for by name (CI does): not answering is a failure, not a reason to test less.
  banner(`HERALD_TEST_DATABASE_URL is set but PostgreSQL is not reachable at ${redact(url)}: ${why}`);
  process.exit(1);
} else {
  backends =
    explicit === 'none'
      ? 'Backends: sqlite only — PostgreSQL turned off (HERALD_TEST_DATABASE_URL=none)'
      : `Backends: sqlite only — PostgreSQL not reachable at ${redact(url)} (${why}); set HERALD_TEST_DATABASE_URL to test it`;
  env.HERALD_TEST_DATABASE_URL = 'none'; // the test files need not probe again
}

banner(backends);
const typecheck = run('npm', ['run', 'typecheck', '--silent']);
if (typecheck !== 0) {
  banner(`FAILED: typecheck. ${backends}`);
  process.exit(typecheck);
}
const status = run('npx', ['vitest', 'run', ...process.argv.slice(2)], env);
banner(`${status === 0 ? 'PASSED' : 'FAILED'}. ${backends}`);
process.exit(status);
