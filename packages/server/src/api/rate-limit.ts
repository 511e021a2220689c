import { createError } from '../core/errors.js';
import { take, type Bucket } from '../core/rate-bucket.js';
import type { Principal } from './auth.js';

/** Credentials remembered at once; past it the longest unused is forgotten (it starts full again). */
const MAX_TRACKED = 100_000;

/**
 * HERALD_API_RATE_LIMIT: requests a second per API key, and per account for its dashboard
 * sessions, in this process; the admin token and operator sessions are not limited. Past it a request is refused with
 * `429 rate_limited` and a Retry-After in whole seconds, before its body is read, so one
 * account's client cannot take the API's time from the others. A refused request still costs
 * the look-up of its credential (one indexed read), not more.
 */
export class ApiRateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: number,
    private readonly onLimited: () => void = () => {},
  ) {}

  /** Throws `rate_limited` (with `retryAfterS`) when the caller is over its rate. */
  check(p: Principal, now = Date.now()): void {
    if (this.rate <= 0 || p.kind === 'admin') return;
    // An API key by its id; an account's dashboard sessions share one bucket.
    const key = `${p.accountId}\n${p.actor}`;
    const before = this.#buckets.get(key);
    const r = take(before, this.rate, now);
    // Re-inserted, so the Map's order is least recently used first.
    if (before) this.#buckets.delete(key);
    else if (this.#buckets.size >= MAX_TRACKED) this.#buckets.delete(this.#buckets.keys().next().value!);
    this.#buckets.set(key, r.bucket);
    if (r.ok) return;
    this.onLimited();
    const e = createError('rate_limited');
    e.retryAfterS = Math.max(1, Math.ceil(r.waitMs / 1000));
    throw e;
  }
}
