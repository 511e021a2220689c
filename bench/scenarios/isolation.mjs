// Scenario 7, isolation: scenario 2's backlog to a healthy endpoint, plus 5,000 older deliveries
// (first in the queue) to an endpoint that never answers, bounded by HERALD_DELIVERY_TIMEOUT_MS.
// The healthy endpoint's drain rate is divided by scenario 2's, run by run. 7b repeats it with
// both webhooks on ONE origin (different paths), as two customers of one SaaS receiver would be.
import { drainSqlite, med, row } from './common.mjs';

export async function run(ctx) {
  const { healthy, stalled, timeoutMs, sameHostMaxMs, maxMs } = ctx.sizes.isolation;
  const env = { HERALD_DELIVERY_TIMEOUT_MS: String(timeoutMs) };
  const runs = [];
  let base = ctx.results['2']?.runs?.filter((r) => r.n === healthy) ?? [];
  for (let i = 0; i < ctx.sizes.runs; i++) {
    if (!base[i]) base = [...base, await drainSqlite(ctx, { n: healthy, tag: 'iso-base', maxMs })];
    const r = await drainSqlite(ctx, { n: healthy, stalled, env, tag: 'iso', maxMs });
    r.ratio = r.rate / base[i].rate;
    ctx.log(`  isolation run ${i + 1}: healthy ${r.rate.toFixed(0)} deliveries/s beside a stalled endpoint = ${(100 * r.ratio).toFixed(0)} % of ${base[i].rate.toFixed(0)}; arrived ${r.delivered}/${healthy}`);
    runs.push(r);
  }
  const same = await drainSqlite(ctx, { n: healthy, stalled, sameHost: true, env, tag: 'iso-same', maxMs: sameHostMaxMs });
  same.ratio = same.rate / med(base, (r) => r.rate);
  ctx.log(`  isolation, same origin: healthy ${same.rate.toFixed(0)} deliveries/s = ${(100 * same.ratio).toFixed(0)} %; arrived ${same.delivered}/${healthy}${same.timedOut ? ` (stopped after ${sameHostMaxMs / 1000} s)` : ''}`);
  const rows = [
    row('7', 'isolation: healthy endpoint beside a stalled one', `${healthy} healthy + ${stalled} older stalled deliveries, separate origins, timeout ${timeoutMs} ms`, runs.map((r) => r.rate), 'deliveries/s', {
      vsDrain: med(runs, (r) => r.ratio),
      allArrived: runs.every((r) => r.delivered === r.n && r.succeededInStore === r.n),
      notes: `${(100 * med(runs, (r) => r.ratio)).toFixed(0)} % of scenario 2 (paired run by run: ${runs.map((r) => (100 * r.ratio).toFixed(0) + ' %').join(', ')}); CPU Herald ${med(runs, (r) => r.cpu.pct.herald).toFixed(0)} %; all healthy arrived: ${runs.every((r) => r.delivered === r.n)}`,
    }),
    row('7b', 'isolation, both webhooks on one origin', `same, stalled webhook at /stall of the healthy receiver; stopped after ${sameHostMaxMs / 1000} s; 1 run`, [same.rate], 'deliveries/s', {
      vsDrain: same.ratio,
      notes: `${(100 * same.ratio).toFixed(0)} % of scenario 2; healthy arrived ${same.delivered}/${healthy}${same.timedOut ? ' before the cut-off' : ''}`,
    }),
  ];
  return { rows, runs, sameOrigin: same };
}
