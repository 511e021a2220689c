// Scenario 1, the limit: signed 1 KB POSTs from one process straight to the receiver, no queue
// and no database, at each concurrency; the best median is "the limit" every ratio divides by.
// Then the same POSTs at each fixed rate scenario 3 offers Herald: what a bare signed POST
// costs in CPU and latency at that rate on this machine, the floor for scenario 3's rows.
import { join } from 'node:path';
import { BENCH_DIR, startReceiver } from '../lib/context.mjs';
import { Child, CpuMeter } from '../lib/util.mjs';
import { med, row } from './common.mjs';

export async function limitRun(ctx, concurrency, rate = null) {
  const { warmupMs } = ctx.sizes.limit;
  const durationMs = rate ? ctx.sizes.e2e.durationMs : ctx.sizes.limit.durationMs;
  const receiver = await startReceiver([{ name: 'ok', mode: 'ok' }]);
  try {
    const sender = new Child(join(BENCH_DIR, 'lib/limit.mjs'), [JSON.stringify({ url: receiver.url('ok'), concurrency, warmupMs, durationMs, rate })]);
    await sender.wait('measuring', warmupMs + 10_000, 'the limit sender to warm up');
    const meter = new CpuMeter({ sender: () => [sender.pid], receiver: () => [receiver.pid] });
    const res = await sender.wait('result', durationMs + 30_000, 'the limit sender');
    const cpu = meter.stop();
    await sender.exited;
    return { ...res, cpu, cpuPerRequestMs: (cpu.ms.sender + cpu.ms.receiver) / Math.max(1, res.count) };
  } finally {
    await receiver.close();
  }
}

/** At most this many requests outstanding at a fixed rate, as scenario 3's load generator. */
const RATE_IN_FLIGHT = 64;

export async function run(ctx) {
  const { concurrencies } = ctx.sizes.limit;
  const rates = ctx.sizes.e2e.rates.filter((r) => r !== null);
  const byC = Object.fromEntries(concurrencies.map((c) => [c, []]));
  const byRate = Object.fromEntries(rates.map((r) => [r, []]));
  for (let i = 0; i < ctx.sizes.runs; i++) {
    for (const c of concurrencies) {
      const r = await limitRun(ctx, c);
      ctx.log(`  limit c=${c} run ${i + 1}: ${r.rps.toFixed(0)} req/s (p50 ${r.p50?.toFixed(2)} ms, errors ${r.errors})`);
      byC[c].push(r);
    }
    for (const rate of rates) {
      const r = await limitRun(ctx, RATE_IN_FLIGHT, rate);
      ctx.log(`  bare POSTs at ${rate}/s run ${i + 1}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50?.toFixed(2)} p99 ${r.p99?.toFixed(2)} ms, ${(r.cpuPerRequestMs * 1000).toFixed(0)} µs CPU/request (late ${r.late}, errors ${r.errors})`);
      byRate[rate].push(r);
    }
  }
  const rows = concurrencies.map((c) => {
    const rs = byC[c];
    return row('1', 'limit: signed undici POSTs, no queue', `concurrency ${c}`, rs.map((r) => r.rps), 'req/s', {
      notes: `p50 ${med(rs, (r) => r.p50).toFixed(2)} ms, p99 ${med(rs, (r) => r.p99).toFixed(2)} ms; CPU sender ${med(rs, (r) => r.cpu.pct.sender).toFixed(0)} % + receiver ${med(rs, (r) => r.cpu.pct.receiver).toFixed(0)} %; ${med(rs, (r) => r.cpuPerRequestMs * 1000).toFixed(0)} µs CPU/request; errors ${rs.reduce((a, r) => a + r.errors, 0)}`,
      cpuPerDeliveryMs: med(rs, (r) => r.cpuPerRequestMs),
    });
  });
  const best = rows.reduce((a, b) => (b.value > a.value ? b : a));
  best.isLimit = true;
  const rateRows = rates.map((rate) => {
    const rs = byRate[rate];
    return row('1', 'bare signed POSTs at a fixed rate, no queue', `${rate} req/s offered, at most ${RATE_IN_FLIGHT} in flight`, rs.map((r) => r.rps), 'req/s', {
      rate,
      latP50: med(rs, (r) => r.p50),
      latP99: med(rs, (r) => r.p99),
      cpuPerRequestMs: med(rs, (r) => r.cpuPerRequestMs),
      notes: `p50 ${med(rs, (r) => r.p50).toFixed(2)} ms, p99 ${med(rs, (r) => r.p99).toFixed(2)} ms; CPU sender ${med(rs, (r) => r.cpu.pct.sender).toFixed(0)} % + receiver ${med(rs, (r) => r.cpu.pct.receiver).toFixed(0)} %; ${med(rs, (r) => r.cpuPerRequestMs * 1000).toFixed(0)} µs CPU/request; late ${rs.reduce((a, r) => a + r.late, 0)}, errors ${rs.reduce((a, r) => a + r.errors, 0)}`,
    });
  });
  return { rows: [...rows, ...rateRows], limit: best.value, limitConfig: best.config, raw: byC, rawRates: byRate };
}
