import type { Account } from '../core/types.js';
import type { Store } from '../store/store.js';

/**
 * The accounts publishing reads: every publish needs its account's existence and plan, and a
 * statement per request was 5 % of Herald's CPU when publishing flat out. An entry lives for
 * `ttlMs`; a change made through this process applies at once (the routes invalidate it), one
 * made by another process within `ttlMs`. A missing account is never cached, so one created a
 * moment ago is found at once.
 */
export class AccountCache {
  readonly #entries = new Map<string, { account: Account; until: number }>();
  /** Bumped by every invalidation: a read that started before one must not be kept. */
  #generation = 0;

  constructor(
    private readonly store: Store,
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  async get(id: string): Promise<Account | null> {
    const now = Date.now();
    const hit = this.#entries.get(id);
    if (hit && hit.until > now) return hit.account;
    const generation = this.#generation;
    const account = await this.store.getAccount(id);
    // A PATCH or DELETE committed while this read was on its way: answer with what was read
    // (it was true when the request came in), but keep nothing that may predate the change.
    if (generation !== this.#generation) return account;
    this.#entries.delete(id);
    if (account) {
      // Oldest first out (a Map iterates in insertion order): bounded whatever the caller sends.
      if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(id, { account, until: now + this.ttlMs });
    }
    return account;
  }

  invalidate(id: string): void {
    this.#generation++;
    this.#entries.delete(id);
  }
}
