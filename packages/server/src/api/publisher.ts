import { createError } from '../core/errors.js';
import { isDatabaseUnavailable } from '../store/executor.js';
import type { ClaimedDelivery, PublishInput, PublishLease, PublishResult, Store } from '../store/store.js';

/** The local worker, when deliveries may be leased to it in the publish transaction. */
export interface LocalWorker {
  leaseOffer(): PublishLease | null;
  adopt(deliveries: readonly ClaimedDelivery[]): void;
}

/** Most events committed by one transaction. */
const MAX_GROUP = 256;
/** Most event data one transaction writes, in characters (a single larger event still goes alone). */
const MAX_GROUP_CHARS = 16 * 1024 * 1024;

/**
 * What may wait for the database at once, queued or being written: events, and characters of
 * their data. Past either, publishing answers 503 with Retry-After and stores nothing, rather
 * than holding ever more request bodies in memory while the database is slow. One event is
 * always taken when nothing waits, whatever its size.
 */
export interface PublishBudget {
  events: number;
  chars: number;
}
type Queued = { input: PublishInput; resolve: (r: PublishResult) => void; reject: (e: unknown) => void };

export const DEFAULT_PUBLISH_BUDGET: PublishBudget = { events: 10_000, chars: 64 * 1024 * 1024 };

/**
 * Group commit for publishing. Requests that arrive while a transaction is being written join
 * the next one, so under load one disk sync covers many events and a `202` still means
 * "committed". If a group fails as a whole, its events are retried one by one so a single
 * bad one cannot fail its neighbours.
 */
export class Publisher {
  #queue: Queued[] = [];
  #busy = false;
  /** Events accepted and not yet answered (queued or in the group being written), and their data's length. */
  #waiting = 0;
  #waitingChars = 0;

  constructor(
    private readonly store: Store,
    /** Called with the webhooks that just got deliveries not leased to the local worker, so it comes to claim them. */
    private readonly onCommitted: (webhookIds: Set<string>) => void,
    private readonly local: LocalWorker | null = null,
    private readonly budget: PublishBudget = DEFAULT_PUBLISH_BUDGET,
    private readonly onRefused: () => void = () => {},
  ) {}

  /** Events accepted and not yet answered: queued, or in the group being written. */
  get waiting(): number {
    return this.#waiting;
  }

  publish(input: PublishInput): Promise<PublishResult> {
    const chars = input.data.length;
    if (this.#waiting > 0 && (this.#waiting >= this.budget.events || this.#waitingChars + chars > this.budget.chars)) {
      this.onRefused();
      return Promise.reject(createError('unavailable', 'more events are waiting to be stored than Herald holds at once; publish again in a second'));
    }
    this.#waiting++;
    this.#waitingChars += chars;
    const settle = (): void => {
      this.#waiting--;
      this.#waitingChars -= chars;
    };
    return new Promise<PublishResult>((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      if (!this.#busy) setImmediate(() => void this.#drain());
    }).finally(settle);
  }

  /** The next group: up to MAX_GROUP events and MAX_GROUP_CHARS of data, at least one. */
  #nextGroup(): Queued[] {
    let n = 0;
    let chars = 0;
    while (n < this.#queue.length && n < MAX_GROUP) {
      chars += this.#queue[n]!.input.data.length;
      if (n > 0 && chars > MAX_GROUP_CHARS) break;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length) {
        const group = this.#nextGroup();
        const hooks = new Set<string>();
        const leased: ClaimedDelivery[] = [];
        const done = (g: (typeof group)[number], r: PublishResult): void => {
          if (!r.replayed) {
            // Deliveries leased to the local worker are being sent already; only the others
            // (over a limit, or no local worker) need the worker to come and claim them.
            const taken = new Set(r.leased?.map((l) => l.id));
            for (const d of r.deliveries) if (!taken.has(d.id)) hooks.add(d.webhookId);
            if (r.leased) leased.push(...r.leased);
          }
          g.resolve(r);
        };
        try {
          const local = this.local;
          const results = await this.store.publishMany(group.map((g) => g.input), local ? () => local.leaseOffer() : null);
          group.forEach((g, i) => done(g, results[i]!));
        } catch (e) {
          // The database cannot take anything now (locked, unreachable): every event would fail
          // alike, each after its own wait, so the whole group gets the error at once (503).
          if (isDatabaseUnavailable(e)) {
            for (const g of group) g.reject(e);
            continue;
          }
          for (const g of group) {
            try {
              const [r] = await this.store.publishMany([g.input]);
              done(g, r!);
            } catch (e) {
              g.reject(e);
            }
          }
        }
        // Leased in the publish transaction: sent now, without a claim round trip.
        if (leased.length) this.local?.adopt(leased);
        if (hooks.size) this.onCommitted(hooks);
      }
    } finally {
      this.#busy = false;
      // Left behind by a throw above: a refused publish schedules nothing, so go on from here.
      if (this.#queue.length) setImmediate(() => void this.#drain());
    }
  }
}
