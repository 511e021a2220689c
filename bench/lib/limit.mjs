// Scenario 1, the limit: what one Node.js process can send with no queue and no database.
// `concurrency` loops each build a ~1 KB JSON body, sign it (HMAC-SHA256, one signature per
// request) and POST it over an undici keep-alive Pool, for a warm-up then a measured window.
// With `rate`, the same requests go out at that fixed rate instead (paced as the load
// generator of scenario 3 paces its publishes, at most `concurrency` outstanding): the CPU and
// latency of a bare signed POST at the rates scenario 3 offers Herald.
// argv[2] is JSON: {url, concurrency, warmupMs, durationMs, rate?}. Reports over IPC.
import { Pool } from 'undici';
import { eventData, nowMs, percentile, postSignedEnvelope, sleep } from './util.mjs';

const o = JSON.parse(process.argv[2]);
const u = new URL(o.url);
const pool = new Pool(u.origin, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });

let measuring = false;
let stop = false;
let count = 0;
let errors = 0;
let late = 0;
let seq = 0;
const lat = [];

/** One signed POST; counted (and its latency kept) if it ends inside the measured window. */
async function post() {
  const id = `lim_${++seq}`;
  const t0 = nowMs();
  try {
    const status = await postSignedEnvelope(pool, u.pathname, { id, createdAtIso: new Date().toISOString(), dataRaw: eventData(seq, t0) });
    if (status !== 200) errors++;
    else if (measuring) {
      count++;
      lat.push(nowMs() - t0);
    }
  } catch {
    errors++;
  }
}

async function loop() {
  while (!stop) await post();
}

/** Fixed rate: send what is due, then sleep on a timer until the next one is due (as lib/loadgen.mjs does). */
async function paced() {
  const start = nowMs();
  const open = new Set();
  for (let sent = 0; !stop; ) {
    const due = Math.floor(((nowMs() - start) * o.rate) / 1000) + 1;
    while (sent < due && !stop) {
      if (open.size >= o.concurrency) {
        late++; // due while `concurrency` requests were outstanding: sent when one ends
        await Promise.race(open);
        continue;
      }
      const p = post().finally(() => open.delete(p));
      open.add(p);
      sent++;
    }
    await sleep(Math.max(1, Math.floor(start + (sent * 1000) / o.rate - nowMs())));
  }
  await Promise.all(open);
}

const loops = o.rate ? [paced()] : Array.from({ length: o.concurrency }, loop);
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
  late,
  wallMs,
  rps: (count * 1000) / wallMs,
  p50: percentile(lat, 50),
  p99: percentile(lat, 99),
  cpuMs: (cpu.user + cpu.system) / 1000,
});
process.disconnect();
