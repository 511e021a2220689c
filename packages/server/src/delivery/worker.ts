import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { newId } from '../core/ids.js';
import { nextStep, parseRetryAfter, type RetryPolicy } from '../core/retry-policy.js';
import { buildBody, deliveryHeaders, redactHeaders } from '../core/signing.js';
import type { AttemptRow } from '../core/types.js';
import { within } from '../core/within.js';
import { isDatabaseUnavailable } from '../store/executor.js';
import type { AttemptRecord, ClaimedDelivery, ClaimOptions, Prefetch, PublishLease, Store } from '../store/store.js';
import type { Metrics } from '../metrics.js';
import type { Sender, SendResult } from './sender.js';
import { previousSecretAt, UnreadableWebhookError, type WebhookCache, type WebhookTarget } from './webhook-cache.js';

export interface WorkerOptions {
  concurrency: number;
  endpointConcurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  retry: RetryPolicy;
  /**
   * Deliveries a fast webhook may be leased beyond endpointConcurrency, held here and started
   * as its requests end (see Store's Prefetch: on a shared database only while no other
   * process holds leases of that webhook). 0 turns it off.
   */
  prefetch?: number;
  /**
   * Payload characters the worker may hold in the deliveries leased to it (being sent or
   * held): while past it, it claims nothing and takes nothing at publish, and a claim asks for
   * no more deliveries than fit at the size of the largest payload seen lately. One delivery
   * always goes, so the bound may be passed by one. Undefined: no bound.
   */
  payloadBudget?: number;
  /** The largest payload there can be (HERALD_MAX_PAYLOAD_BYTES): the size assumed until payloads are seen. */
  maxPayload?: number;
}

/** Share of the slots retries may never take, so fresh events always find room at once. */
const FIRST_ATTEMPT_RESERVE = 0.25;
/** Attempt outcomes are written in batches: at most this many per transaction… */
const WRITE_BATCH = 256;
/** …and at most this long after the attempt ended. */
const WRITE_DELAY_MS = 5;
/**
 * Stop claiming while this many outcomes wait to be written (the database is struggling), or
 * while what they hold of responses (up to 64 KiB of body each) passes this many characters.
 */
const MAX_UNWRITTEN = 10_000;
const MAX_UNWRITTEN_CHARS = 32 * 1024 * 1024;
/** An attempt starts only while its lease has at least the timeout plus this much left. */
const LEASE_SAFETY_MS = 1000;
/** Most deliveries leased by one claim per lane. */
const CLAIM_BATCH = 500;
/** The largest payload seen sizes claims for one to two windows of this long. */
const PAYLOAD_WINDOW_MS = 10_000;
/** Retry due times remembered for precise wake-ups; beyond this, polling alone finds them. */
const MAX_TRACKED_DUE = 1000;
/** Webhooks remembered for refills (to claim for first) and as backlogged. */
const MAX_TRACKED_WEBHOOKS = 10_000;
/**
 * A webhook whose last attempt took at most this long gets prefetch: its held deliveries wait
 * for a few of its own attempts, far inside the lease's margin (lease = timeout + 5 s, and an
 * attempt starts only with timeout + LEASE_SAFETY_MS left).
 */
const FAST_ATTEMPT_MS = 250;
/**
 * Rounds of requests a fast webhook may be leased ahead (WorkerOptions.prefetch is this times
 * the endpoint limit). A claim starts when half of what a webhook may hold has gone, so the
 * other half must outlast a claim: at 3 rounds one PostgreSQL worker ran out of held
 * deliveries while its next claim was on its way (claims of 33 at 7 ms); at 6 the drain of one
 * webhook rose 14-17 % (claims of 56). A held delivery waits at most this many of its
 * webhook's attempts of at most FAST_ATTEMPT_MS: 1.5 s, well inside the lease's margin.
 */
export const PREFETCH_ROUNDS = 6;

/**
 * WorkerOptions.prefetch for these limits: PREFETCH_ROUNDS rounds ahead, but never so many
 * that one fast webhook fills the worker: it leaves room for two other webhooks' requests
 * (beside a stalled endpoint, a fast webhook's held deliveries filled the worker's slots and
 * its healthy endpoint drained 10 % slower than alone).
 */
export function prefetchDepth(concurrency: number, endpointConcurrency: number): number {
  return Math.max(0, Math.min(PREFETCH_ROUNDS * endpointConcurrency, concurrency - 3 * endpointConcurrency));
}
/** Pause before writing outcomes again after a failed write. */
const WRITE_RETRY_MS = 500;
/**
 * A single outcome the database refuses this many times, in flushes where it wrote other
 * outcomes (so the record is at fault, not the database), is dropped.
 */
const MAX_WRITE_TRIES = 3;

/** The most giving leases back may take during a stop, each time (a database that does not answer). */
const STOP_STEP_MS = 2000;

/** What one flush of outcomes did: outcomes written, and records refused on their own. */
type WriteRound = { down: boolean; wrote: number; refused: Array<{ r: AttemptRecord; err: unknown }> };

/** One webhook's share of the worker: requests being sent, and deliveries held until a slot frees. */
interface Endpoint {
  sending: number;
  held: Array<{ d: ClaimedDelivery; claimedAt: number }>;
}

/** Why a delivery to this webhook is not sent but failed, or null when it may be sent. */
function refusal(t: WebhookTarget | null): string | null {
  if (!t) return 'webhook deleted';
  if (!t.enabled) return 'webhook disabled';
  return t.planAllows ? null : 'account plan does not include webhooks';
}

/** What an outcome holds of the response, in characters: its body and its headers. */
function recordChars(a: AttemptRow): number {
  let n = a.responseBody?.length ?? 0;
  if (a.responseHeaders) for (const k in a.responseHeaders) n += k.length + a.responseHeaders[k]!.length;
  return n;
}

/**
 * The delivery loop of one process: lease due deliveries in batches, send each, decide what
 * comes next, and write the outcomes back in batches. At-least-once: a delivery leaves the
 * queue only when its outcome is committed; if the process dies first, the lease runs out
 * and another worker (or this one after a restart) sends it again.
 */
export class DeliveryWorker {
  readonly owner = `w_${randomBytes(6).toString('hex')}`;
  /**
   * Deliveries leased to this worker whose attempt has not ended: being sent or held. Held
   * ones count against opts.concurrency like requests do, so the worker never holds what it
   * could not send at once, and a webhook without prefetch never waits for a slot.
   */
  readonly #inFlight = new Set<string>(); // delivery ids
  #retriesInFlight = 0;
  /** Requests being sent, over all webhooks. */
  #sending = 0;
  readonly #endpoints = new Map<string, Endpoint>();
  /** Webhooks whose last attempt was fast (FAST_ATTEMPT_MS): they get prefetch. */
  readonly #fast = new Set<string>();
  /**
   * Webhooks that answered 410 Gone, and the URL that did, until the outcome that disables
   * them is written: reloading one meanwhile would still read it enabled, and send it its
   * next queued delivery.
   */
  readonly #gone = new Map<string, string>();
  /** Payload characters of the deliveries in #inFlight, for WorkerOptions.payloadBudget. */
  #payloadChars = 0;
  /** The largest payload started in the current window and in the one before (PAYLOAD_WINDOW_MS). */
  readonly #largest = { current: 0, previous: 0, since: 0 };
  #unwritten: AttemptRecord[] = [];
  /** The characters of response the unwritten outcomes hold (recordChars), for MAX_UNWRITTEN_CHARS. */
  #unwrittenChars = 0;
  /** Ids whose outcome is known but not yet committed: the lease is still ours. */
  readonly #unwrittenIds = new Set<string>(); // delivery ids
  /** Write failures per record, counted as in #settleRefused, and since when it fails. */
  readonly #writeFailures = new WeakMap<AttemptRecord, { tries: number; since: number }>();
  #writeTimer: NodeJS.Timeout | null = null;
  #writing: Promise<void> | null = null;
  #running = false;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #wakeRequested = false;
  /**
   * Due times of the retries this process scheduled, so the loop wakes when one is due rather
   * than up to a poll interval later. Only a latency aid: polling still finds everything.
   */
  #dueTimes: number[] = [];
  /**
   * After the retry lane came back empty it is asked again only after a poll interval, or
   * when a retry this process scheduled is due: asking it at every completion doubled the
   * claims (and the queue reads) per delivery while there was nothing to find.
   */
  #retryLaneQuietUntil = 0;
  /**
   * Webhooks that may have room again (a delivery of theirs finished) or fresh work (this
   * process just published for them). The next claim looks at them first, by index, so a
   * backlog queued earlier on a stalled endpoint never hides them.
   */
  readonly #refill = new Set<string>();
  /**
   * Webhooks that may have due deliveries waiting (the last claim that looked at them left some
   * behind, or work was queued for them without being leased to this worker). Only their
   * freed slots trigger a claim: a completion on a webhook whose queue is empty used to cost a
   * claim transaction that found nothing, about one per delivery at a steady rate.
   */
  readonly #backlogged = new Set<string>();
  /**
   * Rate-limited webhooks whose bucket ran short while they had work due, with the time a claim
   * for them will find credit again (Store's ClaimOptions.throttled). They are out of
   * #backlogged until then, so their freed slots cost no claims that would find nothing, and
   * the loop wakes at that time to claim for them instead of waiting for the poll.
   */
  readonly #throttled = new Map<string, number>();
  /** The last claim filled every free slot of this worker: a freed slot may find more. */
  #wantSlots = false;
  /**
   * The next claim must look beyond the refill webhooks (at the oldest due deliveries of any
   * webhook): set by the poll, by a wake-up that names no webhooks, and while claims fill up.
   * A claim woken only to refill known webhooks looks at just those.
   */
  #wide = true;
  /** When the next claim may walk every webhook with due deliveries (see Store.claimDue). */
  #thoroughAt = 0;
  /** The same for the retry lane, which is asked on its own schedule (see #retryLaneQuietUntil). */
  #retryThoroughAt = 0;

  /**
   * Whether a wall-clock time this worker set at most a poll interval ahead has come. One
   * further ahead than that means the clock was stepped back since: it counts as come, or the
   * walk and the retry lane would wait out the step.
   */
  #reached(at: number, now: number): boolean {
    return now >= at || at - now > this.opts.pollIntervalMs;
  }

  constructor(
    private readonly store: Store,
    private readonly sender: Sender,
    private readonly webhooks: WebhookCache,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Requests being sent now. */
  get inFlight(): number {
    return this.#sending;
  }

  /** Deliveries leased to this worker and waiting for a free slot (prefetched). */
  get held(): number {
    let n = 0;
    for (const e of this.#endpoints.values()) n += e.held.length;
    return n;
  }

  /** What a claim or publish may lease ahead, as of now (see Store's Prefetch). */
  #prefetch(max?: number): Prefetch | undefined {
    return this.opts.prefetch ? { extra: this.opts.prefetch, webhooks: this.#fast, max } : undefined;
  }

  /**
   * The most rows a claim (or publish lease) with `limit` may lease ahead, `free` slots being
   * free. While the retry lane may have work (it is not quiet, or a retry this process
   * scheduled is due) they leave the retry share not in use to the retry claim that follows:
   * first attempts leased ahead into every slot that freed up kept due retries of other
   * webhooks out of a full worker until the fast webhook's backlog ran dry.
   */
  #aheadMax(now: number, limit: number, free: number): number {
    const retriesMayWait = this.#reached(this.#retryLaneQuietUntil, now) || this.#dueTimes.some((t) => t <= now);
    const retryRoom = retriesMayWait ? Math.max(0, this.#retrySlots() - this.#retriesInFlight) : 0;
    return Math.max(0, Math.min(limit, free - retryRoom));
  }

  /**
   * How many of `limit` deliveries may be leased now within WorkerOptions.payloadBudget, at the
   * size of the largest payload seen lately (the largest possible until one is seen): 0 while
   * past it, except that one may go when nothing is in flight.
   */
  #byPayload(limit: number): number {
    const budget = this.opts.payloadBudget;
    if (budget === undefined || limit <= 0) return limit;
    const left = budget - this.#payloadChars;
    if (left <= 0) return this.#inFlight.size ? 0 : 1;
    this.#rollPayloadWindow(Date.now());
    const size = Math.max(this.#largest.current, this.#largest.previous) || (this.opts.maxPayload ?? budget);
    return Math.min(limit, Math.max(1, Math.floor(left / size)));
  }

  /** Starts a new window of #largest once the current one is over. */
  #rollPayloadWindow(now: number): void {
    if (now - this.#largest.since < PAYLOAD_WINDOW_MS) return;
    const stale = now - this.#largest.since >= 2 * PAYLOAD_WINDOW_MS;
    this.#largest.previous = stale ? 0 : this.#largest.current;
    this.#largest.current = 0;
    this.#largest.since = now;
  }

  #holdPayload(d: ClaimedDelivery): void {
    this.#payloadChars += d.data.length;
    this.#rollPayloadWindow(Date.now());
    if (d.data.length > this.#largest.current) this.#largest.current = d.data.length;
  }

  #retrySlots(): number {
    // At least one retry slot whatever the concurrency: with HERALD_WORKER_CONCURRENCY=1 the
    // reserve would otherwise round the retry lane down to nothing and retries would never run.
    return Math.max(1, Math.floor(this.opts.concurrency * (1 - FIRST_ATTEMPT_RESERVE)));
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /**
   * Room for deliveries leased to this worker inside the publish transaction (see
   * Store.PublishLease), or null while it is not taking work.
   */
  leaseOffer(): PublishLease | null {
    if (!this.#running || this.#stopped || this.#backedUp()) return null;
    const free = this.#byPayload(this.opts.concurrency - this.#inFlight.size);
    if (free <= 0) return null;
    const limit = Math.min(free, CLAIM_BATCH);
    return {
      owner: this.owner, leaseMs: this.opts.leaseMs, limit, endpointLimit: this.opts.endpointConcurrency,
      finished: [...this.#unwrittenIds], prefetch: this.#prefetch(this.#aheadMax(Date.now(), limit, free)),
    };
  }

  /** Send deliveries that were leased to this worker at publish, without a claim. */
  adopt(deliveries: readonly ClaimedDelivery[]): void {
    // Leased in a publish that committed after stopping began (the HTTP server finishes its
    // requests while the worker stops): nothing would start them, so they go back at once.
    if (!this.#running || this.#stopped) {
      if (deliveries.length) void this.store.releaseLeases(deliveries.map((d) => d.id), this.owner).catch(() => {});
      return;
    }
    const now = Date.now();
    for (const d of deliveries) this.#start(d, now);
  }

  /** New deliveries were committed (for these webhooks, when known): look now instead of at the next poll. */
  notify(webhookIds?: Iterable<string> | null, lane?: 'first' | 'retry' | null): void {
    if (!webhookIds) this.#wide = true;
    if (webhookIds) {
      const now = Date.now();
      for (const w of webhookIds) {
        // A rate-limited webhook short of credit is claimed for at its time, not per publish.
        if ((this.#throttled.get(w) ?? 0) > now) continue;
        if (this.#refill.size < MAX_TRACKED_WEBHOOKS) this.#refill.add(w);
        if (this.#backlogged.size < MAX_TRACKED_WEBHOOKS) this.#backlogged.add(w);
      }
    }
    // A redelivery (or a released retry) is in the retry lane, which is otherwise asked only
    // once per poll interval while it is quiet.
    if (lane === 'retry') this.#retryLaneQuietUntil = 0;
    this.#wakeRequested = true;
    this.#wake?.();
  }

  /**
   * Slots of these webhooks are free again (an attempt ended, or its outcome was written):
   * claim for those that may have work waiting, or for any when this worker was full.
   */
  #freed(webhookIds: Iterable<string>): void {
    // At the cap the set no longer knows every backlogged webhook: any freed slot may matter.
    let wake = this.#wantSlots || this.#backlogged.size >= MAX_TRACKED_WEBHOOKS;
    for (const w of webhookIds) {
      if (!this.#backlogged.has(w) || !this.#worthClaiming(w)) continue;
      if (this.#refill.size < MAX_TRACKED_WEBHOOKS) this.#refill.add(w);
      wake = true;
    }
    if (!wake) return;
    this.#wakeRequested = true;
    this.#wake?.();
  }

  /**
   * Whether a claim for this webhook is worth it now: always without prefetch (a slot is
   * free); with it, once half of what it may hold has gone, so that a claim fetches several
   * rounds of requests while the held ones keep its slots busy.
   */
  #worthClaiming(webhookId: string): boolean {
    if (!this.opts.prefetch || !this.#fast.has(webhookId)) return true;
    const e = this.#endpoints.get(webhookId);
    const taken = e ? e.sending + e.held.length : 0;
    return taken * 2 <= this.opts.endpointConcurrency + this.opts.prefetch;
  }

  async #run(): Promise<void> {
    let backoffMs = 0;
    while (this.#running) {
      let more = false;
      try {
        more = await this.#claimOnce();
        backoffMs = 0;
      } catch (e) {
        // Database unavailable: back off (up to 5 s) instead of spinning.
        backoffMs = Math.min(5000, Math.max(100, backoffMs * 2));
        this.log.error({ err: e }, 'claiming deliveries failed');
      }
      if (!this.#running) break;
      const full = this.#inFlight.size >= this.opts.concurrency || this.#backedUp();
      if (more && !full && backoffMs === 0) continue;
      // +1 ms: a timer may fire in the same millisecond the retry becomes due, and the claim
      // compares next_attempt_at <= now.
      // Due times already past stay listed until the retry lane is asked (#claimOnce): a full
      // worker cannot ask it, and dropping them here lost the wake-up until the next poll.
      const now = Date.now();
      const untilDue = Math.min(...this.#dueTimes.filter((t) => t >= now)) - now + 1;
      // Rate-limited webhooks short of credit, at their time: one already past means at once,
      // unless the worker is full (then a freed slot wakes it, and it claims for them).
      const untilCredit = Math.min(...[...this.#throttled.values()].filter((t) => !full || t >= now)) - now + 1;
      const ms = backoffMs || Math.max(1, Math.min(this.opts.pollIntervalMs, untilDue, untilCredit));
      // Woken for credit alone, the claim looks at those webhooks only, not at the whole queue.
      await this.#sleep(ms, backoffMs > 0 || untilCredit > Math.min(this.opts.pollIntervalMs, untilDue));
      // Let every response that is already in finish first (they are I/O callbacks, which run
      // before setImmediate), so one claim fills all the slots they free instead of one each.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Waits `ms`, or until woken; `wide`: the wait ending by itself makes the next claim look at everything. */
  #sleep(ms: number, wide = true): Promise<void> {
    if (this.#wakeRequested) {
      this.#wakeRequested = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(t);
        // Only clear our own hook: a stale one left behind would swallow the next notify()
        // (it would reset #wakeRequested while the loop is busy claiming), costing a poll.
        if (this.#wake === wake) this.#wake = null;
        resolve();
      };
      const wake = (): void => {
        this.#wakeRequested = false;
        finish();
      };
      const t = setTimeout(() => {
        if (wide) this.#wide = true; // the poll: look at everything
        finish();
      }, ms);
      this.#wake = wake;
    });
  }

  /**
   * Claim what there is room for, first attempts before retries. Returns true when a lane
   * filled its whole request, so more may be due at once; otherwise the loop waits for a
   * notify (a completion or a publish) or the poll. Claiming again straight after a short
   * claim would find nothing, and a claim reads the queue, which costs more the longer it is.
   */
  async #claimOnce(): Promise<boolean> {
    if (this.#backedUp()) return false;
    // Room in slots and, with large events, in memory: either way an ending attempt frees some.
    const free = this.#byPayload(this.opts.concurrency - this.#inFlight.size);
    if (free <= 0) {
      this.#wantSlots = true;
      return false;
    }
    const now = Date.now();
    for (const [w, at] of this.#throttled) {
      if (at > now) continue;
      this.#throttled.delete(w);
      if (this.#refill.size < MAX_TRACKED_WEBHOOKS) this.#refill.add(w);
      if (this.#backlogged.size < MAX_TRACKED_WEBHOOKS) this.#backlogged.add(w);
    }
    const base = { owner: this.owner, now, leaseMs: this.opts.leaseMs, endpointLimit: this.opts.endpointConcurrency };
    const firstLimit = Math.min(free, CLAIM_BATCH);
    // This claim answers every wake asked for until now: one left standing (asked for between
    // the loop waking and this point) would cost a second, wide claim with nothing named.
    this.#wakeRequested = false;
    // Refills asked for while the last claim ran may be moot now: it filled those webhooks.
    const named = this.#refill.size;
    // Webhooks holding deliveries go last: they have work for their slots already, and the
    // worker's room they would take ahead may be what another webhook is waiting for.
    const heldOf = (w: string): number => this.#endpoints.get(w)?.held.length ?? 0;
    const webhooks = [...this.#refill].filter((w) => this.#worthClaiming(w)).sort((x, y) => heldOf(x) - heldOf(y));
    this.#refill.clear();
    // Walking every webhook with due work is what finds endpoints hidden behind another's
    // backlog; it costs one index seek per such webhook, so at most once per poll interval.
    // It is also due whatever woke the loop: a steady stream of refills on a busy webhook wakes
    // the loop before the poll timer ever fires, and must not hide work nobody named (an
    // expired lease, a webhook left full, a retry behind another's).
    const walkDue = this.#reached(this.#thoroughAt, now);
    const ownDue = this.#dueTimes.some((t) => t <= now);
    if (named && !webhooks.length && !this.#wide && !walkDue && !ownDue) return false;
    const onlyWebhooks = !this.#wide && !walkDue && webhooks.length > 0;
    this.#wide = false;
    const thorough = !onlyWebhooks && walkDue;
    if (thorough) this.#thoroughAt = now + this.opts.pollIntervalMs;
    // Attempts that ended but whose outcomes are not written yet still hold their leases in
    // the database; their HTTP requests are over, so their webhooks' slots are free again.
    const finished = [...this.#unwrittenIds];
    const backlogged = new Set<string>();
    const throttled = new Map<string, number>();
    const first = await this.#claim({ ...base, lane: 'first', limit: firstLimit, webhooks, thorough, finished, backlogged, throttled, onlyWebhooks, prefetch: this.#prefetch(this.#aheadMax(now, firstLimit, free)) });
    // A claim that leased rows ahead (they are held at once) took every row it could send of
    // those it looked at (the store orders rows ahead last), so its reaching the limit says
    // nothing about work waiting for a slot: counting it as full made every freed slot wake a
    // wide claim while a fast webhook's held deliveries filled the worker. Work it did not
    // look at (a named claim looks at named webhooks only) is found by the walk once per poll
    // interval, as when the worker is not full.
    let aheadTaken = false;
    for (const d of first) if (this.#start(d, now)) aheadTaken = true;
    // Retries held but not yet sent count as well.
    const retryCap = this.#retrySlots() - this.#retriesInFlight;
    const retryFree = this.#byPayload(Math.min(this.opts.concurrency - this.#inFlight.size, retryCap));
    let retriesFull = false;
    let retryAsked = false;
    const retryNow = Date.now();
    const ownRetryDue = this.#dueTimes.some((t) => t <= retryNow);
    // Not once the worker is stopping: the first lane's claim may have come back late.
    if (this.#running && retryFree > 0 && (this.#reached(this.#retryLaneQuietUntil, retryNow) || ownRetryDue)) {
      retryAsked = true;
      this.#dueTimes = this.#dueTimes.filter((t) => t > retryNow); // looked for now
      const retryLimit = Math.min(retryFree, CLAIM_BATCH);
      const retryThorough = this.#reached(this.#retryThoroughAt, retryNow);
      if (retryThorough) this.#retryThoroughAt = retryNow + this.opts.pollIntervalMs;
      const retries = await this.#claim({ ...base, now: retryNow, lane: 'retry', limit: retryLimit, webhooks, thorough: retryThorough, finished, backlogged, throttled, prefetch: this.#prefetch() });
      let retriesAhead = false;
      for (const d of retries) if (this.#start(d, retryNow)) retriesAhead = true;
      retriesFull = retries.length === retryLimit && !retriesAhead;
      this.#retryLaneQuietUntil = retries.length ? 0 : retryNow + this.opts.pollIntervalMs;
    }
    // The webhooks asked about in both lanes and not reported backlogged had nothing more due.
    if (retryAsked) for (const w of webhooks) if (!backlogged.has(w)) this.#backlogged.delete(w);
    for (const w of backlogged) if (this.#backlogged.size < MAX_TRACKED_WEBHOOKS) this.#backlogged.add(w);
    // Rate-limited webhooks short of credit wait for their time, not for a freed slot.
    for (const [w, at] of throttled) {
      if (this.#throttled.size >= MAX_TRACKED_WEBHOOKS && !this.#throttled.has(w)) continue; // stays backlogged
      this.#backlogged.delete(w);
      this.#throttled.set(w, at);
    }
    const more = (first.length === firstLimit && !aheadTaken) || retriesFull;
    if (more) this.#wide = true;
    // Retries may be waiting for the retry share of the slots, which any ending attempt frees.
    this.#wantSlots = more || (retryFree <= 0 && (this.#reached(this.#retryLaneQuietUntil, retryNow) || ownRetryDue));
    return more;
  }

  /** Store.claimDue, timed and counted (herald_claim_duration_seconds). */
  async #claim(o: ClaimOptions): Promise<ClaimedDelivery[]> {
    const end = this.metrics.claimDuration.startTimer({ lane: o.lane });
    const got = await this.store.claimDue(o);
    end();
    if (got.length) this.metrics.claimed.inc({ lane: o.lane }, got.length);
    return got;
  }

  /** Take on a leased delivery: send it now, or hold it for a free slot of its webhook (returns true). */
  #start(d: ClaimedDelivery, claimedAt: number): boolean {
    // Our own lease ran out while this delivery was still ours (an attempt outlived it, or its
    // outcome is waiting to be written) and we claimed it again. Sending it twice would make
    // two attempts with one number; the pending outcome will land (the owner still matches)
    // and release the lease.
    if (this.#inFlight.has(d.id) || this.#unwrittenIds.has(d.id)) {
      this.log.warn({ delivery_id: d.id }, 'claimed a delivery this worker still holds; not sending it twice');
      return false;
    }
    this.#inFlight.add(d.id);
    this.#holdPayload(d);
    if (d.attempts > 0) this.#retriesInFlight++;
    let e = this.#endpoints.get(d.webhookId);
    if (!e) this.#endpoints.set(d.webhookId, (e = { sending: 0, held: [] }));
    e.held.push({ d, claimedAt });
    this.#startHeld(e);
    return e.held.at(-1)?.d === d;
  }

  /**
   * Start held deliveries of a webhook, oldest first, while it has free slots. The worker's own
   * limit needs no check: held deliveries count against it already (#inFlight).
   */
  #startHeld(e: Endpoint): void {
    while (e.held.length && e.sending < this.opts.endpointConcurrency && this.#running) {
      const { d, claimedAt } = e.held.shift()!;
      e.sending++;
      this.#sending++;
      this.#deliver(d, claimedAt)
        .catch((err: unknown) => this.log.error({ err, delivery_id: d.id }, 'delivery crashed; its lease will expire and it will be retried'))
        .finally(() => this.#ended(d, e));
    }
  }

  /** An attempt ended (its outcome waits to be written): its slot goes to a held delivery. */
  #ended(d: ClaimedDelivery, e: Endpoint): void {
    e.sending--;
    this.#sending--;
    this.#inFlight.delete(d.id);
    this.#payloadChars -= d.data.length;
    if (d.attempts > 0) this.#retriesInFlight--;
    this.#startHeld(e);
    if (!e.sending && !e.held.length) this.#endpoints.delete(d.webhookId);
    this.#freed([d.webhookId]);
  }

  async #deliver(d: ClaimedDelivery, claimedAt: number): Promise<void> {
    let target: WebhookTarget | null;
    try {
      target = await this.webhooks.get(d.webhookId);
      // Refusing is for good, so a cached refusal is confirmed by a fresh read (made after the
      // claim): the webhook may have been turned on again by another process, and this
      // delivery made since.
      if (this.#running && refusal(target)) target = await this.webhooks.get(d.webhookId, true);
    } catch (e) {
      if (!(e instanceof UnreadableWebhookError)) throw e;
      // Nothing can be signed or sent for it until the webhook is saved again; failing at once
      // beats being claimed again at every lease for ever. Recover sends these once it is.
      this.log.error({ err: e, delivery_id: d.id, webhook_id: d.webhookId }, 'webhook cannot be decrypted; failing its delivery');
      await this.store.failWithoutAttempt([d.id], this.owner, 'webhook secret or header values cannot be decrypted; set its secret and custom headers again');
      this.metrics.deliveries.inc({ outcome: 'failed' });
      return;
    }
    if (!this.#running) {
      // Stopping began while the webhook loaded: not sent, so given back for another process.
      await this.store.releaseLeases([d.id], this.owner).catch(() => {});
      return;
    }
    // A 410 this worker got disables the webhook before its outcome, which stores that, is written.
    const why = refusal(target) ?? (this.#gone.get(d.webhookId) === target?.url ? 'webhook disabled' : null);
    if (why !== null || target === null) {
      await this.store.failWithoutAttempt([d.id], this.owner, why ?? 'webhook deleted'); // (null only to the type checker)
      this.metrics.deliveries.inc({ outcome: 'failed' });
      return;
    }
    // The lease must outlast the whole attempt, or another worker could take the delivery
    // while this one is still sending it. If loading the webhook was slow (a locked or
    // overloaded database), hand the delivery back instead of starting an attempt the lease
    // no longer covers; it is claimed again, with a fresh lease, at once.
    // (A lease configured shorter than that to begin with is not second-guessed here: handing
    // every delivery back would deliver nothing.)
    const needed = this.sender.timeoutMs + LEASE_SAFETY_MS;
    const leaseLeft = claimedAt + this.opts.leaseMs - Date.now();
    if (leaseLeft < needed && this.opts.leaseMs >= needed) {
      this.log.warn({ delivery_id: d.id, lease_left_ms: leaseLeft }, 'too little lease left to send; giving the delivery back');
      await this.store.releaseLeases([d.id], this.owner);
      this.notify([d.webhookId], d.attempts > 0 ? 'retry' : 'first'); // claimed again at once
      return;
    }
    const attemptNo = d.attempts + 1;
    const startedAt = Date.now();
    const body = buildBody({ eventType: d.eventType, createdAt: d.eventCreatedAt, deliveryId: d.id, data: d.data });
    const headers = deliveryHeaders(
      {
        eventType: d.eventType, deliveryId: d.id, attemptNo, timestampSec: Math.floor(startedAt / 1000),
        secret: target.secret, previousSecret: previousSecretAt(target, startedAt), custom: target.headers,
      },
      body,
    );
    let res: SendResult;
    try {
      res = await this.sender.send(target.url, headers, body);
    } catch (e) {
      // send() returns outcomes as values; a throw is a bug. Record it as a failed attempt so
      // the delivery follows the retry policy and ends, instead of crashing at every lease.
      this.log.error({ err: e, delivery_id: d.id }, 'sender threw');
      res = { statusCode: null, headers: null, body: null, truncated: false, errorKind: 'network', errorMessage: 'internal error while sending', durationMs: Date.now() - startedAt };
    }
    if (res.detail) this.log.info({ delivery_id: d.id, webhook_id: d.webhookId, error_kind: res.errorKind, detail: res.detail }, 'attempt failed');
    this.#record(d, target.url, attemptNo, startedAt, redactHeaders(headers, Object.keys(target.headers)), res);
  }

  #record(d: ClaimedDelivery, url: string, attemptNo: number, startedAt: number, requestHeaders: Record<string, string>, res: SendResult): void {
    const step = nextStep(
      this.opts.retry,
      attemptNo,
      { statusCode: res.statusCode, retryAfterMs: parseRetryAfter(res.headers?.['retry-after'], Date.now()) },
      Math.random(),
    );
    const attempt: AttemptRow = {
      id: newId('att', startedAt),
      deliveryId: d.id,
      attemptNo,
      startedAt,
      durationMs: res.durationMs,
      statusCode: res.statusCode,
      success: step.kind === 'succeeded',
      errorKind: res.errorKind,
      errorMessage: res.errorMessage,
      requestHeaders,
      responseHeaders: res.headers,
      responseBody: res.body,
      responseTruncated: res.truncated,
    };
    if (res.durationMs > FAST_ATTEMPT_MS) this.#fast.delete(d.webhookId);
    else if (!this.#fast.has(d.webhookId)) {
      // Oldest first out (a Set iterates in insertion order): deleted webhooks do not pile up.
      if (this.#fast.size >= MAX_TRACKED_WEBHOOKS) this.#fast.delete(this.#fast.values().next().value!);
      this.#fast.add(d.webhookId);
    }
    const gone = step.kind === 'failed' && step.reason === 'gone';
    const nextAttemptAt = step.kind === 'retry' ? Date.now() + step.delayMs : null;
    if (nextAttemptAt !== null && this.#dueTimes.length < MAX_TRACKED_DUE) this.#dueTimes.push(nextAttemptAt);
    this.#unwrittenIds.add(d.id);
    this.#unwrittenChars += recordChars(attempt);
    this.#unwritten.push({
      attempt,
      owner: this.owner,
      webhookId: d.webhookId,
      status: step.kind === 'succeeded' ? 'succeeded' : step.kind === 'failed' ? 'failed' : 'pending',
      nextAttemptAt,
      error: res.errorMessage,
      disableWebhook: gone ? { reason: `the receiver answered 410 Gone on ${new Date().toISOString()}`, url } : null,
    });
    if (gone && (this.#gone.size < MAX_TRACKED_WEBHOOKS || this.#gone.has(d.webhookId))) this.#gone.set(d.webhookId, url);
    this.metrics.attempts.inc({ result: attempt.success ? 'success' : 'failure', error_kind: res.errorKind ?? 'none' });
    this.metrics.attemptDuration.observe(res.durationMs / 1000);
    this.metrics.deliveries.inc({ outcome: step.kind === 'retry' ? 'retry_scheduled' : step.kind });
    this.#scheduleWrite();
  }

  /** Outcomes wait to be written past either bound: claim nothing more until they are. */
  #backedUp(): boolean {
    return this.#unwritten.length >= MAX_UNWRITTEN || this.#unwrittenChars >= MAX_UNWRITTEN_CHARS;
  }

  #scheduleWrite(): void {
    if (this.#stopped) return;
    if (this.#unwritten.length >= WRITE_BATCH) void this.#flush();
    else if (!this.#writeTimer) this.#writeTimer = setTimeout(() => void this.#flush(), WRITE_DELAY_MS);
  }

  /** Write outcomes; one flush at a time. Records that could not be written are tried again. */
  async #flush(): Promise<void> {
    if (this.#writeTimer) {
      clearTimeout(this.#writeTimer);
      this.#writeTimer = null;
    }
    if (this.#writing) return this.#writing;
    if (!this.#unwritten.length) return;
    const batch = this.#unwritten.splice(0, WRITE_BATCH * 4);
    const db: WriteRound = { down: false, wrote: 0, refused: [] };
    this.#writing = this.#write(batch, db)
      .then(async (returned) => {
        const again = this.#settleRefused(returned, db);
        const retry = new Set(again);
        for (const r of batch) {
          if (retry.has(r)) continue;
          this.#unwrittenIds.delete(r.attempt.deliveryId);
          this.#unwrittenChars -= recordChars(r.attempt);
          if (r.disableWebhook) {
            // Written (or given up on): the webhook as stored says what it is from now on.
            this.#gone.delete(r.webhookId);
            this.webhooks.invalidate(r.webhookId);
          }
        }
        // Written outcomes released their leases: their webhooks have room again, which the
        // claim counts from the database, so this (not the end of the request) is when to look.
        if (again.length < batch.length) this.#freed(batch.filter((r) => !retry.has(r)).map((r) => r.webhookId));
        if (!again.length) return;
        this.#unwritten.unshift(...again);
        // Pause only for an unavailable database; a refused record alone is retried with the
        // next batch, so it never delays the other outcomes.
        if (db.down) await new Promise<void>((r) => setTimeout(r, WRITE_RETRY_MS));
      })
      .catch((e: unknown) => this.log.error({ err: e }, 'writing attempt outcomes failed'))
      .finally(() => {
        this.#writing = null;
        if (this.#unwritten.length) this.#scheduleWrite();
      });
    return this.#writing;
  }

  /**
   * Write a batch in one transaction; returns the records to try again. When the batch fails
   * and the database answers, some record in it is refused (its delivery was deleted with its
   * webhook while the attempt was in flight, say): halve the batch until that record is alone,
   * so it cannot hold every other outcome hostage; #settleRefused decides whether to drop it.
   * A dropped outcome's lease runs out; if the delivery still exists it is sent again
   * (at-least-once).
   */
  async #write(batch: AttemptRecord[], db: WriteRound): Promise<AttemptRecord[]> {
    try {
      const end = this.metrics.outcomeWriteDuration.startTimer();
      const late = await this.store.recordAttempts(batch);
      end();
      // Its lease was taken over, or the delivery redelivered, before the outcome was written.
      if (late) this.log.warn({ count: late }, 'attempt outcomes arrived after a newer attempt or a redelivery; kept in the history, delivery state left as is');
      this.metrics.outcomesWritten.inc(batch.length);
      db.wrote += batch.length;
      return [];
    } catch (e) {
      // Busy, timed out or unreachable: no record is at fault, and halving the batch would only
      // wait out the same lock once per half.
      const up = !isDatabaseUnavailable(e) && (await this.store.ping().then(
        () => true,
        () => false,
      ));
      if (!up) {
        db.down = true;
        this.log.error({ err: e, count: batch.length }, 'writing attempt outcomes failed (database unavailable); will retry');
        return batch;
      }
      if (batch.length > 1) {
        const mid = batch.length >> 1;
        return [...(await this.#write(batch.slice(0, mid), db)), ...(await this.#write(batch.slice(mid), db))];
      }
      db.refused.push({ r: batch[0]!, err: e });
      return batch;
    }
  }

  /**
   * The records the database refused one by one in this flush: which to try again. A record
   * is the culprit only if the flush wrote other records: a fault that refuses everything for a
   * while (a lock timeout, a failing trigger, a server restarting) is the database's, and is
   * waited out like an outage instead of using up the records' tries in milliseconds. A record
   * refused while nothing else gets written is dropped only once it has failed for longer than
   * a lease: by then its delivery may be claimed and sent again anyway (at-least-once).
   */
  #settleRefused(again: AttemptRecord[], db: WriteRound): AttemptRecord[] {
    if (!db.refused.length) return again;
    const now = Date.now();
    const culprit = db.wrote > 0;
    if (!culprit) db.down = true; // pause before the next try
    const dropped = new Set<AttemptRecord>();
    for (const { r, err } of db.refused) {
      const f = this.#writeFailures.get(r) ?? { tries: 0, since: now };
      if (culprit) f.tries++;
      this.#writeFailures.set(r, f);
      const log = { err, delivery_id: r.attempt.deliveryId, attempt: r.attempt.attemptNo, tries: f.tries, failing_ms: now - f.since };
      if (f.tries >= MAX_WRITE_TRIES || now - f.since > this.opts.leaseMs) {
        dropped.add(r);
        this.log.error(log, 'dropping an attempt outcome the database keeps refusing; its lease will run out');
      } else this.log.warn(log, 'writing an attempt outcome failed; will retry');
    }
    return dropped.size ? again.filter((r) => !dropped.has(r)) : again;
  }

  /**
   * Graceful stop: claim nothing more, let in-flight attempts finish (each is bounded by the
   * timeout), write every outcome, then give back any lease still held.
   */
  async stop(graceMs: number): Promise<void> {
    this.#running = false;
    this.#wake?.();
    // One grace for both waits below: a claim stuck on the database and attempts in flight.
    const deadline = performance.now() + graceMs;
    // The loop ends after its current claim. A claim stuck on an unresponsive database (which
    // the statement timeout ends later) must not hold the shutdown past the grace period; what
    // it claims after that is given back when it returns.
    if (!(await within(this.#loop ?? Promise.resolve(), graceMs))) void this.#loop?.then(() => this.#giveBackHeld());
    // Held deliveries never started (#startHeld stops with the worker): they go back now, not
    // after the grace period, which an orchestrator may cut short with a SIGKILL.
    await within(this.#giveBackHeld(), STOP_STEP_MS);
    while (this.#inFlight.size && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const abandoned = [...this.#inFlight];
    // Outcomes not written by then are lost to this process only: their leases run out and the
    // deliveries are sent again (at-least-once), so shutdown never hangs on a dead database.
    const writeDeadline = performance.now() + 5000;
    while ((this.#unwritten.length || this.#writing) && performance.now() < writeDeadline) {
      await within(this.#flush(), writeDeadline - performance.now());
    }
    this.#stopped = true;
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    if (abandoned.length) await within(this.store.releaseLeases(abandoned, this.owner), STOP_STEP_MS);
  }

  /** Gives back the leases of deliveries held but never started. */
  async #giveBackHeld(): Promise<void> {
    const held = [...this.#endpoints.values()].flatMap((e) => e.held.splice(0).map((h) => h.d));
    for (const d of held) {
      this.#inFlight.delete(d.id);
      this.#payloadChars -= d.data.length;
      if (d.attempts > 0) this.#retriesInFlight--;
    }
    if (held.length) await this.store.releaseLeases(held.map((d) => d.id), this.owner).catch(() => {});
  }
}
