import type { Store } from '../store/store.js';

/**
 * The catalog's names, checked on every publish. Refreshed every few seconds (other processes
 * may register types) and at once when a name is unknown, so a type registered a moment ago
 * on another process is never refused.
 */
export class EventTypeCache {
  #names: Set<string> = new Set();
  #loadedAt = 0;

  constructor(
    private readonly store: Store,
    private readonly ttlMs = 5000,
  ) {}

  async has(name: string): Promise<boolean> {
    if (Date.now() - this.#loadedAt > this.ttlMs || !this.#names.has(name)) await this.refresh();
    return this.#names.has(name);
  }

  async refresh(): Promise<void> {
    this.#names = await this.store.eventTypeNames();
    this.#loadedAt = Date.now();
  }
}
