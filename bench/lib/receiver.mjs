// The receiver: plain node:http servers on 127.0.0.1 in a process of their own, driven over IPC.
// Modes per server: `ok` answers 200 at once; `stall` reads the request and never answers;
// `big` answers 200 and streams a large body (1 GB by default) for as long as the client reads.
// Every request is counted; delivery ids (X-Herald-Delivery, or X-Bench-Id from the peers)
// are de-duplicated, and `t0` at the start of the payload's data gives the latency.
import http from 'node:http';
import { nowMs, percentile } from './util.mjs';

const servers = new Map(); // name -> state
const CHUNK = Buffer.alloc(64 * 1024, 0x61); // 64 KiB of 'a'
let expectations = [];

function newStats() {
  return { requests: 0, ids: new Set(), dups: 0, firstAt: null, lastAt: null, lat: [], bigBytes: [], non2xx: 0 };
}

function total(names) {
  let n = 0;
  for (const s of servers.values()) if (!names || names.includes(s.name)) n += s.stats.ids.size || s.stats.requests;
  return n;
}

function checkExpectations() {
  if (!expectations.length) return;
  const keep = [];
  for (const e of expectations) {
    if (total(e.names) >= e.count) process.send({ type: 'reached', id: e.id, at: nowMs() });
    else keep.push(e);
  }
  expectations = keep;
}

function onRequest(state, req, res) {
  // `mixed`: one origin, where /stall… never answers and everything else is `ok`.
  if (state.mode === 'mixed') state = req.url.startsWith('/stall') ? state.stallTwin : state.okTwin;
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const at = nowMs();
    const st = state.stats;
    st.requests++;
    st.firstAt ??= at;
    st.lastAt = at;
    const id = req.headers['x-herald-delivery'] ?? req.headers['x-bench-id'];
    if (id !== undefined) {
      if (st.ids.has(id)) st.dups++;
      else st.ids.add(id);
    }
    // `"t0":` sits near the start of the body (first member of data), so this never scans far.
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const head = body.toString('latin1', 0, Math.min(body.length, 256));
    const i = head.indexOf('"t0":');
    if (i >= 0) st.lat.push(at - Number.parseFloat(head.slice(i + 5, i + 30)));

    if (state.mode === 'ok') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
      checkExpectations();
    } else if (state.mode === 'stall') {
      state.stalled.add(res);
      res.on('close', () => state.stalled.delete(res));
    } else if (state.mode === 'big') {
      streamBig(state, res, state.bigBytes);
    }
  });
}

function streamBig(state, res, size) {
  const started = nowMs();
  let sent = 0;
  let done = false;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
  const finish = (closedEarly) => {
    if (done) return;
    done = true;
    state.stats.bigBytes.push(sent);
    process.send({ type: 'big-done', name: state.name, bytes: sent, closedEarly, ms: nowMs() - started });
  };
  res.on('close', () => finish(sent < size));
  const pump = () => {
    while (sent < size && !res.destroyed) {
      const n = Math.min(CHUNK.length, size - sent);
      sent += n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void res.once('drain', pump);
    }
    if (sent >= size) res.end();
  };
  pump();
}

async function listen(spec) {
  const state = { name: spec.name, mode: spec.mode ?? 'ok', bigBytes: spec.bigBytes ?? 1024 ** 3, stats: newStats(), stalled: new Set(), server: null };
  state.server = http.createServer((req, res) => onRequest(state, req, res));
  if (state.mode === 'mixed') {
    // Two stat buckets on one server: `name` (answered) and `name-stall` (never answered).
    state.okTwin = { ...state, mode: 'ok', stats: newStats() };
    state.stallTwin = { ...state, name: `${spec.name}-stall`, mode: 'stall', stats: newStats(), stalled: new Set() };
    servers.set(spec.name, state.okTwin);
    servers.set(`${spec.name}-stall`, state.stallTwin);
  }
  // Node's default 5 s keep-alive would close idle sockets between a warm-up and a run.
  state.server.keepAliveTimeout = 60_000;
  state.server.headersTimeout = 65_000;
  state.server.requestTimeout = 0;
  await new Promise((r) => state.server.listen(0, '127.0.0.1', r));
  if (state.mode !== 'mixed') servers.set(spec.name, state);
  else state.okTwin.server = state.stallTwin.server = state.server;
  return state.server.address().port;
}

function summary(s) {
  return {
    requests: s.requests,
    unique: s.ids.size,
    dups: s.dups,
    firstAt: s.firstAt,
    lastAt: s.lastAt,
    latCount: s.lat.length,
    latP50: percentile(s.lat, 50),
    latP99: percentile(s.lat, 99),
    latMax: s.lat.length ? s.lat.reduce((a, b) => (b > a ? b : a), -Infinity) : null,
    bigBytes: s.bigBytes,
  };
}

process.on('message', async (m) => {
  if (m.type === 'listen') {
    const ports = {};
    for (const spec of m.servers) ports[spec.name] = await listen(spec);
    process.send({ type: 'listening', ports });
  } else if (m.type === 'expect') {
    expectations.push({ id: m.id, names: m.names ?? null, count: m.count });
    checkExpectations();
  } else if (m.type === 'stats') {
    const out = {};
    for (const s of servers.values()) out[s.name] = summary(s.stats);
    // All servers together, for fan-out runs spread over several ports.
    const all = [...servers.values()].map((s) => s.stats);
    const lat = all.flatMap((s) => s.lat);
    const firsts = all.map((s) => s.firstAt).filter((x) => x !== null);
    const lasts = all.map((s) => s.lastAt).filter((x) => x !== null);
    out['*'] = {
      requests: all.reduce((a, s) => a + s.requests, 0),
      unique: all.reduce((a, s) => a + s.ids.size, 0),
      dups: all.reduce((a, s) => a + s.dups, 0),
      firstAt: firsts.length ? Math.min(...firsts) : null, // one entry per server: small
      lastAt: lasts.length ? Math.max(...lasts) : null,
      latCount: lat.length,
      latP50: percentile(lat, 50),
      latP99: percentile(lat, 99),
    };
    process.send({ type: 'stats', stats: out, cpu: process.cpuUsage(), rss: process.memoryUsage().rss });
  } else if (m.type === 'reset') {
    for (const s of servers.values()) s.stats = newStats();
    expectations = [];
    process.send({ type: 'reset-done' });
  } else if (m.type === 'close') {
    for (const s of servers.values()) {
      for (const r of s.stalled) r.destroy();
      s.server.closeAllConnections();
      s.server.close();
    }
    process.exit(0);
  }
});

process.on('SIGTERM', () => process.exit(0));
// Bounded: a receiver left behind by a crashed orchestrator exits on its own.
process.on('disconnect', () => process.exit(0));
