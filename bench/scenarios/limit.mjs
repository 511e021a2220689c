// Scenario 1, the limit: signed 1 KB POSTs from one process straight to the receiver, no queue
// and no database, at each concurrency; the best median is "the limit" every ratio divides by.
import { join } from 'node:path';
import { BENCH_DIR, startReceiver } from '../lib/context.mjs';
import { Child, CpuMeter } from '../lib/util.mjs';
import { med, row } from './common.mjs';

export async function limitRun(ctx, concurrency) {
  const { warmupMs, durationMs } = ctx.sizes.limit;
  const receiver = await startReceiver([{ name: 'ok', mode: 'ok' }]);
  try {
    const sender = new Child(join(BENCH_DIR, 'lib/limit.mjs'), [JSON.stringify({ url: receiver.url('ok'), concurrency, warmupMs, durationMs })]);
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

export async function run(ctx) {
  const { concurrencies } = ctx.sizes.limit;
  const byC = Object.fromEntries(concurrencies.map((c) => [c, []]));
  for (let i = 0; i < ctx.sizes.runs; i++) {
    for (const c of concurrencies) {
      const r = await limitRun(ctx, c);
      ctx.log(`  limit c=${c} run ${i + 1}: ${r.rps.toFixed(0)} req/s (p50 ${r.p50?.toFixed(2)} ms, errors ${r.errors})`);
      byC[c].push(r);
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
  return { rows, limit: best.value, limitConfig: best.config, raw: byC };
}
