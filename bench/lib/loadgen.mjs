// Load generator for scenario 3: publishes events through Herald's HTTP API from its own
// process, over an undici keep-alive Pool with at most `maxInFlight` requests outstanding.
// Either at a fixed `rate` (events/s) for `count` events, or flat out (`rate` null).
// Each event's data starts with `t0`, the epoch ms just before its POST left, so the receiver
// measures publish → receiver latency. argv[2] is JSON; the result goes back over IPC.
import { Pool } from 'undici';
import { eventData, nowMs, percentile, sleep } from './util.mjs';

const o = JSON.parse(process.argv[2]);
const u = new URL(o.baseUrl);
// A publish that takes longer than 30 s counts as an error, so the run stays bounded.
const pool = new Pool(u.origin, { connections: o.maxInFlight, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
const path = `/v1/accounts/${o.accountId}/events`;
const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };

let inFlight = 0;
let ok = 0;
let errors = 0;
let late = 0; // sends that were due while maxInFlight requests were outstanding
const ackLat = [];
let firstSendAt = null;
let lastAckAt = null;
let slot = null; // resolves when a request finishes, for the in-flight bound

async function publish(seq) {
  inFlight++;
  const t0 = nowMs();
  firstSendAt ??= t0;
  try {
    const res = await pool.request({ path, method: 'POST', headers, body: `{"type":"content.generated","data":${eventData(seq, t0, o.dataBytes ?? 1024)}}` });
    await res.body.dump();
    if (res.statusCode === 202) ok++;
    else errors++;
  } catch {
    errors++;
  }
  const t1 = nowMs();
  lastAckAt = t1;
  ackLat.push(t1 - t0);
  inFlight--;
  const s = slot;
  slot = null;
  s?.();
}

const waitSlot = () => new Promise((r) => (slot = r));
const cpu0 = process.cpuUsage();
const start = nowMs();
const deadline = start + o.maxMs;
for (let seq = 0; seq < o.count && nowMs() < deadline; ) {
  if (o.rate) {
    // Send everything that is due by now, then sleep until the next event is due.
    const due = Math.min(o.count, Math.floor(((nowMs() - start) * o.rate) / 1000) + 1);
    while (seq < due) {
      if (inFlight >= o.maxInFlight) {
        late++;
        await waitSlot();
        continue;
      }
      void publish(seq++);
    }
    const next = start + (seq * 1000) / o.rate;
    const wait = next - nowMs();
    if (wait > 1) await sleep(Math.floor(wait));
    else await new Promise((r) => setImmediate(r));
  } else {
    if (inFlight >= o.maxInFlight) await waitSlot();
    else void publish(seq++);
  }
}
while (inFlight > 0) await waitSlot();
const cpu = process.cpuUsage(cpu0);
await pool.close();
process.send({
  type: 'result',
  sent: ok + errors,
  ok,
  errors,
  late,
  firstSendAt,
  lastAckAt,
  publishRate: ((ok + errors) * 1000) / (lastAckAt - firstSendAt),
  ackP50: percentile(ackLat, 50),
  ackP99: percentile(ackLat, 99),
  cpuMs: (cpu.user + cpu.system) / 1000,
});
process.disconnect();
