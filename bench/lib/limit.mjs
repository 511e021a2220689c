// Scenario 1, the limit: what one Node.js process can send with no queue and no database.
// `concurrency` loops each build a ~1 KB JSON body, sign it (HMAC-SHA256, one signature per
// request) and POST it over an undici keep-alive Pool, for a warm-up then a measured window.
// argv[2] is JSON: {url, concurrency, warmupMs, durationMs}. Reports over IPC.
import { Pool } from 'undici';
import { BENCH_SECRET, eventData, nowMs, percentile, sign } from './util.mjs';

const o = JSON.parse(process.argv[2]);
const u = new URL(o.url);
const pool = new Pool(u.origin, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });

let measuring = false;
let stop = false;
let count = 0;
let errors = 0;
let seq = 0;
const lat = [];

async function loop() {
  while (!stop) {
    const id = `lim_${++seq}`;
    const t0 = nowMs();
    // The same envelope Herald sends, so the bytes on the wire match the other scenarios.
    const body = `{"event":"content.generated","created_at":"${new Date().toISOString()}","delivery_id":"${id}","data":${eventData(seq, t0)}}`;
    try {
      const res = await pool.request({
        path: u.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-bench-id': id, 'x-hub-signature-256': sign(BENCH_SECRET, body) },
        body,
      });
      await res.body.dump();
      if (res.statusCode !== 200) errors++;
      else if (measuring) {
        count++;
        lat.push(nowMs() - t0);
      }
    } catch {
      errors++;
    }
  }
}

const loops = Array.from({ length: o.concurrency }, loop);
await new Promise((r) => setTimeout(r, o.warmupMs));
process.send({ type: 'measuring' });
const cpu0 = process.cpuUsage();
const t0 = nowMs();
measuring = true;
await new Promise((r) => setTimeout(r, o.durationMs));
measuring = false;
const wallMs = nowMs() - t0;
const cpu = process.cpuUsage(cpu0);
stop = true;
await Promise.all(loops);
await pool.close();
process.send({
  type: 'result',
  count,
  errors,
  wallMs,
  rps: (count * 1000) / wallMs,
  p50: percentile(lat, 50),
  p99: percentile(lat, 99),
  cpuMs: (cpu.user + cpu.system) / 1000,
});
process.disconnect();
