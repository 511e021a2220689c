// Scenario 4: the same backlog drained by general-purpose queues: BullMQ on Redis and pg-boss on
// PostgreSQL, each worker signing and POSTing with undici to the same receiver. Settings are the
// best ones of research/performance-anchors.md (BullMQ concurrency 256; pg-boss 16 work() loops
// × batch 64, polling every 0.5 s).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, startReceiver } from '../lib/context.mjs';
import { pgServerPids, throwawayPg } from '../lib/herald.mjs';
import { Child, CpuMeter, nowMs, pidsWhere } from '../lib/util.mjs';
import { med, row } from './common.mjs';

export const peersInstalled = () => existsSync(join(BENCH_DIR, 'node_modules/bullmq')) && existsSync(join(BENCH_DIR, 'node_modules/pg-boss'));

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const PEERS = {
  bullmq: { label: 'BullMQ + Redis (no persistence)', config: 'concurrency 256', opts: { concurrency: 256 } },
  pgboss: { label: 'pg-boss + PostgreSQL', config: '16 work() × batch 64, poll 0.5 s', opts: { loops: 16, batchSize: 64, pollingIntervalSeconds: 0.5 } },
};

export async function peerRun(ctx, kind, n) {
  const receiver = await startReceiver([{ name: 'ok', mode: 'ok' }]);
  const queue = `herald_bench_${process.pid}_${Date.now().toString(36)}`;
  let db = null;
  let child = null;
  try {
    if (kind === 'pgboss') db = await throwawayPg('pgboss');
    child = new Child(join(BENCH_DIR, 'lib/peer.mjs'), [JSON.stringify({ kind, n, url: receiver.url('ok'), redisUrl: REDIS_URL, dbUrl: db?.url, queue, ...PEERS[kind].opts })], { cwd: BENCH_DIR });
    await child.wait('seeded', 180_000, `${kind} to enqueue ${n} jobs`);
    const server = kind === 'bullmq' ? () => pidsWhere((comm) => comm === 'redis-server') : () => pgServerPids(db.name);
    const meter = new CpuMeter({ worker: () => [child.pid], receiver: () => [receiver.pid], server });
    const reached = receiver.expect(n, ['ok'], 60_000 + n * 10);
    const started = await child.request({ type: 'go' }, 'started', 30_000);
    let timedOut = false;
    const doneAt = await reached.then((m) => m.at, () => ((timedOut = true), nowMs()));
    const cpu = meter.stop();
    const st = (await receiver.stats()).ok;
    const res = await child.request({ type: 'stop' }, 'result', 30_000).catch(() => ({ errors: null }));
    const windowMs = doneAt - started.at;
    return {
      kind, n, timedOut, delivered: st.unique, dups: st.dups, errors: res.errors,
      windowMs, rate: (st.unique * 1000) / windowMs, cpu,
      cpuPerDeliveryMs: (cpu.ms.worker + cpu.ms.receiver + cpu.ms.server) / Math.max(1, st.unique),
    };
  } finally {
    if (child) await child.kill(10_000);
    await receiver.close();
    if (db) await db.drop();
  }
}

export async function run(ctx) {
  if (!peersInstalled()) {
    ctx.log('  peers skipped: bench/node_modules is missing (run `npm ci` in bench/)');
    return { rows: [], skipped: 'bench/node_modules missing' };
  }
  const { n, runs: peerRuns } = ctx.sizes.peers;
  const out = { bullmq: [], pgboss: [] };
  for (let i = 0; i < Math.min(ctx.sizes.runs, peerRuns); i++) {
    for (const kind of ['bullmq', 'pgboss']) {
      const r = await peerRun(ctx, kind, n);
      ctx.log(`  ${kind} run ${i + 1}: ${r.rate.toFixed(0)} jobs/s; CPU worker ${r.cpu.pct.worker.toFixed(0)} %, ${kind === 'bullmq' ? 'Redis' : 'PostgreSQL'} ${r.cpu.pct.server.toFixed(0)} %, receiver ${r.cpu.pct.receiver.toFixed(0)} %; arrived ${r.delivered}/${n}, dups ${r.dups}${r.timedOut ? ' (TIMED OUT)' : ''}`);
      out[kind].push(r);
    }
  }
  const rows = Object.entries(out).map(([kind, rs]) =>
    row('4', `peer: ${PEERS[kind].label}`, `${n} jobs backlog, ${PEERS[kind].config}`, rs.map((r) => r.rate), 'jobs/s', {
      peer: kind,
      cpuPerDeliveryMs: med(rs, (r) => r.cpuPerDeliveryMs),
      allArrived: rs.every((r) => r.delivered === r.n),
      notes: `CPU worker ${med(rs, (r) => r.cpu.pct.worker).toFixed(0)} % + ${kind === 'bullmq' ? 'Redis' : 'PostgreSQL'} ${med(rs, (r) => r.cpu.pct.server).toFixed(0)} % + receiver ${med(rs, (r) => r.cpu.pct.receiver).toFixed(0)} %; ${med(rs, (r) => r.cpuPerDeliveryMs * 1000).toFixed(0)} µs CPU/job; ${rs.length} run(s); all arrived: ${rs.every((r) => r.delivered === r.n)}, dups ${rs.reduce((a, r) => a + r.dups, 0)}`,
    }),
  );
  return { rows, runs: out };
}
