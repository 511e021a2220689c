#!/usr/bin/env node
// Single-process delivery throughput: publish N events to one webhook through the API and time
// until every delivery has succeeded against a local receiver that answers 200 at once.
//
//   npm run build -w packages/server && node scripts/delivery-throughput.mjs [--events 5000] [--batch 100] [--synchronous full|normal]
//
// Herald runs as its own process (`dist/cli.js serve`, SQLite in a temp dir, loopback only);
// the receiver and the publisher share this process. Prints one JSON line with the figures.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '5000' },
    batch: { type: 'string', default: '100' },
    synchronous: { type: 'string', default: 'full' },
  },
});
const N = Number(args.events);
const BATCH = Number(args.batch);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'throughput-admin-token-0123456789';

// The receiver: answers 200 at once, counts.
let received = 0;
const rx = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    res.end('ok');
  });
});
await new Promise((r) => rx.listen(0, '127.0.0.1', r));
const rxUrl = `http://127.0.0.1:${rx.address().port}/hook`;

const dir = mkdtempSync(join(tmpdir(), 'herald-throughput-'));
const child = spawn(process.execPath, [join(ROOT, 'packages/server/dist/cli.js'), 'serve'], {
  env: {
    PATH: process.env.PATH,
    HERALD_DATABASE_URL: `sqlite:${join(dir, 'herald.db')}`,
    HERALD_PORT: '0',
    HERALD_DEV: 'true',
    HERALD_ADMIN_TOKEN: TOKEN,
    HERALD_SECRET_KEY: '0'.repeat(63) + '1',
    HERALD_SQLITE_SYNCHRONOUS: args.synchronous,
    HERALD_LOG_LEVEL: 'warn', // one log line per request would measure the pipe, not Herald
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
const url = await new Promise((resolve, reject) => {
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => {
    err += d;
    const m = /is running .* at (http:\/\/\S+)/.exec(err);
    if (m) resolve(m[1]);
  });
  child.on('exit', (code) => reject(new Error(`herald exited (${code}):\n${err}`)));
});

const api = async (method, path, body) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
};
/** CPU seconds Herald used so far (Linux): a figure the shared machine's load barely moves. */
const heraldCpuSeconds = () => {
  try {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return null;
  }
};
const succeeded = async () => {
  const m = await (await fetch(url + '/metrics')).text();
  return Number(/herald_deliveries_total\{outcome="succeeded"\} (\d+)/.exec(m)?.[1] ?? 0);
};

try {
  const acc = await api('POST', '/v1/accounts', { name: 'bench', plan: 'pro' });
  await api('POST', `/v1/accounts/${acc.id}/webhooks`, { url: rxUrl, events: ['*'], secret: 'whsec_throughput-secret' });
  const data = { id: 'cnt_123', title: 'A generated article', words: 1234, tags: ['a', 'b', 'c'] };

  const cpu0 = heraldCpuSeconds();
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, N - i) }, () => api('POST', `/v1/accounts/${acc.id}/events`, { type: 'content.generated', data })));
  }
  const published = performance.now();
  // Wait on the receiver's count (free), then confirm on /metrics: each scrape counts the
  // queue in the database, so scraping in a tight loop would slow the run it measures.
  while (received < N) await new Promise((r) => setTimeout(r, 5));
  while ((await succeeded()) < N) await new Promise((r) => setTimeout(r, 5));
  const done = performance.now();
  const cpu = cpu0 === null ? null : Math.round((heraldCpuSeconds() - cpu0) * 100) / 100;

  const s = (ms) => Math.round(ms) / 1000;
  console.log(
    JSON.stringify({
      events: N,
      batch: BATCH,
      sqlite_synchronous: args.synchronous,
      publish_s: s(published - t0),
      total_s: s(done - t0),
      publish_per_s: Math.round(N / ((published - t0) / 1000)),
      deliveries_per_s: Math.round(N / ((done - t0) / 1000)),
      receiver_requests: received,
      herald_cpu_s: cpu,
      load_avg_1m: loadavg()[0],
      node: process.version,
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    }),
  );
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  rx.close();
  rmSync(dir, { recursive: true, force: true });
}
