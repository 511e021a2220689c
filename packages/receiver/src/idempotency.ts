/**
 * Herald delivers at least once: a receiver that answered 2xx can still see the same delivery
 * again (its answer was lost, or a Herald worker died before recording it). Deduplicate on
 * the event's `delivery_id`, which stays the same on every attempt and on redelivery.
 */

/**
 * - `claimed`: this caller owns the delivery now; process it, then `complete` or `release`.
 * - `in_progress`: another request holds the claim; answer non-2xx (e.g. 409) so Herald tries
 *   again later, when it has either completed or (after a crash) its lease has run out.
 * - `completed`: already processed; answer 2xx without doing it again.
 */
export type ClaimState = 'claimed' | 'in_progress' | 'completed';

/**
 * Where claims live. Each method must be atomic on its own; no transaction spans them.
 *
 * `token` names one claim: `run()` passes a fresh one, and `release` forgets the id only while
 * that claim still holds it. Otherwise a run whose lease ran out, and which then failed, would
 * release the claim another request took meanwhile, and a third would process the delivery
 * while the second still does. A store may ignore the token (then release always forgets).
 *
 * Redis:   claim    = SET <id> <token> NX PX <leaseMs> GET  (nil → claimed; "completed" →
 *                     completed; anything else → in_progress. Before Redis 7: SET … NX PX,
 *                     then GET when it fails)
 *          complete = SET <id> completed PX <ttlMs>
 *          release  = a script: if GET <id> == <token> then DEL <id>
 * SQL:     claim    = INSERT INTO seen (id, state, token, expires_at) VALUES (…, 'in_progress', <token>, now() + lease)
 *                     ON CONFLICT (id) DO UPDATE SET state = 'in_progress', token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
 *                     WHERE seen.expires_at < now()  -- a row back → claimed; none → SELECT state
 *          complete = UPDATE … SET state = 'completed', expires_at = now() + ttl
 *          release  = DELETE FROM seen WHERE id = <id> AND state = 'in_progress' AND token = <token>
 */
export interface IdempotencyStore {
  /** When `id` is absent or expired, record it as in progress for `leaseMs` (under `token`) and return `claimed`; otherwise return its state unchanged. */
  claim(id: string, leaseMs: number, token?: string): Promise<ClaimState>;
  /** Record `id` as completed, remembered for `ttlMs`. */
  complete(id: string, ttlMs: number): Promise<void>;
  /** Forget `id`, so the next attempt of that delivery is processed; with `token`, only while that claim holds it. */
  release(id: string, token?: string): Promise<void>;
}

export interface MemoryStoreOptions {
  /**
   * Upper bound on remembered ids; the oldest are evicted beyond it. Default 100 000. Make it
   * at least the deliveries you take within the TTL (24 h): 100 000 covers about 1.1 per second
   * on average. Past it, an id can be forgotten before its TTL, and a duplicate of it processed.
   */
  maxEntries?: number;
  /** Clock in epoch milliseconds; for tests. */
  now?: () => number;
}

// Expired entries are swept at most this often, and eviction takes the oldest entries one by
// one, so a claim costs O(1) amortised however full the store is.
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Single-process store. Bounded: past `maxEntries` the oldest entries are evicted, which at
 * worst lets a very late duplicate through; memory never grows without limit. Use a shared
 * store (Redis, SQL) when several processes receive.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, { state: 'in_progress' | 'completed'; expiresAt: number; token?: string }>();
  readonly #maxEntries: number;
  readonly #now: () => number;
  #nextSweepAt = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new TypeError('MemoryIdempotencyStore: `maxEntries` must be a whole number ≥ 1.');
    }
    this.#now = options.now ?? Date.now;
  }

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.#entries.size;
  }

  async claim(id: string, leaseMs: number, token?: string): Promise<ClaimState> {
    const now = this.#now();
    if (now >= this.#nextSweepAt) this.#sweep(now);
    const entry = this.#entries.get(id);
    if (entry && entry.expiresAt > now) return entry.state;
    this.#set(id, 'in_progress', now + leaseMs, now, token);
    return 'claimed';
  }

  async complete(id: string, ttlMs: number): Promise<void> {
    const now = this.#now();
    this.#set(id, 'completed', now + ttlMs, now);
  }

  async release(id: string, token?: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry || (token !== undefined && (entry.state !== 'in_progress' || entry.token !== token))) return;
    this.#entries.delete(id);
  }

  #set(id: string, state: 'in_progress' | 'completed', expiresAt: number, now: number, token?: string): void {
    // Re-inserting moves the id to the end of the Map's order, so eviction takes the stalest.
    this.#entries.delete(id);
    this.#entries.set(id, token === undefined ? { state, expiresAt } : { state, expiresAt, token });
    if (this.#entries.size <= this.#maxEntries) return;
    if (now >= this.#nextSweepAt) this.#sweep(now);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
  }

  #sweep(now: number): void {
    for (const [id, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(id);
    this.#nextSweepAt = now + SWEEP_INTERVAL_MS;
  }
}

export interface IdempotencyOptions {
  /** Default: a new `MemoryIdempotencyStore`. */
  store?: IdempotencyStore;
  /**
   * How long a processed delivery_id is remembered. Default 24 h: with Herald's default retry
   * schedule (1 min, 10 min, 1 h 40 min, 16 h 40 min, each ±20 %) the longest gap between two
   * attempts is about 20 h, so a duplicate caused by a lost 2xx arrives within it.
   */
  ttlMs?: number;
  /**
   * How long a claim shields a delivery that is being processed. If the process dies without
   * releasing, another attempt may take over after this. Default 5 min: longer than any
   * sensible processing time, shorter than Herald's second retry (about 10 min).
   */
  leaseMs?: number;
}

export type RunResult<T> = { status: 'processed'; value: T } | { status: 'duplicate' } | { status: 'in_progress' };

export interface Idempotency {
  claim(id: string, token?: string): Promise<ClaimState>;
  complete(id: string): Promise<void>;
  release(id: string, token?: string): Promise<void>;
  /**
   * Runs `fn` once per id: `processed` (it ran and succeeded), `duplicate` (done before), or
   * `in_progress` (running elsewhere). When `fn` throws, the claim is released and the error
   * rethrown, so Herald's next attempt processes the delivery again.
   */
  run<T>(id: string, fn: () => T | Promise<T>): Promise<RunResult<T>>;
}

/** Names one claim; unique across processes sharing a store (Web Crypto, in every runtime this package supports). */
const newToken = (): string => globalThis.crypto.randomUUID();

export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000; // 24 h
export const DEFAULT_LEASE_MS = 5 * 60 * 1000; // 5 min

export function createIdempotency(options: IdempotencyOptions = {}): Idempotency {
  const store = options.store ?? new MemoryIdempotencyStore();
  const ttlMs = options.ttlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  for (const [name, value] of [['ttlMs', ttlMs], ['leaseMs', leaseMs]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new TypeError(`createIdempotency: \`${name}\` must be a positive number of milliseconds.`);
  }

  return {
    claim: (id, token) => store.claim(id, leaseMs, token),
    complete: (id) => store.complete(id, ttlMs),
    release: (id, token) => store.release(id, token),
    async run(id, fn) {
      const token = newToken();
      const state = await store.claim(id, leaseMs, token);
      if (state === 'completed') return { status: 'duplicate' };
      if (state === 'in_progress') return { status: 'in_progress' };
      let value;
      try {
        value = await fn();
      } catch (err) {
        // If the release itself fails, the lease still frees the id; the caller needs the original error.
        await store.release(id, token).catch(() => undefined);
        throw err;
      }
      await store.complete(id, ttlMs);
      return { status: 'processed', value };
    },
  };
}
