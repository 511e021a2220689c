// Scenario 6, memory. (a) One Herald on a SQLite store holding 1,000,000 pending deliveries,
// all due now towards the receiver (100,000 events of ~1 KB, each fanned out to 10 webhooks
// on 10 receiver ports): RSS sampled while it works through the backlog. (b) A receiver that
// answers with a 1 GB body: Herald must keep 64 KiB and not grow.
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startReceiver } from '../lib/context.mjs';
import { api, migrate, seedBacklog, setupAccount, sqliteSink, startHerald } from '../lib/herald.mjs';
import { nowMs, sleep } from '../lib/util.mjs';
import { fmtMB, MB, med, row, rssSampler } from './common.mjs';

async function pendingRun(ctx, templateDb, receiver, windowMs, i) {
  const dbPath = join(ctx.tmp, `mem-run-${i}.db`);
  copyFileSync(templateDb, dbPath);
  await receiver.reset();
  const herald = await startHerald(`sqlite:${dbPath}`, { name: 'memory' });
  try {
    const rss = rssSampler(herald.pid, 100);
    await sleep(windowMs);
    const mem = rss.stop();
    const st = (await receiver.stats())['*'];
    return { first: mem.first, peak: mem.peak, last: mem.last, delivered: st.unique, dups: st.dups, rate: (st.unique * 1000) / windowMs };
  } finally {
    await herald.stop();
  }
}

async function bigResponse(ctx, { bigBytes, bigCount }) {
  const receiver = await startReceiver([{ name: 'ok', mode: 'ok' }, { name: 'big', mode: 'big', bigBytes }]);
  const herald = await startHerald(`sqlite:${join(ctx.tmp, `big-${Date.now()}.db`)}`, { name: 'big' });
  try {
    const normal = await setupAccount(herald.url, [receiver.url('ok')]);
    const big = await setupAccount(herald.url, [receiver.url('big')]);
    const publish = (acc) => api(herald.url, 'POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { t0: nowMs(), pad: 'x'.repeat(900) } });
    // Warm up on ordinary deliveries, then settle, so the baseline is a working process.
    for (let i = 0; i < 300; i += 30) await Promise.all(Array.from({ length: 30 }, () => publish(normal.accountId)));
    await receiver.expect(300, ['ok'], 30_000);
    await sleep(1000);
    const base = rssSampler(herald.pid, 50);
    await sleep(1000);
    const baseline = med(base.stop().samples, (x) => x);
    const rss = rssSampler(herald.pid, 20);
    const responses = [];
    for (let i = 0; i < bigCount; i++) {
      const done = receiver.wait((m) => m.type === 'big-done', 60_000, 'the 1 GB response to end');
      await publish(big.accountId);
      responses.push(await done);
    }
    await sleep(500);
    const mem = rss.stop();
    const list = await api(herald.url, 'GET', `/v1/accounts/${big.accountId}/deliveries?status=succeeded`);
    const one = list.data[0] ? await api(herald.url, 'GET', `/v1/accounts/${big.accountId}/deliveries/${list.data[0].id}`) : null;
    const att = one?.attempts?.[0];
    return {
      baseline, peak: mem.peak, after: mem.last, delta: mem.peak - baseline, responses,
      succeeded: list.data.length,
      storedBodyBytes: att ? Buffer.byteLength(att.response_body ?? '') : null,
      truncated: att?.response_truncated ?? null,
    };
  } finally {
    await herald.stop();
    await receiver.close();
  }
}

export async function run(ctx) {
  const { pending, fanout, windowMs, runs, bigBytes, bigCount } = ctx.sizes.memory;
  const names = Array.from({ length: fanout }, (_, i) => `h${i}`);
  const receiver = await startReceiver(names.map((name) => ({ name, mode: 'ok' })));
  const rows = [];
  const out = { pending: [], big: null };
  try {
    const template = join(ctx.tmp, 'mem-template.db');
    await migrate(`sqlite:${template}`);
    const sink = await sqliteSink(template);
    const t = Date.now();
    let lastLog = 0;
    await seedBacklog(sink, {
      hookUrls: names.map((n) => receiver.url(n)),
      groups: [{ events: pending / fanout, hooks: names.map((_, i) => i) }],
      onProgress: (w) => {
        if (w - lastLog >= 200_000) ctx.log(`  memory: ${(lastLog = w)} pending deliveries written`);
      },
    });
    sink.db.pragma('wal_checkpoint(TRUNCATE)');
    sink.close();
    const dbBytes = statSync(template).size;
    ctx.log(`  memory: store with ${pending} pending deliveries built in ${((Date.now() - t) / 1000).toFixed(0)} s (${fmtMB(dbBytes)} MB)`);
    for (let i = 0; i < Math.min(runs, ctx.sizes.runs); i++) {
      const r = await pendingRun(ctx, template, receiver, windowMs, i);
      ctx.log(`  memory run ${i + 1}: RSS at start ${fmtMB(r.first)} MB, peak ${fmtMB(r.peak)} MB, end ${fmtMB(r.last)} MB while delivering ${r.delivered} (${r.rate.toFixed(0)}/s)`);
      out.pending.push(r);
    }
    const rs = out.pending;
    rows.push(row('6', 'memory: RSS with 1 M pending', `${pending} pending deliveries, all due (${pending / fanout} events × ${fanout} webhooks), ${fmtMB(dbBytes)} MB store; ${windowMs / 1000} s of delivering`, rs.map((r) => r.peak / MB), 'MB peak RSS', {
      notes: `RSS at start ${med(rs, (r) => r.first / MB).toFixed(0)} MB, at end ${med(rs, (r) => r.last / MB).toFixed(0)} MB; delivered ${med(rs, (r) => r.delivered)} in the window (${med(rs, (r) => r.rate).toFixed(0)}/s); dups ${rs.reduce((a, r) => a + r.dups, 0)}`,
      noRatio: true,
    }));
  } finally {
    await receiver.close();
  }
  const b = await bigResponse(ctx, { bigBytes, bigCount });
  out.big = b;
  ctx.log(`  1 GB response: RSS baseline ${fmtMB(b.baseline)} MB, peak ${fmtMB(b.peak)} MB (Δ ${fmtMB(b.delta)} MB); receiver wrote ${b.responses.map((r) => (r.bytes / MB).toFixed(1) + ' MB').join(', ')} before the connection closed`);
  rows.push(row('6', 'memory: a 1 GB response', `${bigCount} × ${fmtMB(bigBytes)} MB response bodies, one at a time`, [b.delta / MB], 'MB RSS growth', {
    notes: `baseline ${fmtMB(b.baseline)} MB, peak ${fmtMB(b.peak)} MB; receiver got to write ${b.responses.map((r) => (r.bytes / MB).toFixed(1)).join(', ')} MB before Herald closed the connection (kernel buffers included); stored body ${b.storedBodyBytes} bytes, truncated: ${b.truncated}; succeeded ${b.succeeded}/${bigCount}`,
    allArrived: b.succeeded === bigCount,
    noRatio: true,
  }));
  return { rows, ...out };
}
