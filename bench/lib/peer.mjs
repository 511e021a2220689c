// Scenario 4: the same job done with a general-purpose queue. One process enqueues `n` jobs
// (the backlog, as in scenario 2), says `seeded`, and on `go` starts the library's worker,
// which builds the same envelope Herald sends, signs it (HMAC-SHA256) and POSTs it with undici.
// argv[2] is JSON: {kind: 'bullmq'|'pgboss', n, url, ...}. Needs bench/node_modules.
import { Pool } from 'undici';
import { eventData, nowMs, postSignedEnvelope } from './util.mjs';

const o = JSON.parse(process.argv[2]);
const target = new URL(o.url);
const pool = new Pool(target.origin, { connections: o.connections ?? 16, pipelining: 1, keepAliveTimeout: 30_000 });
let errors = 0;

async function deliver(id, data) {
  const status = await postSignedEnvelope(pool, target.pathname, { id, createdAtIso: new Date(data.createdAt).toISOString(), dataRaw: data.raw });
  // A non-2xx fails the job, so the library's own retry applies, as Herald's would.
  if (status < 200 || status >= 300) {
    errors++;
    throw new Error(`HTTP ${status}`);
  }
}

const jobData = (seq) => {
  const createdAt = Date.now();
  return { createdAt, raw: eventData(seq, createdAt) };
};

const waitFor = (type) => new Promise((r) => process.on('message', (m) => m?.type === type && r(m)));

async function bullmq() {
  const { Queue, Worker } = await import('bullmq');
  const { default: IORedis } = await import('ioredis');
  const connection = new IORedis(o.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(o.queue, { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  for (let i = 0; i < o.n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(o.n, i + 1000); j++) jobs.push({ name: 'deliver', data: jobData(j), opts: { attempts: 5, backoff: { type: 'exponential', delay: 60_000 } } });
    await queue.addBulk(jobs);
  }
  process.send({ type: 'seeded' });
  await waitFor('go');
  const cpu0 = process.cpuUsage();
  process.send({ type: 'started', at: nowMs() });
  const worker = new Worker(o.queue, async (job) => deliver(`bmq_${job.id}`, job.data), { connection: new IORedis(o.redisUrl, { maxRetriesPerRequest: null }), concurrency: o.concurrency });
  await waitFor('stop');
  const cpu = process.cpuUsage(cpu0);
  await worker.close(true);
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  await connection.quit();
  return cpu;
}

async function pgboss() {
  const { default: PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: o.dbUrl, max: o.poolSize ?? 10, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue(o.queue);
  for (let i = 0; i < o.n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(o.n, i + 1000); j++) jobs.push({ name: o.queue, data: jobData(j), retryLimit: 4, retryDelay: 60, retryBackoff: true });
    await boss.insert(jobs);
  }
  process.send({ type: 'seeded' });
  await waitFor('go');
  const cpu0 = process.cpuUsage();
  process.send({ type: 'started', at: nowMs() });
  // pg-boss 10 has no per-worker concurrency: each work() is one polling loop that fetches a
  // batch and (here) delivers it concurrently, so in-flight = loops × batchSize.
  for (let i = 0; i < o.loops; i++) {
    await boss.work(o.queue, { batchSize: o.batchSize, pollingIntervalSeconds: o.pollingIntervalSeconds }, async (jobs) => {
      await Promise.all(jobs.map((j) => deliver(`pgb_${j.id}`, j.data)));
    });
  }
  await waitFor('stop');
  const cpu = process.cpuUsage(cpu0);
  await boss.stop({ graceful: false, wait: true, timeout: 5000 }).catch(() => {});
  return cpu;
}

// Bounded even if the orchestrator dies: IPC loss ends the process.
process.on('disconnect', () => process.exit(0));
const cpu = o.kind === 'bullmq' ? await bullmq() : await pgboss();
await pool.close();
process.send({ type: 'result', cpuMs: (cpu.user + cpu.system) / 1000, errors });
process.disconnect();
