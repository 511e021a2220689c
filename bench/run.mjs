#!/usr/bin/env node
// `npm run bench` (from bench/): every scenario, median of 3 runs, one table, ratios against the
// limit measured in the same invocation, JSON in bench/results/.
//   --quick        small sizes, 1 run          --tiny     smoke-test sizes (seconds)
//   --only 2,3     these scenarios (1, the limit, always runs: every ratio needs it)
//   --runs N       override the number of runs --profile  also write a CPU profile of a backlog drain
//   --out FILE     JSON path (default bench/results/<time>-<mode>.json and results/latest.json)
import { execFileSync } from 'node:child_process';
import { cpus, totalmem, release } from 'node:os';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, makeContext } from './lib/context.mjs';
import { builtInfo, CLI, pgReachable, PG_ADMIN_URL, ROOT } from './lib/herald.mjs';
import { formatSummary, summarize } from './lib/profile-summary.mjs';
import { drainSqlite } from './scenarios/common.mjs';
import * as s1 from './scenarios/limit.mjs';
import * as s2 from './scenarios/drain.mjs';
import * as s3 from './scenarios/e2e.mjs';
import * as s4 from './scenarios/peers.mjs';
import * as s5 from './scenarios/postgres.mjs';
import * as s6 from './scenarios/memory.mjs';
import * as s7 from './scenarios/isolation.mjs';

const SCENARIOS = { 1: s1, 2: s2, 3: s3, 4: s4, 5: s5, 6: s6, 7: s7 };

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const mode = args.tiny ? 'tiny' : args.quick ? 'quick' : 'full';
const only = args.only ? new Set(['1', ...args.only.split(',').map((s) => s.trim())]) : null;
const selected = Object.keys(SCENARIOS).filter((k) => !only || only.has(k));

const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const ctx = makeContext({ mode, log });
if (args.runs) ctx.sizes = { ...ctx.sizes, runs: Number(args.runs) };

// ---------------- versions and machine ----------------
const pkgVersion = (dir) => {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
};
const sh = (cmd, a) => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
};

/** A short hash of the Herald build under test (the tree may hold others' uncommitted work). */
function distHash() {
  const h = createHash('sha256');
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.js') || e.name.endsWith('.sql')) h.update(e.name).update(readFileSync(join(d, e.name)));
    }
  };
  walk(dirname(CLI));
  return h.digest('hex').slice(0, 12);
}

async function versions() {
  const v = {
    heraldBuild: `${CLI} (sha256 ${distHash()})`,
    herald: pkgVersion(join(ROOT, 'packages/server')),
    heraldCommit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    heraldTreeDirty: Boolean(sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'packages/server/src'])),
    node: process.versions.node,
    npm: sh('npm', ['-v']),
    openssl: process.versions.openssl,
    undici: pkgVersion(join(ROOT, 'node_modules/undici')),
    betterSqlite3: pkgVersion(join(ROOT, 'node_modules/better-sqlite3')),
    pg: pkgVersion(join(ROOT, 'node_modules/pg')),
    bullmq: pkgVersion(join(BENCH_DIR, 'node_modules/bullmq')),
    ioredis: pkgVersion(join(BENCH_DIR, 'node_modules/ioredis')),
    pgBoss: pkgVersion(join(BENCH_DIR, 'node_modules/pg-boss')),
  };
  try {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(':memory:');
    v.sqlite = db.prepare('select sqlite_version()').pluck().get();
    db.close();
  } catch {
    v.sqlite = null;
  }
  if (await pgReachable()) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    v.postgresql = (await c.query('SHOW server_version')).rows[0].server_version;
    await c.end();
  }
  v.redis = sh('redis-cli', ['INFO', 'server'])?.match(/redis_version:(\S+)/)?.[1] ?? null;
  return v;
}

function machine() {
  const c = cpus();
  return { cores: c.length, cpuModel: c[0]?.model ?? null, memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), loadavg: readFileSync('/proc/loadavg', 'utf8').trim() };
}

// ---------------- table ----------------
const fmt = (x, unit) => {
  if (x === null || x === undefined) return '—';
  if (unit?.startsWith('MB')) return x.toFixed(0);
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
};

function table(rows, limit) {
  const out = ['| # | scenario | configuration | median | min–max | unit | ÷ limit | notes |', '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const base = r.ratioValue ?? r.value;
    const ratio = r.noRatio || !limit || base === null ? '—' : (base / limit).toFixed(2) + (r.ratioValue ? ' (deliveries)' : '');
    const mm = r.runs.length > 1 ? `${fmt(r.min, r.unit)}–${fmt(r.max, r.unit)}` : '—';
    out.push(`| ${r.id} | ${r.scenario} | ${r.config} | **${fmt(r.value, r.unit)}** | ${mm} | ${r.unit} | ${ratio} | ${r.notes ?? ''} |`);
  }
  return out.join('\n');
}

function targets(results, limit) {
  const find = (id, pred = () => true) => results[id]?.rows?.find(pred) ?? null;
  const drain = find('2');
  const bull = find('4', (r) => r.peer === 'bullmq');
  const boss = find('4', (r) => r.peer === 'pgboss');
  const flat1 = find('3', (r) => r.fanout === 1 && r.rate === null);
  const at1000 = find('3', (r) => r.fanout === 1 && r.rate === 1000);
  const pg2 = find('5', (r) => r.workers === 2 && r.webhooks === 1); // the 1-webhook rows; 5b is for comparison
  const mem = find('6', (r) => r.unit === 'MB peak RSS');
  const big = find('6', (r) => r.unit === 'MB RSS growth');
  const iso = find('7', (r) => r.id === '7');
  const t = [];
  const add = (target, measured, met) => t.push({ target, measured, met: measured === null ? null : met });
  add('backlog drain on SQLite ≥ 60 % of the limit', drain && limit ? `${((100 * drain.value) / limit).toFixed(0)} % (${fmt(drain.value)} of ${fmt(limit)}/s)` : null, drain && limit ? drain.value / limit >= 0.6 : null);
  add('backlog drain ≥ 2.5× the BullMQ peer', drain && bull ? `${(drain.value / bull.value).toFixed(2)}× (${fmt(drain.value)} vs ${fmt(bull.value)}/s)` : null, drain && bull ? drain.value / bull.value >= 2.5 : null);
  add('end to end ≥ 4,000 events/s on SQLite (fan-out 1, flat out)', flat1 ? `${fmt(flat1.value)} events/s` : null, flat1 ? flat1.value >= 4000 : null);
  const bare = (k) => (at1000?.bare ? ` (bare POSTs at 1,000/s: ${at1000.bare[k].toFixed(1)} ms)` : '');
  add('latency at 1,000 events/s: p50 < 3 ms', at1000 ? `${at1000.latP50?.toFixed(1)} ms${bare('latP50')}` : null, at1000 ? at1000.latP50 < 3 : null);
  add('latency at 1,000 events/s: p99 < 15 ms', at1000 ? `${at1000.latP99?.toFixed(1)} ms${bare('latP99')}` : null, at1000 ? at1000.latP99 < 15 : null);
  add('CPU per delivered event < 0.3 ms (fan-out 1 flat out: Herald + receiver + load generator)', flat1 ? `${flat1.cpuPerEventMs.toFixed(3)} ms (machine-wide /proc/stat: ${flat1.machinePerEventMs.toFixed(3)} ms)` : null, flat1 ? flat1.cpuPerEventMs < 0.3 : null);
  add('PostgreSQL with 2 worker processes ≥ 4× pg-boss', pg2 && boss ? `${(pg2.value / boss.value).toFixed(2)}× (${fmt(pg2.value)} vs ${fmt(boss.value)}/s)` : null, pg2 && boss ? pg2.value / boss.value >= 4 : null);
  add('RSS < 300 MB with 1 M pending', mem ? `${fmt(mem.value, 'MB')} MB peak` : null, mem ? mem.value < 300 : null);
  add('a 1 GB response moves RSS by < 50 MB', big ? `${big.value.toFixed(1)} MB` : null, big ? big.value < 50 : null);
  add('isolated healthy endpoint keeps ≥ 90 % of scenario 2 (a scenario 2 drain beside each run)', iso ? `${(100 * iso.vsDrain).toFixed(0)} %` : null, iso ? iso.vsDrain >= 0.9 : null);
  return t;
}

// ---------------- main ----------------
const started = Date.now();
let exitCode = 0;
try {
  builtInfo();
  const meta = { date: new Date().toISOString(), mode, command: `${process.env.BENCH_HERALD_CLI ? `BENCH_HERALD_CLI=${process.env.BENCH_HERALD_CLI} ` : ''}npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`, runs: ctx.sizes.runs, sizes: ctx.sizes, machine: machine(), versions: await versions(), heraldCli: CLI };
  log(`Herald bench (${mode}): scenarios ${selected.join(', ')}; ${meta.machine.cores} cores, Node ${meta.versions.node}; load average ${meta.machine.loadavg}`);
  for (const id of selected) {
    const t = Date.now();
    log(`scenario ${id}…`);
    try {
      ctx.results[id] = await SCENARIOS[id].run(ctx);
    } catch (e) {
      log(`  scenario ${id} FAILED: ${e.stack ?? e}`);
      ctx.results[id] = { rows: [], error: String(e.message ?? e) };
      exitCode = 1;
    }
    log(`  (${((Date.now() - t) / 1000).toFixed(0)} s)`);
  }
  let profile = null;
  if (args.profile) {
    log('profile: one backlog drain under --cpu-prof…');
    const dir = join(BENCH_DIR, 'results/profiles');
    mkdirSync(dir, { recursive: true });
    const before = new Set(readdirSync(dir));
    const r = await drainSqlite(ctx, { n: ctx.sizes.drain.n, tag: 'drain-profile', cpuProfDir: dir });
    const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'));
    profile = { rate: r.rate, file: file ? join(dir, file) : null, summary: file ? summarize(join(dir, file), 20) : null };
    if (profile.summary) log(formatSummary(profile.summary));
  }
  const limit = ctx.results['1']?.limit ?? null;
  const rows = selected.flatMap((id) => ctx.results[id]?.rows ?? []);
  const tgs = targets(ctx.results, limit);
  const m = meta.machine;
  const v = meta.versions;
  const head = [
    `Herald ${v.herald} (commit ${v.heraldCommit}${v.heraldTreeDirty ? ' + uncommitted changes in packages/server/src' : ''}; build ${v.heraldBuild.split('sha256 ')[1].slice(0, -1)}) · ${m.cores} cores (${m.cpuModel}), ${m.memGiB} GiB, Linux ${m.kernel} · Node ${v.node}, npm ${v.npm}`,
    `undici ${v.undici} · better-sqlite3 ${v.betterSqlite3} (SQLite ${v.sqlite}) · pg ${v.pg} · PostgreSQL ${v.postgresql ?? '—'} · Redis ${v.redis ?? '—'} · bullmq ${v.bullmq ?? '—'} / ioredis ${v.ioredis ?? '—'} · pg-boss ${v.pgBoss ?? '—'}`,
    `${meta.date} · \`${meta.command}\` · ${mode} sizes, median of ${ctx.sizes.runs} run(s) · the limit (scenario 1, best concurrency): ${limit ? fmt(limit) + ' req/s' : '—'}`,
  ];
  const text = [
    head.join('\n'),
    '',
    table(rows, limit),
    '',
    '| target | measured | met? |',
    '|---|---|---|',
    ...tgs.map((t) => `| ${t.target} | ${t.measured ?? 'not measured'} | ${t.met === null ? '—' : t.met ? 'met' : '**missed**'} |`),
  ].join('\n');
  process.stdout.write(text + '\n');
  const json = { meta, limit, rows, targets: tgs, profile, scenarios: ctx.results, seconds: (Date.now() - started) / 1000 };
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const outFile = args.out ?? join(resultsDir, `${meta.date.replace(/[:.]/g, '-')}-${mode}.json`);
  // Paths are written relative to the repository: results are committed, machine paths are not.
  const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
  const jsonText = JSON.stringify(json, (k, val) => (k === 'samples' ? undefined : val), 2).split(`file://${repoRoot}`).join('.').split(repoRoot).join('.');
  writeFileSync(outFile, jsonText);
  if (!args.out) writeFileSync(join(resultsDir, `latest-${mode}.json`), jsonText);
  log(`results: ${outFile} (${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
} catch (e) {
  log(`bench failed: ${e.stack ?? e}`);
  exitCode = 1;
} finally {
  ctx.cleanup();
}
process.exit(exitCode);
