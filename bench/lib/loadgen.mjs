// Load generator for scenario 3: publishes events through Herald's HTTP API from its own
// process, over an undici keep-alive Pool with at most `maxInFlight` requests outstanding.
// argv[2] is JSON with the connection settings. The process stays up for several phases (a
// warm-up, then the measured run), so its own start-up and JIT are not in the measured window:
// each `{type: 'run', rate, count, maxMs}` message publishes `count` events at a fixed `rate`
// (events/s), or flat out when `rate` is null, and answers with `{type: 'result', …}`.
// Each event's data starts with `t0`, the epoch ms just before its POST left, so the receiver
// measures publish → receiver latency.
import { Pool } from 'undici';
import { eventData, nowMs, percentile, sleep } from './util.mjs';

const o = JSON.parse(process.argv[2]);
const u = new URL(o.baseUrl);
// A publish that takes longer than 30 s counts as an error, so the run stays bounded.
const pool = new Pool(u.origin, { connections: o.maxInFlight, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
const path = `/v1/accounts/${o.accountId}/events`;
const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };

async function phase({ rate, count, maxMs }) {
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
  const deadline = start + maxMs;
  for (let seq = 0; seq < count && nowMs() < deadline; ) {
    if (rate) {
      // Send everything that is due by now, then sleep until the next event is due.
      const due = Math.min(count, Math.floor(((nowMs() - start) * rate) / 1000) + 1);
      while (seq < due) {
        if (inFlight >= o.maxInFlight) {
          late++;
          await waitSlot();
          continue;
        }
        void publish(seq++);
      }
      // Sleep on a timer even when the next event is due in under a millisecond: a
      // setImmediate loop here spins a whole core, which on a 2-core machine is taken from
      // Herald and the receiver. At 1,000/s and above this sends a few events per timer tick.
      const next = start + (seq * 1000) / rate;
      await sleep(Math.max(1, Math.floor(next - nowMs())));
    } else {
      if (inFlight >= o.maxInFlight) await waitSlot();
      else void publish(seq++);
    }
  }
  while (inFlight > 0) await waitSlot();
  const cpu = process.cpuUsage(cpu0);
  return {
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
  };
}

process.on('message', (m) => {
  if (m?.type === 'run') void phase(m).then((r) => process.send(r));
  else if (m?.type === 'close') void pool.close().finally(() => process.disconnect());
});
process.send({ type: 'ready' });
