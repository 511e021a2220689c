#!/usr/bin/env node
// A/B of two (or more) Herald builds on a noisy machine: one scenario, run alternately build by
// build, pair after pair, so that both see the same moments of the machine, and in reversed
// order every other pair (A B, B A, …), since the run that goes second in a pair was seen to
// do better; prints every run and the medians. A build is a built cli.js, optionally followed by settings for it:
//
//   node ab.mjs --scenario drain --pairs 4 \
//     --build /copy/of/old/dist/cli.js --build ../packages/server/dist/cli.js
//   node ab.mjs --scenario e2e --build ../packages/server/dist/cli.js \
//     --build '../packages/server/dist/cli.js HERALD_ENDPOINT_CONCURRENCY=64'
//
// Scenarios: drain (20,000 due deliveries, scenario 2), isolation (scenario 7's run),
// e2e (fan-out 1, flat out, 20,000 events), e2e-1000 (fan-out 1, 1,000 events/s for 3 s),
// pgW and pgWxH (scenario 5: 20,000 due deliveries, W worker processes, one webhook or H of
// them, on a throwaway PostgreSQL database; a build's settings reach every worker process).
// --profile DIR has every Herald process write a CPU profile into DIR (node --cpu-prof); read one
// with `node lib/profile-summary.mjs FILE`.
// A copy of a build must sit where it can resolve Herald's node_modules (e.g. next to
// packages/server/dist), since cli.js imports its dependencies.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { makeContext } from './lib/context.mjs';
import { median } from './lib/util.mjs';
import { drainSqlite } from './scenarios/common.mjs';
import { e2eRun } from './scenarios/e2e.mjs';
import { pgRun } from './scenarios/postgres.mjs';

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'drain' },
    pairs: { type: 'string', default: '3' },
    n: { type: 'string' }, // deliveries (drain, isolation) or events (e2e); smaller for a smoke run
    build: { type: 'string', multiple: true },
    profile: { type: 'string' }, // a directory: every Herald process writes a V8 CPU profile there
  },
});
const builds = (args.build ?? []).map((spec) => {
  const [cli, ...settings] = spec.trim().split(/\s+/);
  return { label: spec, cli: resolve(cli), env: Object.fromEntries(settings.map((kv) => kv.split('='))) };
});
if (builds.length < 2) {
  process.stderr.write('ab: give at least two --build (a cli.js, optionally followed by KEY=VALUE settings)\n');
  process.exit(2);
}

const N = args.n ? Number(args.n) : null;
const cpuProfDir = args.profile ? resolve(args.profile) : null;
/** Claims and outcome writes, from the worker's metrics (herald_claim_*, herald_outcome_write_*). */
const workExtra = (w) => (w && w.claims
  ? `; ${w.claims} claims of ${(w.claimed / w.claims).toFixed(1)} at ${((w.claimSeconds / w.claims) * 1000).toFixed(2)} ms, ${w.writes} outcome writes of ${(w.written / Math.max(1, w.writes)).toFixed(1)} at ${((w.writeSeconds / Math.max(1, w.writes)) * 1000).toFixed(2)} ms`
  : '');
const pgExtra = (r) => `${Math.round(r.cpuPerDeliveryMs * 1000)} µs CPU per delivery (Herald ${r.cpu.pct.herald.toFixed(0)} %, PostgreSQL ${r.cpu.pct.postgres.toFixed(0)} %)${workExtra(r.work)}`;
const SCENARIOS = {
  drain: { unit: 'deliveries/s', run: (ctx, s, env) => s.drainSqlite(ctx, { n: N ?? 20_000, maxMs: 60_000, env, cpuProfDir }), figure: (r) => r.rate, extra: (r) => `${Math.round((1000 * r.cpu.ms.herald) / r.delivered)} µs Herald CPU per delivery${workExtra(r.work)}` },
  isolation: {
    unit: 'deliveries/s',
    run: (ctx, s, env) => s.drainSqlite(ctx, { n: N ?? 20_000, stalled: Math.ceil((N ?? 20_000) / 4), maxMs: 60_000, tag: 'iso', env: { HERALD_DELIVERY_TIMEOUT_MS: '2000', ...env }, cpuProfDir }),
    figure: (r) => r.rate,
    extra: (r) => `arrived ${r.delivered}/${r.n}${workExtra(r.work)}`,
  },
  e2e: { unit: 'events/s', run: (ctx, s, env) => s.e2eRun(ctx, { fanout: 1, rate: null, count: N ?? 20_000, drainMaxMs: 8000, tag: 'e2e', env, cpuProfDir }), figure: (r) => r.eventsPerS, extra: (r) => `${r.cpuPerEventMs.toFixed(3)} ms CPU per event` },
  'e2e-1000': { unit: 'ms p50', run: (ctx, s, env) => s.e2eRun(ctx, { fanout: 1, rate: 1000, count: N ?? 3000, drainMaxMs: 8000, tag: 'e2e', env, cpuProfDir }), figure: (r) => r.latP50, extra: (r) => `p99 ${r.latP99.toFixed(1)} ms; Herald ${Math.round((1000 * r.cpu.ms.herald) / r.delivered)} µs CPU per event, ${r.cpuPerEventMs.toFixed(3)} ms with receiver and load generator` },
};
// pgW or pgWxH: scenario 5 with W worker processes and H webhooks (5b), e.g. pg2, pg4x16.
const pg = /^pg(\d+)(?:x(\d+))?$/.exec(args.scenario);
if (pg) {
  const [workers, hooks] = [Number(pg[1]), Number(pg[2] ?? 1)];
  SCENARIOS[args.scenario] = { unit: 'deliveries/s', run: (ctx, s, env) => pgRun(ctx, workers, N ?? 20_000, 60_000, hooks, env, cpuProfDir), figure: (r) => r.rate, extra: pgExtra };
}
const scenario = SCENARIOS[args.scenario];
if (!scenario) {
  process.stderr.write(`ab: unknown scenario ${args.scenario}; one of ${Object.keys(SCENARIOS).join(', ')}\n`);
  process.exit(2);
}

const ctx = makeContext({ mode: 'full', log: (...a) => process.stderr.write(a.join(' ') + '\n') });
const figures = new Map(builds.map((b) => [b.label, []]));
try {
  for (let pair = 1; pair <= Number(args.pairs); pair++) {
    for (const b of pair % 2 ? builds : [...builds].reverse()) {
      process.env.BENCH_HERALD_CLI = b.cli; // read at each start (lib/herald.mjs)
      const r = await scenario.run(ctx, { drainSqlite, e2eRun }, b.env);
      if (r.timedOut || r.delivered < (r.expected ?? r.n)) throw new Error(`${b.label}: not everything arrived (${r.delivered} of ${r.expected ?? r.n})`);
      const f = scenario.figure(r);
      figures.get(b.label).push(f);
      // The build that really ran (the harness reports what it started), not just the one asked for.
      if (r.heraldCli && resolve(r.heraldCli) !== b.cli) throw new Error(`asked for ${b.cli}, the harness started ${r.heraldCli}`);
      console.log(`pair ${pair}  ${b.label}: ${f.toFixed(1)} ${scenario.unit}; ${scenario.extra(r)}${r.heraldCli ? '' : ' (build not reported)'}`);
    }
  }
  console.log(`\nmedians over ${args.pairs} pair(s), ${args.scenario}:`);
  for (const [label, fs] of figures) console.log(`  ${median(fs).toFixed(1)} ${scenario.unit}  ${label}`);
} finally {
  ctx.cleanup();
}
process.exit(0);
