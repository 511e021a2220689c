// Scenario 5: Herald on PostgreSQL with 1, 2 and 4 `--role worker` processes draining the same
// backlog, beside Herald on SQLite in one process (scenario 2's figure from this invocation).
// The workers are started first; the backlog is then committed in one transaction, and the
// clock runs from that commit (so the workers' idle poll, ≤ HERALD_POLL_INTERVAL_MS, counts).
import { startReceiver } from '../lib/context.mjs';
import { migrate, pgReachable, pgServerPids, pgSink, seedBacklog, startHerald, throwawayPg, workStats } from '../lib/herald.mjs';
import { CpuMeter, nowMs } from '../lib/util.mjs';
import { drainSqlite, med, row } from './common.mjs';

/**
 * One drain of `n` deliveries by `workers` processes. `webhooks` > 1 spreads them over that many
 * webhooks (one receiver, a path each), so the per-webhook limit no longer caps the cluster.
 * `env`: settings for every worker process (bench/ab.mjs compares builds and settings).
 */
export async function pgRun(ctx, workers, n, maxMs, webhooks = 1, env = {}, cpuProfDir = null) {
  n = Math.ceil(n / webhooks) * webhooks; // whole events: each goes to every webhook
  const db = await throwawayPg(`w${workers}h${webhooks}`);
  const receiver = await startReceiver([{ name: 'ok', mode: 'ok' }]);
  const heralds = [];
  try {
    await migrate(db.url);
    const started = await Promise.allSettled(Array.from({ length: workers }, (_, i) => startHerald(db.url, { role: 'worker', name: `pg-w${workers}-${i}`, env, cpuProfDir })));
    for (const s of started) if (s.status === 'fulfilled') heralds.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const hs = heralds;
    const sink = await pgSink(db.url);
    const reached = receiver.expect(n, ['ok'], maxMs);
    const hookUrls = Array.from({ length: webhooks }, (_, i) => receiver.url('ok', webhooks > 1 ? `/hook/${i}` : '/hook'));
    // Each event goes to every webhook: n / webhooks events, n deliveries.
    await seedBacklog(sink, { hookUrls, groups: [{ events: n / webhooks, hooks: hookUrls.map((_, i) => i) }], singleTx: true });
    const t0 = nowMs();
    const meter = new CpuMeter({ herald: () => hs.map((h) => h.pid), receiver: () => [receiver.pid], postgres: () => pgServerPids(db.name) });
    let timedOut = false;
    const doneAt = await reached.then((m) => m.at, () => ((timedOut = true), nowMs()));
    const cpu = meter.stop();
    const st = (await receiver.stats()).ok;
    const work = await workStats(hs.map((h) => h.url));
    await Promise.all(hs.map((h) => h.stop()));
    const succeeded = await sink.count("SELECT COUNT(*) FROM deliveries WHERE status = 'succeeded'");
    await sink.close();
    const windowMs = doneAt - t0;
    return {
      heraldCli: hs[0]?.cli, workers, webhooks, n, timedOut, work, delivered: st.unique, dups: st.dups, succeededInStore: succeeded,
      windowMs, rate: (st.unique * 1000) / windowMs, cpu,
      cpuPerDeliveryMs: (cpu.ms.herald + cpu.ms.receiver + cpu.ms.postgres) / Math.max(1, st.unique),
      errors: hs.flatMap((h) => h.errors),
    };
  } finally {
    await Promise.all(heralds.map((h) => h.stop()));
    await receiver.close();
    await db.drop();
  }
}

export async function run(ctx) {
  if (!(await pgReachable())) {
    ctx.log('  PostgreSQL skipped: nothing answers on 127.0.0.1:5432');
    return { rows: [], skipped: 'PostgreSQL unreachable' };
  }
  const { n, workers, maxMs, manyWebhooks } = ctx.sizes.pg;
  // 1 webhook (the rows the target is judged on), then the same backlog over many webhooks.
  const configs = [...workers.map((w) => ({ w, hooks: 1 })), ...(manyWebhooks ? workers.map((w) => ({ w, hooks: manyWebhooks })) : [])];
  const out = new Map(configs.map((c) => [c, []]));
  for (let i = 0; i < ctx.sizes.runs; i++) {
    for (const c of configs) {
      const w = c.w;
      const r = await pgRun(ctx, w, n, maxMs, c.hooks);
      ctx.log(`  postgres ${w} worker(s), ${c.hooks} webhook(s) run ${i + 1}: ${r.rate.toFixed(0)} deliveries/s; CPU Herald ${r.cpu.pct.herald.toFixed(0)} %, PostgreSQL ${r.cpu.pct.postgres.toFixed(0)} %, receiver ${r.cpu.pct.receiver.toFixed(0)} %; arrived ${r.delivered}/${r.n}, succeeded in store ${r.succeededInStore}, dups ${r.dups}${r.timedOut ? ' (TIMED OUT)' : ''}${r.errors.length ? ' errors: ' + r.errors.slice(0, 3).join('; ') : ''}`);
      out.get(c).push(r);
    }
  }
  const rows = [];
  // The SQLite reference: scenario 2 of this invocation, or its own runs at the same size.
  let sqliteRuns = ctx.results['2']?.runs?.filter((r) => r.n === n);
  if (!sqliteRuns?.length) {
    sqliteRuns = [];
    for (let i = 0; i < ctx.sizes.runs; i++) sqliteRuns.push(await drainSqlite(ctx, { n, tag: 'pg-ref', maxMs: ctx.sizes.drain.maxMs }));
  }
  rows.push(row('5', 'Herald, SQLite, 1 process (reference)', `${n} due deliveries (scenario 2 runs)`, sqliteRuns.map((r) => r.rate), 'deliveries/s', {
    notes: `CPU Herald ${med(sqliteRuns, (r) => r.cpu.pct.herald).toFixed(0)} %`,
    cpuPerDeliveryMs: med(sqliteRuns, (r) => r.cpuPerDeliveryMs),
  }));
  for (const c of configs) {
    const { w, hooks } = c;
    const rs = out.get(c);
    rows.push(row(hooks > 1 ? '5b' : '5', `Herald, PostgreSQL, ${w} worker process${w > 1 ? 'es' : ''}${hooks > 1 ? `, ${hooks} webhooks` : ''}`, `${n} due deliveries, ${hooks > 1 ? `${hooks} webhooks (one receiver, a path each)` : '1 webhook'}, defaults`, rs.map((r) => r.rate), 'deliveries/s', {
      workers: w,
      webhooks: hooks,
      stopped: rs.filter((r) => r.timedOut).length,
      cpuPerDeliveryMs: med(rs, (r) => r.cpuPerDeliveryMs),
      allArrived: rs.every((r) => r.delivered === r.n && r.succeededInStore === r.n),
      notes: `${rs.some((r) => r.timedOut) ? `${rs.filter((r) => r.timedOut).length} run(s) stopped at the ${maxMs / 1000} s cap (rate = what arrived by then); ` : ''}CPU Herald ${med(rs, (r) => r.cpu.pct.herald).toFixed(0)} % (all processes) + PostgreSQL ${med(rs, (r) => r.cpu.pct.postgres).toFixed(0)} % + receiver ${med(rs, (r) => r.cpu.pct.receiver).toFixed(0)} %; ${med(rs, (r) => r.cpuPerDeliveryMs * 1000).toFixed(0)} µs CPU/delivery; all arrived: ${rs.every((r) => r.delivered === r.n && r.succeededInStore === r.n)}, dups ${rs.reduce((a, r) => a + r.dups, 0)}`,
    }));
  }
  return { rows, runs: [...out.values()].flat() };
}
