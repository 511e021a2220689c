// Scenario 7, isolation: scenario 2's backlog to a healthy endpoint, plus 5,000 older deliveries
// (first in the queue) to an endpoint that never answers, bounded by HERALD_DELIVERY_TIMEOUT_MS.
// The healthy endpoint's drain rate is divided by a scenario 2 drain run right beside it (before
// it, then after it, alternately, as bench/ab.mjs orders builds): on a VM whose speed swings by
// a third within minutes, scenario 2's own runs, taken minutes earlier, made the ratio read
// anywhere from 71 % to 138 % for the same code. The ratio to those runs is reported too. 7b
// repeats it with both webhooks on ONE origin (different paths), as two customers of one SaaS
// receiver would be.
import { drainSqlite, med, row } from './common.mjs';

export async function run(ctx) {
  const { healthy, stalled, timeoutMs, sameHostMaxMs, maxMs } = ctx.sizes.isolation;
  const env = { HERALD_DELIVERY_TIMEOUT_MS: String(timeoutMs) };
  const runs = [];
  const base = [];
  const scenario2 = ctx.results['2']?.runs?.filter((r) => r.n === healthy) ?? [];
  for (let i = 0; i < ctx.sizes.runs; i++) {
    const reference = () => drainSqlite(ctx, { n: healthy, tag: 'iso-base', maxMs });
    const before = i % 2 === 0 ? await reference() : null;
    const r = await drainSqlite(ctx, { n: healthy, stalled, env, tag: 'iso', maxMs });
    base.push(before ?? (await reference()));
    r.ratio = r.rate / base[i].rate;
    if (scenario2.length) r.ratioToScenario2 = r.rate / med(scenario2, (x) => x.rate);
    ctx.log(`  isolation run ${i + 1}: healthy ${r.rate.toFixed(0)} deliveries/s beside a stalled endpoint = ${(100 * r.ratio).toFixed(0)} % of ${base[i].rate.toFixed(0)} (scenario 2 run ${before ? 'just before' : 'just after'})${r.ratioToScenario2 ? `; ${(100 * r.ratioToScenario2).toFixed(0)} % of scenario 2's median` : ''}; arrived ${r.delivered}/${healthy}`);
    runs.push(r);
  }
  const same = await drainSqlite(ctx, { n: healthy, stalled, sameHost: true, env, tag: 'iso-same', maxMs: sameHostMaxMs });
  same.ratio = same.rate / med(base, (r) => r.rate); // the references of 7, the nearest in time
  ctx.log(`  isolation, same origin: healthy ${same.rate.toFixed(0)} deliveries/s = ${(100 * same.ratio).toFixed(0)} %; arrived ${same.delivered}/${healthy}${same.timedOut ? ` (stopped after ${sameHostMaxMs / 1000} s)` : ''}`);
  const rows = [
    row('7', 'isolation: healthy endpoint beside a stalled one', `${healthy} healthy + ${stalled} older stalled deliveries, separate origins, timeout ${timeoutMs} ms`, runs.map((r) => r.rate), 'deliveries/s', {
      vsDrain: med(runs, (r) => r.ratio),
      allArrived: runs.every((r) => r.delivered === r.n && r.succeededInStore === r.n),
      notes: `${(100 * med(runs, (r) => r.ratio)).toFixed(0)} % of a scenario 2 drain run beside each (pairs: ${runs.map((r) => (100 * r.ratio).toFixed(0) + ' %').join(', ')}; references ${base.map((b) => b.rate.toFixed(0)).join(', ')}/s)${runs[0]?.ratioToScenario2 ? `; ${(100 * med(runs, (r) => r.ratioToScenario2)).toFixed(0)} % of scenario 2's median, run minutes earlier` : ''}; CPU Herald ${med(runs, (r) => r.cpu.pct.herald).toFixed(0)} %; all healthy arrived: ${runs.every((r) => r.delivered === r.n)}`,
    }),
    row('7b', 'isolation, both webhooks on one origin', `same, stalled webhook at /stall of the healthy receiver; stopped after ${sameHostMaxMs / 1000} s; 1 run`, [same.rate], 'deliveries/s', {
      vsDrain: same.ratio,
      notes: `${(100 * same.ratio).toFixed(0)} % of the reference drains of 7; healthy arrived ${same.delivered}/${healthy}${same.timedOut ? ' before the cut-off' : ''}`,
    }),
  ];
  return { rows, runs, sameOrigin: same };
}
