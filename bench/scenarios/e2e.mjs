// Scenario 3, end to end: a load generator (its own process) publishes through Herald's HTTP
// API at a fixed rate, then flat out; Herald (SQLite, one process) fans each event out to 1 or
// 10 webhooks (one receiver port each, i.e. distinct origins, as distinct customers would be).
// Latency is publish → receiver, from `t0` in the payload.
import { join } from 'node:path';
import { BENCH_DIR, startReceiver } from '../lib/context.mjs';
import { ADMIN_TOKEN, setupAccount, startHerald } from '../lib/herald.mjs';
import { Child, CpuMeter, sleep, withTimeout } from '../lib/util.mjs';
import { med, row } from './common.mjs';

const MAX_IN_FLIGHT = 64; // publish requests outstanding at most

/** Pause between the warm-up and the measured phase, so the warm-up's tail (outcome writes, JIT) is over. */
const SETTLE_MS = 500;

async function loadgen(baseUrl, accountId) {
  const c = new Child(join(BENCH_DIR, 'lib/loadgen.mjs'), [JSON.stringify({ baseUrl, accountId, token: ADMIN_TOKEN, maxInFlight: MAX_IN_FLIGHT })]);
  await c.wait('ready', 20_000, 'the load generator to start');
  /** One phase: `count` events at `rate`/s (null: flat out); resolves with its result. */
  c.phase = (o, timeoutMs, what) => c.request({ type: 'run', ...o }, 'result', timeoutMs).catch((e) => {
    throw new Error(`${what}: ${e.message}`);
  });
  c.close = async () => {
    try {
      c.send({ type: 'close' });
    } catch {
      // already gone
    }
    await withTimeout(c.exited, 5000, 'the load generator to exit').catch(() => c.kill());
  };
  return c;
}

/** One measured burst on a fresh Herald: each rate gets its own store, so no backlog carries over. */
export async function e2eRun(ctx, { fanout, rate, count, drainMaxMs, tag, env = {}, cpuProfDir = null }) {
  const names = Array.from({ length: fanout }, (_, i) => `h${i}`);
  const receiver = await startReceiver(names.map((name) => ({ name, mode: 'ok' })));
  let herald = null;
  let gen = null;
  try {
    herald = await startHerald(`sqlite:${join(ctx.tmp, `${tag}-${Date.now()}.db`)}`, { name: tag, env, cpuProfDir });
    const { accountId } = await setupAccount(herald.url, names.map((n) => receiver.url(n)));
    // Warm-up: JIT, connection pools, prepared statements; then forget it.
    const warm = Math.ceil(ctx.sizes.e2e.warmup / fanout); // about the same number of deliveries whatever the fan-out
    // The same load generator process publishes the warm-up and the measured phase.
    gen = await loadgen(herald.url, accountId);
    await gen.phase({ rate: null, count: warm, maxMs: 30_000 }, 40_000, 'the warm-up publisher');
    await receiver.expect(warm * fanout, null, 45_000);
    await sleep(SETTLE_MS);
    await receiver.reset();

    const meter = new CpuMeter({ herald: () => [herald.pid], receiver: () => [receiver.pid] });
    const pub = await gen.phase({ rate, count, maxMs: ctx.sizes.e2e.publishMaxMs }, ctx.sizes.e2e.publishMaxMs + 45_000, 'the publisher');
    const expected = pub.ok * fanout;
    let timedOut = false;
    const doneAt = await receiver.expect(expected, null, drainMaxMs).then((m) => m.at, () => ((timedOut = true), null));
    const cpu = meter.stop();
    const st = (await receiver.stats())['*'];
    const end = doneAt ?? st.lastAt;
    const windowMs = end - pub.firstSendAt;
    const procMs = cpu.ms.herald + cpu.ms.receiver + pub.cpuMs;
    return {
      fanout, rate, count, pub, timedOut,
      delivered: st.unique, expected, dups: st.dups,
      windowMs,
      eventsPerS: (st.unique / fanout / windowMs) * 1000,
      deliveriesPerS: (st.unique / windowMs) * 1000,
      latP50: st.latP50, latP99: st.latP99,
      cpu,
      loadgenPct: (100 * pub.cpuMs) / cpu.wallMs,
      cpuPerEventMs: procMs / Math.max(1, st.unique / fanout),
      cpuPerDeliveryMs: procMs / Math.max(1, st.unique),
      machinePerEventMs: cpu.machineBusyMs / Math.max(1, st.unique / fanout),
      heraldErrors: herald.errors,
      heraldCli: herald.cli,
    };
  } finally {
    if (gen) await gen.close();
    if (herald) await herald.stop();
    await receiver.close();
  }
}

export async function run(ctx) {
  const { rates, durationMs, flatCount, fanouts } = ctx.sizes.e2e;
  const configs = [];
  for (const fanout of fanouts) for (const rate of rates) configs.push({ fanout, rate, count: rate ? Math.round((rate * durationMs) / 1000) : flatCount[fanout] });
  const results = new Map(configs.map((c) => [c, []]));
  const { drainMaxMs } = ctx.sizes.e2e;
  for (let i = 0; i < ctx.sizes.runs; i++) {
    for (const c of configs) {
      let r;
      try {
        r = await e2eRun(ctx, { ...c, drainMaxMs, tag: `e2e-f${c.fanout}-r${c.rate ?? 'max'}` });
      } catch (e) {
        // One failed run (Herald too slow to answer, say) must not lose the others.
        ctx.log(`  e2e fan-out ${c.fanout} ${c.rate ? c.rate + '/s' : 'flat out'} run ${i + 1} FAILED: ${e.message}`);
        results.get(c).push({ failed: e.message });
        continue;
      }
      ctx.log(`  e2e fan-out ${c.fanout} ${c.rate ? c.rate + '/s' : 'flat out'} run ${i + 1}: published ${r.pub.ok} at ${r.pub.publishRate.toFixed(0)}/s (errors ${r.pub.errors}, late ${r.pub.late}); delivered ${r.delivered}/${r.expected} → ${r.eventsPerS.toFixed(0)} events/s, ${r.deliveriesPerS.toFixed(0)} deliveries/s; latency p50 ${r.latP50?.toFixed(1)} p99 ${r.latP99?.toFixed(1)} ms; herald ${r.cpu.pct.herald.toFixed(0)} % CPU${r.timedOut ? ' (NOT ALL ARRIVED in time)' : ''}`);
      results.get(c).push(r);
    }
  }
  const rows = configs.map((c) => {
    const failed = results.get(c).filter((r) => r.failed);
    const rs = results.get(c).filter((r) => !r.failed);
    if (!rs.length) return row('3', `end to end via API, SQLite, fan-out ${c.fanout}`, `${c.rate ? `${c.rate} events/s offered` : 'flat out'}`, [null], 'events/s', { fanout: c.fanout, rate: c.rate, allArrived: false, notes: `every run failed: ${failed[0].failed}` });
    const complete = !failed.length && rs.every((r) => r.delivered === r.expected && r.pub.errors === 0);
    // Fan-out 1 at a fixed rate: beside bare signed POSTs at the same rate (scenario 1, this run).
    const bare = c.fanout === 1 && c.rate ? ctx.results['1']?.rows?.find((r) => r.rate === c.rate) : null;
    const cpuPerEventMs = med(rs, (r) => r.cpuPerEventMs);
    const vsBare = bare
      ? `; bare POSTs at this rate: p50 ${bare.latP50.toFixed(1)} ms, p99 ${bare.latP99.toFixed(1)} ms, ${Math.round(bare.cpuPerRequestMs * 1000)} µs CPU/request (Herald's CPU/event ${(cpuPerEventMs / bare.cpuPerRequestMs).toFixed(1)}× it)`
      : '';
    return row('3', `end to end via API, SQLite, fan-out ${c.fanout}`, `${c.rate ? `${c.rate} events/s offered` : 'flat out'} (${c.count} events → ${c.count * c.fanout} deliveries)`, rs.map((r) => r.eventsPerS), 'events/s', {
      deliveriesPerS: med(rs, (r) => r.deliveriesPerS),
      ratioValue: med(rs, (r) => r.deliveriesPerS),
      latP50: med(rs, (r) => r.latP50),
      latP99: med(rs, (r) => r.latP99),
      cpuPerEventMs,
      bare: bare ? { latP50: bare.latP50, latP99: bare.latP99, cpuPerRequestMs: bare.cpuPerRequestMs } : null,
      machinePerEventMs: med(rs, (r) => r.machinePerEventMs),
      allArrived: complete,
      fanout: c.fanout,
      rate: c.rate,
      notes: `${med(rs, (r) => r.deliveriesPerS).toFixed(0)} deliveries/s; published at ${med(rs, (r) => r.pub.publishRate).toFixed(0)}/s (API p50 ${med(rs, (r) => r.pub.ackP50).toFixed(1)} ms); latency p50 ${med(rs, (r) => r.latP50)?.toFixed(1)} ms, p99 ${med(rs, (r) => r.latP99)?.toFixed(1)} ms; CPU Herald ${med(rs, (r) => r.cpu.pct.herald).toFixed(0)} % + receiver ${med(rs, (r) => r.cpu.pct.receiver).toFixed(0)} % + load gen ${med(rs, (r) => r.loadgenPct).toFixed(0)} %; ${med(rs, (r) => r.cpuPerEventMs).toFixed(3)} ms CPU/event (machine-wide ${med(rs, (r) => r.machinePerEventMs).toFixed(3)}); ${complete ? 'all arrived' : 'NOT all arrived in time: ' + rs.map((r) => `${r.delivered}/${r.expected}`).join(', ')}${failed.length ? `; ${failed.length} run(s) failed (${failed[0].failed})` : ''}; publish errors ${rs.reduce((a, r) => a + r.pub.errors, 0)}, dups ${rs.reduce((a, r) => a + r.dups, 0)}${vsBare}`,
    });
  });
  return { rows, runs: [...results.values()].flat() };
}
