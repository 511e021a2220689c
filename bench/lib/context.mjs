// What every scenario gets: sizes, a temp dir, a receiver factory and logging.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child } from './util.mjs';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Sizes per mode. Every wait is capped (`maxMs`…): a run that hits its cap reports what arrived
 * by then, per second, and is flagged as incomplete rather than hanging the whole bench. `full` is what the table in docs/PERFORMANCE.md comes from; `quick` is for a
 * look while developing; `tiny` is the smoke test's (every scenario, seconds each).
 */
export const SIZES = {
  full: {
    runs: 3,
    limit: { concurrencies: [16, 64], warmupMs: 1000, durationMs: 5000 },
    drain: { n: 20_000, maxMs: 60_000 },
    e2e: { rates: [500, 1000, 2000, null], durationMs: 3000, flatCount: { 1: 20_000, 10: 3000 }, fanouts: [1, 10], warmup: 1000, publishMaxMs: 10_000, drainMaxMs: 8000 },
    peers: { n: 20_000, runs: 3 },
    pg: { n: 20_000, workers: [1, 2, 4], maxMs: 30_000, manyWebhooks: 16 },
    memory: { pending: 1_000_000, fanout: 10, windowMs: 10_000, runs: 1, bigBytes: 1024 ** 3, bigCount: 3 },
    isolation: { healthy: 20_000, stalled: 5000, timeoutMs: 2000, sameHostMaxMs: 20_000, maxMs: 60_000 },
  },
  quick: {
    runs: 1,
    limit: { concurrencies: [16, 64], warmupMs: 500, durationMs: 2000 },
    drain: { n: 5000, maxMs: 30_000 },
    e2e: { rates: [500, 1000, 2000, null], durationMs: 1500, flatCount: { 1: 4000, 10: 600 }, fanouts: [1, 10], warmup: 300, publishMaxMs: 8000, drainMaxMs: 8000 },
    peers: { n: 5000, runs: 1 },
    pg: { n: 5000, workers: [1, 2, 4], maxMs: 20_000, manyWebhooks: 16 },
    memory: { pending: 50_000, fanout: 10, windowMs: 3000, runs: 1, bigBytes: 1024 ** 3, bigCount: 1 },
    isolation: { healthy: 5000, stalled: 1000, timeoutMs: 1000, sameHostMaxMs: 6000, maxMs: 30_000 },
  },
  tiny: {
    runs: 1,
    limit: { concurrencies: [16], warmupMs: 200, durationMs: 500 },
    drain: { n: 300, maxMs: 20_000 },
    e2e: { rates: [200, null], durationMs: 500, flatCount: { 1: 300, 10: 40 }, fanouts: [1, 10], warmup: 20, publishMaxMs: 10_000, drainMaxMs: 15_000 },
    peers: { n: 300, runs: 1 },
    pg: { n: 320, workers: [1, 2], maxMs: 20_000, manyWebhooks: 16 },
    memory: { pending: 3000, fanout: 10, windowMs: 800, runs: 1, bigBytes: 1024 ** 3, bigCount: 1 },
    isolation: { healthy: 300, stalled: 100, timeoutMs: 1000, sameHostMaxMs: 2000, maxMs: 20_000 },
  },
};

export function makeContext({ mode, log }) {
  const tmp = mkdtempSync(join(tmpdir(), 'herald-bench-'));
  return {
    mode,
    sizes: SIZES[mode],
    tmp,
    log,
    results: {}, // scenario id -> its result, for later scenarios' ratios
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

/** A fresh receiver process with the given servers; resolves with it and its ports. */
export async function startReceiver(servers) {
  const r = new Child(join(BENCH_DIR, 'lib/receiver.mjs'));
  const { ports } = await r.request({ type: 'listen', servers }, 'listening');
  let nextId = 0;
  r.ports = ports;
  r.url = (name, path = '/hook') => `http://127.0.0.1:${ports[name]}${path}`;
  r.stats = async () => (await r.request({ type: 'stats' }, 'stats')).stats;
  /** Resolves with the time the servers named (all when null) have `count` distinct deliveries. */
  r.expect = (count, names, timeoutMs) => {
    const id = ++nextId;
    const p = r.wait((m) => m.type === 'reached' && m.id === id, timeoutMs, `${count} deliveries at the receiver`);
    r.send({ type: 'expect', id, names, count });
    return p;
  };
  r.reset = () => r.request({ type: 'reset' }, 'reset-done');
  r.close = async () => {
    try {
      r.send({ type: 'close' });
    } catch {
      /* already gone */
    }
    await r.kill(3000);
  };
  return r;
}
