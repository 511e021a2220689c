import { describe, expect, it } from 'vitest';
import { createIdempotency, MemoryIdempotencyStore, type IdempotencyStore } from '../src/index.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/**
 * The contract every store must meet; run here against the memory store and a toy
 * "SET NX"-style store, the shape a Redis or SQL store would take.
 */
function storeContract(name: string, make: (now: () => number) => IdempotencyStore) {
  describe(`${name} store contract`, () => {
    it('claims once; later claims see in_progress, then completed', async () => {
      const c = clock();
      const store = make(c.now);
      expect(await store.claim('dlv_1', 1000)).toBe('claimed');
      expect(await store.claim('dlv_1', 1000)).toBe('in_progress');
      await store.complete('dlv_1', 5000);
      expect(await store.claim('dlv_1', 1000)).toBe('completed');
      expect(await store.claim('dlv_2', 1000)).toBe('claimed');
    });

    it('an expired lease can be claimed again (the holder crashed)', async () => {
      const c = clock();
      const store = make(c.now);
      expect(await store.claim('dlv_1', 1000)).toBe('claimed');
      c.advance(1001);
      expect(await store.claim('dlv_1', 1000)).toBe('claimed');
    });

    it('a completed id is forgotten after its TTL', async () => {
      const c = clock();
      const store = make(c.now);
      await store.claim('dlv_1', 1000);
      await store.complete('dlv_1', 5000);
      c.advance(4999);
      expect(await store.claim('dlv_1', 1000)).toBe('completed');
      c.advance(2);
      expect(await store.claim('dlv_1', 1000)).toBe('claimed');
    });

    it('release with a token forgets only the claim made under it', async () => {
      const c = clock();
      const store = make(c.now);
      expect(await store.claim('dlv_1', 1000, 'A')).toBe('claimed');
      c.advance(1001); // A's lease ran out while it still worked; B took over
      expect(await store.claim('dlv_1', 1000, 'B')).toBe('claimed');
      await store.release('dlv_1', 'A'); // A fails late: B's claim must stand
      expect(await store.claim('dlv_1', 1000, 'C')).toBe('in_progress');
      await store.release('dlv_1', 'B');
      expect(await store.claim('dlv_1', 1000, 'C')).toBe('claimed');
      await store.complete('dlv_1', 5000);
      await store.release('dlv_1', 'C'); // completed: not a claim to release any more
      expect(await store.claim('dlv_1', 1000, 'D')).toBe('completed');
    });

    it('release makes the id claimable at once', async () => {
      const store = make(clock().now);
      await store.claim('dlv_1', 60_000);
      await store.release('dlv_1');
      expect(await store.claim('dlv_1', 60_000)).toBe('claimed');
    });
  });
}

storeContract('memory', (now) => new MemoryIdempotencyStore({ now }));
storeContract('SET-NX-style', (now) => {
  // Mirrors the Redis commands in idempotency.ts's doc comment, over a Map with expiry.
  const kv = new Map<string, { value: string; expiresAt: number }>();
  const get = (k: string) => {
    const e = kv.get(k);
    return e && e.expiresAt > now() ? e.value : null;
  };
  return {
    async claim(id, leaseMs, token) {
      const old = get(id); // SET id <token> NX PX lease GET
      if (old === null) kv.set(id, { value: token ?? 'in_progress', expiresAt: now() + leaseMs });
      return old === null ? 'claimed' : old === 'completed' ? 'completed' : 'in_progress';
    },
    async complete(id, ttlMs) {
      kv.set(id, { value: 'completed', expiresAt: now() + ttlMs });
    },
    async release(id, token) {
      // The script: if GET id == token then DEL id (no token: DEL id).
      if (token === undefined || get(id) === token) kv.delete(id);
    },
  };
});

describe('MemoryIdempotencyStore bounds', () => {
  it('sweeps expired entries instead of growing', async () => {
    const c = clock();
    const store = new MemoryIdempotencyStore({ now: c.now });
    for (let i = 0; i < 1000; i++) await store.claim(`dlv_${i}`, 1000);
    expect(store.size).toBe(1000);
    c.advance(61_000); // past the lease and the sweep interval
    await store.claim('dlv_new', 1000);
    expect(store.size).toBe(1);
  });

  it('evicts the oldest entries beyond maxEntries', async () => {
    const store = new MemoryIdempotencyStore({ maxEntries: 3 });
    for (const id of ['a', 'b', 'c', 'd']) await store.claim(id, 60_000);
    expect(store.size).toBe(3);
    expect(await store.claim('a', 60_000)).toBe('claimed'); // 'a' was evicted
    expect(await store.claim('d', 60_000)).toBe('in_progress');
  });

  it('refuses a nonsensical bound', () => {
    expect(() => new MemoryIdempotencyStore({ maxEntries: 0 })).toThrow(TypeError);
  });
});

describe('createIdempotency().run', () => {
  it('processes a delivery once and refuses duplicates', async () => {
    const dedupe = createIdempotency();
    let calls = 0;
    const work = async () => ++calls;
    expect(await dedupe.run('dlv_1', work)).toEqual({ status: 'processed', value: 1 });
    expect(await dedupe.run('dlv_1', work)).toEqual({ status: 'duplicate' });
    expect(await dedupe.run('dlv_2', work)).toEqual({ status: 'processed', value: 2 });
    expect(calls).toBe(2);
  });

  it('reports in_progress while the first attempt is still running', async () => {
    const dedupe = createIdempotency();
    let finish!: () => void;
    const first = dedupe.run('dlv_1', () => new Promise<void>((resolve) => (finish = resolve)));
    await new Promise((r) => setTimeout(r, 0));
    expect(await dedupe.run('dlv_1', () => 'again')).toEqual({ status: 'in_progress' });
    finish();
    expect((await first).status).toBe('processed');
    expect(await dedupe.run('dlv_1', () => 'again')).toEqual({ status: 'duplicate' });
  });

  it('releases on failure so the retry is processed, and rethrows', async () => {
    const dedupe = createIdempotency();
    await expect(dedupe.run('dlv_1', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    await expect(
      dedupe.run('dlv_1', () => {
        throw new Error('sync failure');
      }),
    ).rejects.toThrow('sync failure');
    expect(await dedupe.run('dlv_1', () => 'ok')).toEqual({ status: 'processed', value: 'ok' });
  });

  it('forgets processed ids after ttlMs', async () => {
    const c = clock();
    const dedupe = createIdempotency({ store: new MemoryIdempotencyStore({ now: c.now }), ttlMs: 10_000 });
    await dedupe.run('dlv_1', () => undefined);
    c.advance(9_999);
    expect((await dedupe.run('dlv_1', () => undefined)).status).toBe('duplicate');
    c.advance(2);
    expect((await dedupe.run('dlv_1', () => undefined)).status).toBe('processed');
  });

  it('lets another attempt take over after the lease when the holder never finished', async () => {
    const c = clock();
    const dedupe = createIdempotency({ store: new MemoryIdempotencyStore({ now: c.now }), leaseMs: 1000 });
    expect(await dedupe.claim('dlv_1')).toBe('claimed'); // ...and the process "dies" here
    expect(await dedupe.claim('dlv_1')).toBe('in_progress');
    c.advance(1001);
    expect((await dedupe.run('dlv_1', () => 'recovered')).status).toBe('processed');
  });

  it("a run that fails after its lease ran out does not release the claim another run took", async () => {
    const c = clock();
    const dedupe = createIdempotency({ store: new MemoryIdempotencyStore({ now: c.now }), leaseMs: 1000 });
    let failA!: (e: Error) => void;
    const settled = () => new Promise((r) => setImmediate(r)); // each run has claimed and called fn
    const a = dedupe.run('dlv_1', () => new Promise((_resolve, reject) => (failA = reject)));
    await settled();
    c.advance(1001);
    let finishB!: () => void;
    const b = dedupe.run('dlv_1', () => new Promise<void>((resolve) => (finishB = resolve)));
    await settled();
    failA(new Error('A failed late'));
    await expect(a).rejects.toThrow('A failed late');
    expect((await dedupe.run('dlv_1', () => 'C')).status).toBe('in_progress'); // B still holds it
    finishB();
    expect((await b).status).toBe('processed');
    expect((await dedupe.run('dlv_1', () => 'D')).status).toBe('duplicate');
  });

  it('claim/complete/release support the answer-first, process-later pattern', async () => {
    const dedupe = createIdempotency();
    expect(await dedupe.claim('dlv_1')).toBe('claimed');
    await dedupe.release('dlv_1');
    expect(await dedupe.claim('dlv_1')).toBe('claimed');
    await dedupe.complete('dlv_1');
    expect(await dedupe.claim('dlv_1')).toBe('completed');
  });

  it('refuses non-positive durations', () => {
    expect(() => createIdempotency({ ttlMs: 0 })).toThrow(TypeError);
    expect(() => createIdempotency({ leaseMs: -1 })).toThrow(TypeError);
  });
});
