#!/usr/bin/env node
// `npm test`: typecheck every package, find out which database backends can be tested, run the
// whole suite, run the server's API and delivery suites a second time on PostgreSQL, and say
// loudly which backends each pass used: a green run on SQLite alone must never pass for a
// PostgreSQL-tested one.
//
//   pass 1  every test file. Herald instances from startHerald() live on SQLite; the store
//           conformance, migration, roles-* and scale-* tests use PostgreSQL (when reachable).
//   pass 2  (PostgreSQL reachable) the server test files that build Herald with startHerald(),
//           again with HERALD_TEST_BACKEND=postgres: one throwaway database per Herald. A file
//           is left out when it reads the SQLite file itself — it, or a test helper it
//           imports, imports better-sqlite3 — or when it says `@herald-test sqlite-only`.
//
// Arguments go to vitest. Path filters (arguments not starting with `-`) also narrow pass 2.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SERVER_TESTS = join(ROOT, 'packages/server/test');
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECT_TIMEOUT_MS = 3000; // a local server answers in milliseconds; a firewalled one never does
const STALE_TEST_DB_MS = 60 * 60 * 1000; // test databases older than this were left by a killed run

const run = (cmd, args, env = {}) => spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, env: { ...process.env, ...env } }).status ?? 1;

const banner = (...lines) => {
  const rule = '='.repeat(Math.min(Math.max(...lines.map((l) => l.length)), 100));
  console.log(`\n${rule}\n${lines.join('\n')}\n${rule}\n`);
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

async function withClient(url, fn) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  c.on('error', () => {});
  try {
    await c.connect();
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** null when reachable, else the reason. */
async function probe(url) {
  try {
    await withClient(url, (c) => c.query('SELECT 1'));
    return null;
  } catch (e) {
    return e.message || e.code || String(e);
  }
}

/**
 * Drop `herald_test_<base-36 creation ms>_<random>` databases (test/helpers/db.ts) older than
 * STALE_TEST_DB_MS: a run killed mid-way cannot drop its own. Younger ones may belong to a run
 * in progress elsewhere and are left alone.
 */
async function dropStaleTestDatabases(url) {
  return withClient(url, async (c) => {
    const { rows } = await c.query(
      `SELECT d.datname, (SELECT COUNT(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::int AS sessions
         FROM pg_database d WHERE d.datname LIKE 'herald\\_test\\_%'`,
    );
    let dropped = 0;
    for (const { datname, sessions } of rows) {
      const parts = datname.slice('herald_test_'.length).split('_');
      const born = parts.length === 2 ? parseInt(parts[0], 36) : NaN;
      const stale = Number.isFinite(born) ? Date.now() - born >= STALE_TEST_DB_MS : sessions === 0;
      if (!stale) continue;
      await c.query(`DROP DATABASE IF EXISTS "${datname.replaceAll('"', '""')}" WITH (FORCE)`).then(() => dropped++, () => {});
    }
    return dropped;
  });
}

/** Drop the listed databases that still exist: created during this run and never dropped. */
async function dropLeftovers(url, registry) {
  let names = [];
  try {
    names = [...new Set(readFileSync(registry, 'utf8').split('\n').filter((n) => /^herald_test_[a-z0-9_]+$/.test(n)))];
  } catch {
    return 0;
  }
  if (!names.length) return 0;
  return withClient(url, async (c) => {
    const { rows } = await c.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names]);
    for (const { datname } of rows) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => {});
    return rows.length;
  });
}

/** Pass 2's files, and the files left out with the reason. */
function postgresPassFiles() {
  const helperUsesSqliteFile = new Map();
  const readsSqliteFile = (src, dir) => {
    if (/from\s+['"]better-sqlite3['"]/.test(src)) return 'imports better-sqlite3';
    for (const [, spec] of src.matchAll(/from\s+['"](\.\/helpers\/[^'"]+)\.js['"]/g)) {
      const path = join(dir, `${spec}.ts`);
      if (!helperUsesSqliteFile.has(path)) {
        let hs = '';
        try {
          hs = readFileSync(path, 'utf8');
        } catch {
          /* not a .ts helper */
        }
        helperUsesSqliteFile.set(path, /from\s+['"]better-sqlite3['"]/.test(hs));
      }
      if (helperUsesSqliteFile.get(path)) return `reads the SQLite file through ${spec}`;
    }
    return null;
  };
  const files = [];
  const skipped = [];
  for (const f of readdirSync(SERVER_TESTS).filter((f) => f.endsWith('.test.ts')).sort()) {
    const src = readFileSync(join(SERVER_TESTS, f), 'utf8');
    if (!/\bstartHerald\(/.test(src)) continue; // does not build Herald through the switchable helper
    const why = /@herald-test\s+sqlite-only/.test(src) ? 'marked @herald-test sqlite-only' : readsSqliteFile(src, SERVER_TESTS);
    if (why) skipped.push(`${f} (${why})`);
    else files.push(relative(ROOT, join(SERVER_TESTS, f)));
  }
  return { files, skipped };
}

/**
 * The failed tests of a vitest JSON report, a line each with the first line of the error: the
 * summary is the part of a long CI log that is read, so it must name what failed.
 */
function failedTests(report) {
  const lines = [];
  for (const file of report.testResults ?? []) {
    const where = relative(ROOT, file.name);
    for (const t of file.assertionResults ?? []) {
      if (t.status !== 'failed') continue;
      const first = String(t.failureMessages?.[0] ?? '').split('\n')[0].slice(0, 200);
      lines.push(`        ✗ ${where} › ${t.fullName ?? t.title}${first ? `: ${first}` : ''}`);
    }
    // A file that failed to load, or whose hooks failed, has no failed test of its own.
    if (file.status === 'failed' && !(file.assertionResults ?? []).some((t) => t.status === 'failed')) {
      lines.push(`        ✗ ${where}: ${String(file.message ?? 'failed').split('\n')[0].slice(0, 200)}`);
    }
  }
  return lines;
}

/** vitest with the default reporter on screen and a JSON report for the summary. */
function vitest(args, env) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-test-report-'));
  const out = join(dir, 'report.json');
  const t0 = Date.now();
  const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...args], env);
  const seconds = (Date.now() - t0) / 1000;
  let counts = null;
  let failures = [];
  try {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    counts = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + (r.numTodoTests ?? 0), total: r.numTotalTests };
    failures = failedTests(r);
  } catch {
    /* vitest died before writing it: the status says enough */
  }
  rmSync(dir, { recursive: true, force: true });
  return { status, seconds, counts, failures };
}

const describePass = (name, backends, r) =>
  `${r.status === 0 ? 'PASSED' : 'FAILED'}  ${name} [${backends}] in ${r.seconds.toFixed(0)} s` +
  (r.counts ? `: ${r.counts.passed} passed, ${r.counts.failed} failed, ${r.counts.skipped} skipped of ${r.counts.total}` : '');

// ---------------- which backends ----------------
const started = Date.now();
const explicit = process.env.HERALD_TEST_DATABASE_URL;
const url = explicit && explicit !== 'none' ? explicit : DEFAULT_PG_URL;
const why = explicit === 'none' ? 'HERALD_TEST_DATABASE_URL=none' : await probe(url);
let backends;
const env = { HERALD_TEST_BACKEND: 'sqlite' };
if (why === null) {
  backends = `Backends: sqlite, postgres (${redact(url)})`;
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
const pgOn = why === null;

banner(backends);
const typecheck = run('npm', ['run', 'typecheck', '--silent']);
if (typecheck !== 0) {
  banner(`FAILED: typecheck. ${backends}`);
  process.exit(typecheck);
}
const scratch = mkdtempSync(join(tmpdir(), 'herald-test-run-'));
env.HERALD_TEST_DB_REGISTRY = join(scratch, 'databases.txt');
if (pgOn) {
  const dropped = await dropStaleTestDatabases(url).catch((e) => (console.warn(`could not sweep stale test databases: ${e.message}`), 0));
  if (dropped) console.log(`dropped ${dropped} test database(s) left behind by earlier runs`);
}

// ---------------- pass 1: everything ----------------
const args = process.argv.slice(2);
banner(
  'Pass 1: every test file.',
  `  Herald from startHerald(): sqlite. Store conformance, migrations, roles-*, scale-*: ${pgOn ? 'sqlite and postgres' : 'sqlite only (postgres SKIPPED)'}.`,
);
const pass1 = vitest(args, env);
const results = [describePass('pass 1: every test file', pgOn ? 'startHerald on sqlite; store, migrate, roles, scale also on postgres' : 'sqlite only', pass1), ...pass1.failures];

// ---------------- pass 2: the API and delivery suites on PostgreSQL ----------------
let pass2 = { status: 0 };
if (pgOn) {
  const { files, skipped } = postgresPassFiles();
  const filters = args.filter((a) => !a.startsWith('-'));
  const flags = args.filter((a) => a.startsWith('-'));
  const chosen = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
  banner(
    `Pass 2: ${chosen.length} server test file(s) again with HERALD_TEST_BACKEND=postgres (a throwaway database per Herald).`,
    ...(skipped.length ? ['  Left out, SQLite-specific:', ...skipped.map((s) => `    ${s}`)] : []),
  );
  if (chosen.length) {
    pass2 = vitest([...flags, ...chosen], { ...env, HERALD_TEST_BACKEND: 'postgres' });
    results.push(describePass(`pass 2: ${chosen.length} API/delivery file(s)`, 'startHerald on postgres', pass2), ...pass2.failures);
  } else {
    results.push('SKIPPED pass 2: no file matches the filters');
  }
  if (skipped.length) results.push(`        not run on postgres (read the SQLite file): ${skipped.map((s) => s.split(' ')[0]).join(', ')}`);
} else {
  results.push('SKIPPED pass 2 (API and delivery suites on postgres): PostgreSQL not available');
}

if (pgOn) {
  const leftovers = await dropLeftovers(url, env.HERALD_TEST_DB_REGISTRY).catch(() => 0);
  if (leftovers) results.push(`        dropped ${leftovers} test database(s) that tests created and left behind`);
}
rmSync(scratch, { recursive: true, force: true });

const ok = pass1.status === 0 && pass2.status === 0;
banner(`${ok ? 'PASSED' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s. ${backends}`, ...results);
process.exit(ok ? 0 : 1);
