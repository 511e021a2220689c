// Smoke test of the bench (not the benchmark itself): every Herald scenario at tiny size, in
// well under a minute, with only the root node_modules installed. The peer queues need
// bench/node_modules, so they run only where `npm ci` was done in bench/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BENCH = fileURLToPath(new URL('..', import.meta.url));
const ROOT = join(BENCH, '..');
const peers = existsSync(join(BENCH, 'node_modules/bullmq')) && existsSync(join(BENCH, 'node_modules/pg-boss'));
const only = ['2', '3', '5', '6', '7', ...(peers ? ['4'] : [])];

interface Row { id: string; scenario: string; config: string; unit: string; value: number | null; runs: unknown[]; allArrived?: boolean; notes?: string; rate?: number | null; fanout?: number; cpuPerRequestMs?: number; latP50?: number; bare?: { latP50: number } | null }
interface Result { meta: { machine: { cores: number }; versions: { node: string; herald: string }; mode: string }; limit: number; rows: Row[]; targets: Array<{ target: string; met: boolean | null }>; scenarios: Record<string, { skipped?: string; error?: string }> }

describe('bench smoke (tiny sizes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'result.json');

  it('runs every Herald scenario, prints one table and writes the JSON', () => {
    if (!existsSync(join(ROOT, 'packages/server/dist/cli.js'))) throw new Error('build the server first (npm run build -w packages/server)');
    const r = spawnSync(process.execPath, [join(BENCH, 'run.mjs'), '--tiny', '--only', only.join(','), '--out', out], { cwd: BENCH, encoding: 'utf8', timeout: 150_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toContain('| # | scenario |');
    expect(r.stdout).toMatch(/Node 20|Node \d+/);

    const res = JSON.parse(readFileSync(out, 'utf8')) as Result;
    expect(res.meta.mode).toBe('tiny');
    expect(res.meta.machine.cores).toBeGreaterThan(0);
    expect(res.limit).toBeGreaterThan(0);
    for (const id of only) expect(res.scenarios[id]?.error, `scenario ${id}`).toBeUndefined();
    const ids = new Set(res.rows.map((x) => x.id));
    for (const id of ['1', '2', '3', '6', '7', '7b']) expect(ids, `a row for scenario ${id}`).toContain(id);
    // Scenario 5 may only be skipped for want of a PostgreSQL server.
    if (res.scenarios['5']?.skipped) expect(res.scenarios['5'].skipped).toBe('PostgreSQL unreachable');
    else for (const id of ['5', '5b']) expect(ids).toContain(id);
    if (peers) expect(res.rows.filter((x) => x.id === '4').map((x) => x.scenario).join()).toMatch(/BullMQ.*pg-boss/);
    for (const row of res.rows) {
      expect(row.value, `${row.id} ${row.config}`).toBeTypeOf('number');
      expect(row.runs.length).toBeGreaterThan(0);
      // Every scenario that is meant to finish delivered everything, exactly once per id. Not
      // meant to: the limit (no queue), the SQLite reference row, delivering from 1 M pending for
      // a fixed window, and 7b (stopped after a fixed time).
      const windowed = row.id === '1' || row.id === '7b' || row.unit === 'MB peak RSS' || row.scenario.includes('(reference)');
      if (!windowed) expect(row.allArrived, `${row.id} ${row.scenario} ${row.config}: ${row.notes}`).toBe(true);
    }
    // Scenario 1 also sends bare signed POSTs at each fixed rate of scenario 3, and scenario 3's
    // fan-out 1 rows at that rate carry them (tiny sizes offer 200/s).
    const bare = res.rows.find((x) => x.id === '1' && x.rate === 200);
    expect(bare?.value, 'bare POSTs at 200/s').toBeGreaterThan(150);
    expect(bare?.cpuPerRequestMs).toBeGreaterThan(0);
    const at200 = res.rows.find((x) => x.id === '3' && x.fanout === 1 && x.rate === 200);
    expect(at200?.bare?.latP50).toBe(bare?.latP50);
    expect(at200?.notes).toContain('bare POSTs at this rate');
    expect(res.targets.length).toBe(10);
  }, 170_000);

  it('ab.mjs runs each build it is given, alternately', () => {
    const cli = join(ROOT, 'packages/server/dist/cli.js');
    const ab = (...builds: string[]) =>
      spawnSync(process.execPath, [join(BENCH, 'ab.mjs'), '--scenario', 'drain', '--pairs', '2', '--n', '200', ...builds.flatMap((b) => ['--build', b])], { cwd: BENCH, encoding: 'utf8', timeout: 60_000 });
    // A second build at another path (the same files, through a symlink): ab.mjs checks that
    // the harness started the build it asked for, run by run.
    const other = join(dir, 'other-build');
    symlinkSync(join(ROOT, 'packages/server/dist'), other);
    const ok = ab(cli, `${join(other, 'cli.js')} HERALD_ENDPOINT_CONCURRENCY=4`);
    expect(ok.status, ok.stderr.slice(-3000)).toBe(0);
    expect(ok.stdout).toMatch(/pair 1 {2}.*cli\.js: [\d.]+ deliveries\/s/);
    expect(ok.stdout).toContain('medians over 2 pair(s), drain:');
    expect(ok.stdout.match(/other-build\/cli\.js HERALD_ENDPOINT_CONCURRENCY=4: /g)).toHaveLength(2);
    expect(ok.stdout).not.toContain('build not reported');
    // The build is read at each start: a second build that does not exist must fail the run
    // (read once, it would silently measure the first build twice).
    const bad = ab(cli, join(BENCH, 'no-such-build/cli.js'));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr + bad.stdout).toContain('no-such-build');
  }, 90_000);
});
