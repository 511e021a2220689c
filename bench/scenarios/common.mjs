// Pieces several scenarios share: an RSS sampler, row building, and the SQLite backlog drain
// (scenario 2's measurement, reused by 5 for its SQLite row and by 7 for its baseline).
import { join } from 'node:path';
import { CpuMeter, median, procRss } from '../lib/util.mjs';
import { migrate, seedBacklog, sqliteSink, startHerald, workStats } from '../lib/herald.mjs';
import { startReceiver } from '../lib/context.mjs';

export function rssSampler(pids, everyMs = 200) {
  const list = Array.isArray(pids) ? pids : [pids];
  const read = () => list.reduce((a, p) => a + procRss(p), 0);
  const first = read();
  let peak = first;
  let last = first;
  const samples = [];
  const t = setInterval(() => {
    last = read();
    samples.push(last);
    if (last > peak) peak = last;
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      return { first, peak, last, samples };
    },
  };
}

/** One table row from per-run values: median, min and max. */
export function row(id, scenario, config, values, unit, extra = {}) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return {
    id, scenario, config, unit,
    value: median(v),
    min: v.length ? Math.min(...v) : null,
    max: v.length ? Math.max(...v) : null,
    runs: values,
    ...extra,
  };
}

export const MB = 1024 * 1024;
export const fmtMB = (b) => (b / MB).toFixed(0);

/** Median of one field over per-run result objects. */
export const med = (runs, f) => median(runs.map(f));

/**
 * Build a SQLite store with a backlog of `n` due deliveries to a receiver (plus, for
 * isolation, `stalled` older ones to an endpoint that never answers), start one Herald on it
 * and time the drain: from Herald's `herald started` (its worker claims right after) to the
 * receiver holding all `n` distinct deliveries. Then stop Herald and check the store.
 */
export async function drainSqlite(ctx, { n, stalled = 0, sameHost = false, env = {}, maxMs, tag = 'drain', cpuProfDir = null }) {
  const servers = [{ name: 'ok', mode: sameHost && stalled ? 'mixed' : 'ok' }];
  if (stalled && !sameHost) servers.push({ name: 'stall', mode: 'stall' });
  const receiver = await startReceiver(servers);
  const dbPath = join(ctx.tmp, `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.db`);
  const url = `sqlite:${dbPath}`;
  let herald = null;
  try {
    await migrate(url);
    const seedSink = await sqliteSink(dbPath);
    const now = Date.now();
    const groups = [];
    // The stalled endpoint's deliveries are older, so they sit first in the queue.
    if (stalled) groups.push({ events: stalled, hooks: [1], dueAt: now - 60_000, createdAt: now - 60_000 });
    groups.push({ events: n, hooks: [0] });
    const stallUrl = sameHost ? receiver.url('ok', '/stall') : stalled ? receiver.url('stall') : null;
    const seeded = await seedBacklog(seedSink, { hookUrls: stallUrl ? [receiver.url('ok'), stallUrl] : [receiver.url('ok')], groups });
    seedSink.close();
    const reached = receiver.expect(n, ['ok'], maxMs ?? 30_000 + n * 3);
    herald = await startHerald(url, { env, cpuProfDir, name: tag });
    const herald_started = herald.startedAt;
    const heraldCli = herald.cli;
    const meter = new CpuMeter({ herald: () => [herald.pid], receiver: () => [receiver.pid] });
    const rss = rssSampler(herald.pid);
    let timedOut = false;
    const doneAt = await reached.then((m) => m.at, () => ((timedOut = true), null));
    const cpu = meter.stop();
    const mem = rss.stop();
    const st = (await receiver.stats()).ok;
    const work = await workStats([herald.url]);
    await herald.stop();
    herald = null;
    const sink = await sqliteSink(dbPath);
    const succeeded = sink.count("SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND status = 'succeeded'", seeded.hookIds[0]);
    sink.close();
    // From Herald's own `herald started` timestamp (its worker claims right after) to the
    // receiver holding every delivery; both are epoch ms on this machine's clock.
    const windowMs = timedOut ? cpu.wallMs : doneAt - herald_started;
    return {
      n,
      work,
      delivered: st.unique,
      dups: st.dups,
      succeededInStore: succeeded,
      timedOut,
      windowMs,
      rate: (st.unique * 1000) / windowMs,
      cpu,
      cpuPerDeliveryMs: (cpu.ms.herald + cpu.ms.receiver) / Math.max(1, st.unique),
      rssPeak: mem.peak,
      heraldCli,
    };
  } finally {
    if (herald) await herald.stop();
    await receiver.close();
  }
}
