// Herald under test: start and stop `herald serve` processes, migrate and seed their stores
// directly (better-sqlite3 / pg, the same drivers Herald uses), and call its HTTP API.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_SECRET, eventData, pidsWhere, run, withTimeout } from './util.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// BENCH_HERALD_CLI measures another build (a candidate fix, say) with the same harness.
/**
 * Read at each use, not once at import: bench/ab.mjs switches builds between runs of one
 * process. (Read once, every run measured the first build: A/B comparisons made before this
 * was fixed compared a build with itself.)
 */
export const heraldCli = () => process.env.BENCH_HERALD_CLI ?? join(ROOT, 'packages/server/dist/cli.js');
export const CLI = heraldCli();
export const ADMIN_TOKEN = 'hadm_bench_0123456789abcdef0123456789';
export const SECRET_KEY_HEX = 'a'.repeat(16) + 'b'.repeat(16) + 'c'.repeat(16) + 'd'.repeat(16);
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Herald's own modules (built), for its id format and its at-rest encryption of secrets. */
async function heraldModules() {
  const { SecretBox } = await import(join(heraldCli(), '../core/secret-box.js'));
  const { newId } = await import(join(heraldCli(), '../core/ids.js'));
  return { box: new SecretBox(Buffer.from(SECRET_KEY_HEX, 'hex')), newId };
}

export function heraldEnv(databaseUrl, extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HERALD_DATABASE_URL: databaseUrl,
    HERALD_PORT: '0',
    HERALD_DEV: 'true', // http:// loopback receivers
    HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
    HERALD_SECRET_KEY: SECRET_KEY_HEX,
    HERALD_LOG_LEVEL: 'info', // the default: per-request log lines are part of the cost
    ...extra,
  };
}

export async function migrate(databaseUrl) {
  await run(process.execPath, [heraldCli(), 'migrate'], { env: heraldEnv(databaseUrl), cwd: ROOT });
}

/**
 * One `herald serve` process. Resolves once its `herald started` line is out, with the port
 * and the time it logged (epoch ms), which is when its worker begins to claim.
 */
export async function startHerald(databaseUrl, { role = 'all', env = {}, cpuProfDir = null, name = 'herald' } = {}) {
  const execArgv = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.cpuprofile`] : [];
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  const proc = spawn(process.execPath, [...execArgv, heraldCli(), 'serve'], {
    cwd: ROOT,
    env: heraldEnv(databaseUrl, { HERALD_ROLE: role, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const h = { proc, pid: proc.pid, cli: proc.spawnargs.at(-2), port: null, url: null, startedAt: null, errors: [], stderr: '' };
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  h.exited = exited;
  proc.stderr.on('data', (d) => (h.stderr = (h.stderr + d).slice(-4000)));
  const started = new Promise((resolveStarted, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      // Parsed only while starting and for errors (pino writes `level` first): at info level
      // Herald logs a line per API request, and parsing them all would take CPU from the run.
      if (h.startedAt !== null && !line.startsWith('{"level":5') && !line.startsWith('{"level":6')) return;
      if (!line.startsWith('{')) return;
      let m;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.level >= 50 && h.errors.length < 20) h.errors.push(m.msg + (m.err ? `: ${m.err.message}` : ''));
      if (m.msg === 'herald started') {
        Object.assign(h, { port: m.port, url: m.url, startedAt: m.time });
        resolveStarted(h);
      }
    });
    void exited.then(({ code }) => reject(new Error(`herald exited (code ${code}) before starting: ${h.stderr.slice(-1500)}`)));
  });
  await withTimeout(started, 30_000, 'for herald to start');
  h.stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  };
  return h;
}

/**
 * A worker's claim and outcome-write figures from its /metrics (Prometheus text): how many
 * claims, how long they took, how many deliveries they leased; the same for outcome batches.
 * Summed over the given processes. null when a process does not answer.
 */
export async function workStats(urls) {
  const sum = { claims: 0, claimSeconds: 0, claimed: 0, writes: 0, writeSeconds: 0, written: 0 };
  const pick = {
    herald_claim_duration_seconds_count: 'claims', herald_claim_duration_seconds_sum: 'claimSeconds', herald_claimed_deliveries_total: 'claimed',
    herald_outcome_write_duration_seconds_count: 'writes', herald_outcome_write_duration_seconds_sum: 'writeSeconds', herald_outcomes_written_total: 'written',
  };
  for (const url of urls) {
    let text;
    try {
      text = await (await fetch(`${url}/metrics`)).text();
    } catch {
      return null;
    }
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (m && pick[m[1]]) sum[pick[m[1]]] += Number(m[2]);
    }
  }
  return sum;
}

/** POST/GET Herald's API with the admin token; throws on a non-2xx answer. */
export async function api(baseUrl, method, path, body) {
  const res = await fetch(baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

export async function setupAccount(baseUrl, hookUrls) {
  const acc = await api(baseUrl, 'POST', '/v1/accounts', { name: 'bench', plan: 'pro' });
  const hooks = [];
  for (const url of hookUrls) hooks.push(await api(baseUrl, 'POST', `/v1/accounts/${acc.id}/webhooks`, { url, events: ['*'], secret: BENCH_SECRET }));
  return { accountId: acc.id, webhookIds: hooks.map((w) => w.id) };
}

// ---------------- direct seeding ----------------
/**
 * A backlog written straight into the store, as a publisher would have left it: one account,
 * `hookUrls` webhooks (secret sealed with Herald's key), and `groups` of events, each event
 * fanned out to the group's webhooks as `pending` deliveries with attempts 0, due at `dueAt`.
 * Rows go in with the same shape `Store.publishMany` writes.
 */
export async function seedBacklog(sink, { hookUrls, groups, dataBytes = 1024, onProgress, singleTx = false }) {
  const { box, newId } = await heraldModules();
  const now = Date.now();
  const accountId = newId('acc', now);
  await sink.insert('accounts', ['id', 'name', 'plan', 'created_at', 'updated_at'], [[accountId, 'bench', 'pro', now, now]]);
  const hookIds = hookUrls.map(() => newId('wh', now));
  await sink.insert(
    'webhooks',
    ['id', 'account_id', 'url', 'description', 'events', 'headers_enc', 'secret_enc', 'enabled', 'disabled_reason', 'created_at', 'updated_at'],
    hookUrls.map((url, i) => [hookIds[i], accountId, url, '', '["*"]', null, box.seal(BENCH_SECRET), 1, null, now, now]),
  );
  // singleTx: every row becomes visible at one commit (the clock of a run can start there).
  const batchTx = singleTx ? (fn) => fn() : (fn) => sink.tx(fn);
  const all = singleTx ? (fn) => sink.tx(fn) : (fn) => fn();
  const BATCH = 2000;
  let seq = 0;
  let written = 0;
  const ids = groups.map(() => []);
  await all(async () => {
  for (const [gi, g] of groups.entries()) {
    for (let start = 0; start < g.events; start += BATCH) {
      const ev = [];
      const dl = [];
      for (let i = start; i < Math.min(g.events, start + BATCH); i++) {
        const created = (g.createdAt ?? now) + Math.floor(i / 1000); // a few distinct ms, like real traffic
        const eid = newId('evt', created);
        ev.push([eid, accountId, 'content.generated', created, eventData(++seq, created, dataBytes), null]);
        for (const h of g.hooks) {
          const did = newId('dlv', created);
          if (g.keepIds) ids[gi].push(did);
          dl.push([did, accountId, eid, hookIds[h], 'content.generated', 'pending', 0, g.dueAt ?? created, created, created]);
        }
      }
      await batchTx(async () => {
        await sink.insert('events', ['id', 'account_id', 'type', 'created_at', 'data', 'idempotency_key'], ev);
        await sink.insert('deliveries', ['id', 'account_id', 'event_id', 'webhook_id', 'event_type', 'status', 'attempts', 'next_attempt_at', 'created_at', 'updated_at'], dl);
      });
      written += dl.length;
      onProgress?.(written);
    }
  }
  });
  return { accountId, hookIds, ids };
}

/** better-sqlite3 on the file Herald will open (it must not be running yet). */
export async function sqliteSink(path) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL'); // seeding only; Herald opens the file with its own setting
  const stmts = new Map();
  return {
    db,
    async insert(table, cols, rows) {
      const key = `${table}|${cols.length}`;
      let s = stmts.get(key);
      if (!s) stmts.set(key, (s = db.prepare(`INSERT INTO ${table} (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`)));
      for (const r of rows) s.run(...r);
    },
    async tx(fn) {
      db.exec('BEGIN');
      try {
        await fn();
        db.exec('COMMIT');
      } catch (e) {
        db.exec('ROLLBACK');
        throw e;
      }
    },
    count(sql, ...params) {
      return db.prepare(sql).pluck().get(...params);
    },
    close: () => db.close(),
  };
}

const PG_TYPES = {
  created_at: 'bigint', updated_at: 'bigint', next_attempt_at: 'bigint', attempts: 'int', enabled: 'int',
};

/** pg on a throwaway database; rows go in as one `unnest` per column per batch. */
export async function pgSink(url) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    client,
    async insert(table, cols, rows) {
      const arrays = cols.map((_, i) => rows.map((r) => r[i]));
      const sel = cols.map((c, i) => `$${i + 1}::${PG_TYPES[c] ?? 'text'}[]`).join(', ');
      await client.query(`INSERT INTO ${table} (${cols.join(',')}) SELECT * FROM unnest(${sel})`, arrays);
    },
    async tx(fn) {
      await client.query('BEGIN');
      try {
        await fn();
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      }
    },
    /** First column of the first row; `$1`-style placeholders. */
    async count(sql, ...params) {
      const r = await client.query(sql, params);
      return Number(Object.values(r.rows[0])[0]);
    },
    close: () => client.end(),
  };
}

/** A fresh PostgreSQL database for one run; `drop()` removes it (connections are forced out). */
export async function throwawayPg(tag) {
  const { default: pg } = await import('pg');
  const name = `herald_bench_${tag}_${process.pid}_${Date.now().toString(36)}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = '/' + name;
  return {
    name,
    url: u.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await a.end();
    },
  };
}

export async function pgReachable() {
  try {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** Pids of the PostgreSQL server processes that serve `dbName`, plus its shared helpers (WAL writer, checkpointer…). */
export function pgServerPids(dbName) {
  return pidsWhere((comm, cmd) => (comm === 'postgres' || cmd.startsWith('postgres')) && (cmd.includes(` ${dbName} `) || /postgres: (walwriter|checkpointer|background writer|autovacuum|logical|stats|wal)/.test(cmd) || /\/postgres\b.*-D/.test(cmd)));
}

export function builtInfo() {
  if (!existsSync(heraldCli())) throw new Error(`${heraldCli()} is missing: run \`npm run build -w packages/server\` at the repository root first`);
}

