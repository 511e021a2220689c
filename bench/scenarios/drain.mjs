// Scenario 2: a backlog of due deliveries already in a SQLite store, drained by one Herald.
import { drainSqlite, med, row } from './common.mjs';

export async function run(ctx) {
  const { n } = ctx.sizes.drain;
  const runs = [];
  for (let i = 0; i < ctx.sizes.runs; i++) {
    const r = await drainSqlite(ctx, { n, tag: 'drain', maxMs: ctx.sizes.drain.maxMs });
    ctx.log(`  drain run ${i + 1}: ${r.rate.toFixed(0)} deliveries/s, herald ${r.cpu.pct.herald.toFixed(0)} % CPU, receiver ${r.cpu.pct.receiver.toFixed(0)} %, arrived ${r.delivered}/${n}, dups ${r.dups}, succeeded in store ${r.succeededInStore}`);
    runs.push(r);
  }
  const stopped = runs.filter((r) => r.timedOut).length;
  const rows = [
    row('2', 'backlog drain, SQLite, 1 process', `${n} due deliveries, 1 webhook, defaults`, runs.map((r) => r.rate), 'deliveries/s', {
      notes: `CPU Herald ${med(runs, (r) => r.cpu.pct.herald).toFixed(0)} % + receiver ${med(runs, (r) => r.cpu.pct.receiver).toFixed(0)} % (machine ${med(runs, (r) => r.cpu.machinePct).toFixed(0)} % of 200); ${med(runs, (r) => r.cpuPerDeliveryMs * 1000).toFixed(0)} µs CPU/delivery (Herald ${med(runs, (r) => (r.cpu.ms.herald / r.n) * 1000).toFixed(0)}); peak RSS ${med(runs, (r) => r.rssPeak / 2 ** 20).toFixed(0)} MB; ${stopped ? `${stopped} run(s) stopped at the ${ctx.sizes.drain.maxMs / 1000} s cap (rate = what arrived by then); ` : ''}all arrived: ${runs.every((r) => r.delivered === r.n && r.succeededInStore === r.n)}, dups ${runs.reduce((a, r) => a + r.dups, 0)}`,
      cpuPerDeliveryMs: med(runs, (r) => r.cpuPerDeliveryMs),
      allArrived: runs.every((r) => r.delivered === r.n && r.succeededInStore === r.n),
    }),
  ];
  return { rows, runs };
}
