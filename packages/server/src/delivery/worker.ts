import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { newId } from '../core/ids.js';
import { nextStep, parseRetryAfter, type RetryPolicy } from '../core/retry-policy.js';
import { buildBody, deliveryHeaders, redactHeaders } from '../core/signing.js';
import type { AttemptRow } from '../core/types.js';
import type { AttemptRecord, ClaimedDelivery, Store } from '../store/store.js';
import type { Metrics } from '../metrics.js';
import type { Sender, SendResult } from './sender.js';
import type { WebhookCache } from './webhook-cache.js';

export interface WorkerOptions {
  concurrency: number;
  endpointConcurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  retry: RetryPolicy;
}

/** Share of the slots retries may never take, so fresh events always find room at once. */
const FIRST_ATTEMPT_RESERVE = 0.25;
/** Attempt outcomes are written in batches: at most this many per transaction… */
const WRITE_BATCH = 256;
/** …and at most this long after the attempt ended. */
const WRITE_DELAY_MS = 5;
/** Stop claiming while this many outcomes wait to be written (the database is struggling). */
const MAX_UNWRITTEN = 10_000;

/**
 * The delivery loop of one process: lease due deliveries in batches, send each, decide what
 * comes next, and write the outcomes back in batches. At-least-once: a delivery leaves the
 * queue only when its outcome is committed; if the process dies first, the lease runs out
 * and another worker (or this one after a restart) sends it again.
 */
export class DeliveryWorker {
  readonly owner = `w_${randomBytes(6).toString('hex')}`;
  readonly #inFlight = new Map<string, ClaimedDelivery>();
  #retriesInFlight = 0;
  #unwritten: AttemptRecord[] = [];
  #writeTimer: NodeJS.Timeout | null = null;
  #writing: Promise<void> | null = null;
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #wakeRequested = false;

  constructor(
    private readonly store: Store,
    private readonly sender: Sender,
    private readonly webhooks: WebhookCache,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  get inFlight(): number {
    return this.#inFlight.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** New deliveries were committed: look now instead of at the next poll. */
  notify(): void {
    this.#wakeRequested = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    let backoffMs = 0;
    while (this.#running) {
      let claimed = 0;
      try {
        claimed = await this.#claimOnce();
        backoffMs = 0;
      } catch (e) {
        // Database unavailable: back off (up to 5 s) instead of spinning.
        backoffMs = Math.min(5000, Math.max(100, backoffMs * 2));
        this.log.error({ err: e }, 'claiming deliveries failed');
      }
      if (!this.#running) break;
      const full = this.#inFlight.size >= this.opts.concurrency || this.#unwritten.length >= MAX_UNWRITTEN;
      if (claimed > 0 && !full && backoffMs === 0) continue;
      await this.#sleep(backoffMs || this.opts.pollIntervalMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakeRequested) {
      this.#wakeRequested = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        this.#wakeRequested = false;
        done();
      };
    });
  }

  async #claimOnce(): Promise<number> {
    if (this.#unwritten.length >= MAX_UNWRITTEN) return 0;
    const free = this.opts.concurrency - this.#inFlight.size;
    if (free <= 0) return 0;
    const now = Date.now();
    const base = { owner: this.owner, now, leaseMs: this.opts.leaseMs, endpointLimit: this.opts.endpointConcurrency };
    const first = await this.store.claimDue({ ...base, lane: 'first', limit: Math.min(free, 500) });
    for (const d of first) this.#start(d);
    const retryCap = Math.floor(this.opts.concurrency * (1 - FIRST_ATTEMPT_RESERVE)) - this.#retriesInFlight;
    const retryFree = Math.min(this.opts.concurrency - this.#inFlight.size, retryCap);
    let retries: ClaimedDelivery[] = [];
    if (retryFree > 0) {
      retries = await this.store.claimDue({ ...base, now: Date.now(), lane: 'retry', limit: Math.min(retryFree, 500) });
      for (const d of retries) this.#start(d);
    }
    return first.length + retries.length;
  }

  #start(d: ClaimedDelivery): void {
    this.#inFlight.set(d.id, d);
    if (d.attempts > 0) this.#retriesInFlight++;
    this.#deliver(d)
      .catch((e: unknown) => this.log.error({ err: e, delivery_id: d.id }, 'delivery crashed; its lease will expire and it will be retried'))
      .finally(() => {
        this.#inFlight.delete(d.id);
        if (d.attempts > 0) this.#retriesInFlight--;
        this.notify();
      });
  }

  async #deliver(d: ClaimedDelivery): Promise<void> {
    const target = await this.webhooks.get(d.webhookId);
    if (!target || !target.enabled) {
      await this.store.failWithoutAttempt([d.id], this.owner, target ? 'webhook disabled' : 'webhook deleted');
      this.metrics.deliveries.inc({ outcome: 'failed' });
      return;
    }
    const attemptNo = d.attempts + 1;
    const startedAt = Date.now();
    const body = buildBody({ eventType: d.eventType, createdAt: d.eventCreatedAt, deliveryId: d.id, data: d.data });
    const headers = deliveryHeaders(
      { eventType: d.eventType, deliveryId: d.id, attemptNo, timestampSec: Math.floor(startedAt / 1000), secret: target.secret, custom: target.headers },
      body,
    );
    const res = await this.sender.send(target.url, headers, body);
    if (res.detail) this.log.info({ delivery_id: d.id, webhook_id: d.webhookId, error_kind: res.errorKind, detail: res.detail }, 'attempt failed');
    this.#record(d, attemptNo, startedAt, redactHeaders(headers, Object.keys(target.headers)), res);
  }

  #record(d: ClaimedDelivery, attemptNo: number, startedAt: number, requestHeaders: Record<string, string>, res: SendResult): void {
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
    const gone = step.kind === 'failed' && step.reason === 'gone';
    this.#unwritten.push({
      attempt,
      owner: this.owner,
      webhookId: d.webhookId,
      status: step.kind === 'succeeded' ? 'succeeded' : step.kind === 'failed' ? 'failed' : 'pending',
      nextAttemptAt: step.kind === 'retry' ? Date.now() + step.delayMs : null,
      error: res.errorMessage,
      disableWebhook: gone ? `the receiver answered 410 Gone on ${new Date().toISOString()}` : null,
    });
    if (gone) this.webhooks.invalidate(d.webhookId);
    this.metrics.attempts.inc({ result: attempt.success ? 'success' : 'failure', error_kind: res.errorKind ?? 'none' });
    this.metrics.attemptDuration.observe(res.durationMs / 1000);
    this.metrics.deliveries.inc({ outcome: step.kind === 'retry' ? 'retry_scheduled' : step.kind });
    this.#scheduleWrite();
  }

  #scheduleWrite(): void {
    if (this.#unwritten.length >= WRITE_BATCH) void this.#flush();
    else if (!this.#writeTimer) this.#writeTimer = setTimeout(() => void this.#flush(), WRITE_DELAY_MS);
  }

  /** Write outcomes; one flush at a time. On failure they stay queued and are tried again. */
  async #flush(): Promise<void> {
    if (this.#writeTimer) {
      clearTimeout(this.#writeTimer);
      this.#writeTimer = null;
    }
    if (this.#writing) return this.#writing;
    if (!this.#unwritten.length) return;
    const batch = this.#unwritten.splice(0, WRITE_BATCH * 4);
    this.#writing = this.store
      .recordAttempts(batch)
      .catch((e: unknown) => {
        this.log.error({ err: e, count: batch.length }, 'writing attempt outcomes failed; will retry');
        this.#unwritten.unshift(...batch);
        return new Promise<void>((r) => setTimeout(r, 500));
      })
      .finally(() => {
        this.#writing = null;
        if (this.#unwritten.length) this.#scheduleWrite();
      });
    return this.#writing;
  }

  /**
   * Graceful stop: claim nothing more, let in-flight attempts finish (each is bounded by the
   * timeout), write every outcome, then give back any lease still held.
   */
  async stop(graceMs: number): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    const deadline = Date.now() + graceMs;
    while (this.#inFlight.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const abandoned = [...this.#inFlight.keys()];
    // Outcomes not written by then are lost to this process only: their leases run out and the
    // deliveries are sent again (at-least-once), so shutdown never hangs on a dead database.
    const writeDeadline = Date.now() + 5000;
    while ((this.#unwritten.length || this.#writing) && Date.now() < writeDeadline) await this.#flush();
    if (abandoned.length) await this.store.releaseLeases(abandoned, this.owner).catch(() => {});
  }
}
