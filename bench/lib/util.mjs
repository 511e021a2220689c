// Small helpers shared by the bench's orchestrator and its child processes: statistics,
// /proc readings, child-process plumbing and bounded waits.
import { fork, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createHmac } from 'node:crypto';

/** Wall clock in epoch ms with sub-ms resolution, comparable across processes on one machine. */
export const nowMs = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Nearest-rank percentile of an unsorted numeric array (or typed array). */
export function percentile(xs, p) {
  if (!xs.length) return null;
  const v = Float64Array.from(xs).sort();
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

// ---------- payloads ----------
/**
 * Event `data` whose delivered body (Herald's envelope included) is about 1 KB. `t0` comes
 * first so a receiver finds it without parsing the whole body.
 */
export function eventData(seq, t0 = nowMs(), targetBytes = 1024) {
  // Herald's envelope around data is ~118 bytes; {"t0":…,"seq":…,"pad":""} is ~40.
  const padLen = Math.max(0, targetBytes - 118 - 40 - String(seq).length);
  return `{"t0":${t0.toFixed(3)},"seq":${seq},"pad":"${'x'.repeat(padLen)}"}`;
}

export const BENCH_SECRET = 'whsec_bench_0123456789abcdef0123456789';
export const sign = (secret, body) => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

/**
 * What the peers and the limit send for one delivery: the envelope Herald sends (so the bytes
 * on the wire match every scenario), signed, POSTed over an undici Pool. Resolves with the
 * status code once the answer is read.
 */
export async function postSignedEnvelope(pool, path, { id, createdAtIso, dataRaw }) {
  const body = `{"event":"content.generated","created_at":"${createdAtIso}","delivery_id":"${id}","data":${dataRaw}}`;
  const res = await pool.request({
    path,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-bench-id': id, 'x-hub-signature-256': sign(BENCH_SECRET, body) },
    body,
  });
  await res.body.dump();
  return res.statusCode;
}

// ---------- /proc ----------
const TICK_MS = 10; // USER_HZ is 100 on Linux: /proc times are in 10 ms ticks

/** user+system CPU ms of one process (0 if it is gone). */
export function procCpuMs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // fields 14 and 15: utime, stime
  } catch {
    return 0;
  }
}

/** Resident set size in bytes (0 if the process is gone). */
export function procRss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Busy and total CPU ms of the whole machine, from /proc/stat. */
export function machineCpuMs() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) * TICK_MS, total: total * TICK_MS };
}

/** Processes whose command line matches, as pids (a database server and its backends). */
export function pidsWhere(pred) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (pred(comm, cmd)) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * CPU of a changing set of processes over a window: pids seen at the start are diffed, pids
 * that appear later count from zero (they started inside the window). Processes that exit
 * inside the window are lost, so the groups measured here are long-lived ones.
 */
export class CpuMeter {
  constructor(groups) {
    this.groups = groups; // name -> () => pid[]
    this.start = {};
    for (const [name, pidsOf] of Object.entries(groups)) {
      this.start[name] = new Map(pidsOf().map((p) => [p, procCpuMs(p)]));
    }
    this.machine0 = machineCpuMs();
    this.t0 = nowMs();
  }

  stop() {
    const wallMs = nowMs() - this.t0;
    const out = { wallMs, ms: {}, pct: {} };
    for (const [name, pidsOf] of Object.entries(this.groups)) {
      let ms = 0;
      for (const p of new Set([...this.start[name].keys(), ...pidsOf()])) ms += Math.max(0, procCpuMs(p) - (this.start[name].get(p) ?? 0));
      out.ms[name] = ms;
      out.pct[name] = (100 * ms) / wallMs;
    }
    const m1 = machineCpuMs();
    out.machineBusyMs = m1.busy - this.machine0.busy;
    out.machinePct = (100 * out.machineBusyMs) / wallMs;
    return out;
  }
}

// ---------- children ----------
/** A forked bench child speaking JSON messages over IPC. */
export class Child {
  constructor(script, args = [], opts = {}) {
    this.proc = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...opts });
    this.waiters = [];
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => r({ code, signal })));
    this.proc.on('message', (m) => {
      for (const w of [...this.waiters]) {
        if (w.pred(m)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    this.proc.once('exit', (code) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${script} exited (code ${code}) while waiting`));
    });
  }

  get pid() {
    return this.proc.pid;
  }

  send(m) {
    this.proc.send(m);
  }

  /** The next message matching `pred`, or an error after `timeoutMs`. */
  wait(pred, timeoutMs, what = 'a message') {
    const pf = typeof pred === 'string' ? (m) => m?.type === pred : pred;
    return withTimeout(new Promise((resolve, reject) => this.waiters.push({ pred: pf, resolve, reject })), timeoutMs, `waiting for ${what}`);
  }

  async request(m, reply, timeoutMs = 10_000) {
    const p = this.wait(reply, timeoutMs, reply);
    this.send(m);
    return p;
  }

  async kill(timeoutMs = 5000) {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }
}

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms))),
  ]);
}

/** Run a command to completion; rejects with its stderr on a non-zero exit. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}
