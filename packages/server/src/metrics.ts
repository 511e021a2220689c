import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { within } from './core/within.js';
import type { Store } from './store/store.js';

/** Prometheus metrics of one process. A registry per app, so tests can build several apps. */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  deliveries: Counter<'outcome'>;
  attempts: Counter<'result' | 'error_kind'>;
  attemptDuration: Histogram<string>;
  claimDuration: Histogram<'lane'>;
  claimed: Counter<'lane'>;
  outcomeWriteDuration: Histogram<string>;
  outcomesWritten: Counter<string>;
  recovered: Counter<string>;
  publishRefused: Counter<string>;
  rateLimited: Counter<string>;
}

/** How long a scrape waits for the queue's figures before answering without them. */
const QUEUE_STATS_WAIT_MS = 2000;

/** Database round trips, from well under a millisecond (SQLite) to a busy remote PostgreSQL. */
const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export function createMetrics(store: Store | null): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'herald_process_' });
  const m: Metrics = {
    registry,
    httpRequests: new Counter({ name: 'herald_http_requests_total', help: 'HTTP requests served', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'herald_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
    }),
    deliveries: new Counter({ name: 'herald_deliveries_total', help: 'Delivery outcomes after an attempt (succeeded, failed, retry_scheduled)', labelNames: ['outcome'], registers: [registry] }),
    attempts: new Counter({ name: 'herald_attempts_total', help: 'Attempts by result and error kind', labelNames: ['result', 'error_kind'], registers: [registry] }),
    attemptDuration: new Histogram({
      name: 'herald_attempt_duration_seconds', help: 'Attempt latency, connect to last byte read',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry],
    }),
    // Where a worker's time goes between two requests of a busy webhook: leasing the next
    // deliveries and writing the last outcomes. On PostgreSQL claims of the whole cluster queue
    // on one lock, so a claim that takes long here is the first thing to look at.
    claimDuration: new Histogram({
      name: 'herald_claim_duration_seconds', help: 'Time to lease due deliveries: one claim of a lane, with its transaction and the payload read',
      labelNames: ['lane'], buckets: DB_BUCKETS, registers: [registry],
    }),
    claimed: new Counter({ name: 'herald_claimed_deliveries_total', help: 'Deliveries leased by the claims of this worker, by lane (first attempt or retry); not those leased as they were published', labelNames: ['lane'], registers: [registry] }),
    outcomeWriteDuration: new Histogram({
      name: 'herald_outcome_write_duration_seconds', help: 'Time to write one batch of attempt outcomes (one transaction)', buckets: DB_BUCKETS, registers: [registry],
    }),
    outcomesWritten: new Counter({ name: 'herald_outcomes_written_total', help: 'Attempt outcomes written to the database', registers: [registry] }),
    recovered: new Counter({ name: 'herald_recovered_deliveries_total', help: 'Failed deliveries queued again by recover (POST …/webhooks/{webhook}/recover)', registers: [registry] }),
    rateLimited: new Counter({ name: 'herald_http_rate_limited_total', help: 'API requests refused with 429 by HERALD_API_RATE_LIMIT', registers: [registry] }),
    publishRefused: new Counter({
      name: 'herald_publish_refused_total', help: 'Events refused with 503 because as many as Herald holds at once were already waiting for the database', registers: [registry],
    }),
  };
  if (store) {
    // Read from the database at scrape time: it is the queue, shared by every process.
    const oldest = new Gauge({ name: 'herald_queue_oldest_due_age_seconds', help: 'How long the most overdue pending delivery has been due', registers: [registry] });
    const leased = new Gauge({ name: 'herald_queue_in_flight', help: 'Deliveries currently leased by a worker', registers: [registry] });
    new Gauge({
      name: 'herald_queue_depth',
      help: 'Pending deliveries: by lane (first attempt or retry) and those due now',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        // Pending only: finished deliveries are counted by herald_deliveries_total, and
        // counting a large table at every scrape would stall the event loop on SQLite.
        // With the database down or slow, the scrape still answers, without these gauges:
        // the process's own counters matter most then.
        const stats = store.queueStats();
        stats.catch(() => {}); // settled late, after the scrape gave up on it
        const s = (await within(stats, QUEUE_STATS_WAIT_MS)) ? await stats.catch(() => null) : null;
        if (!s) {
          for (const g of [this, oldest, leased]) g.reset();
          return;
        }
        this.set({ status: 'pending_first' }, s.pendingFirst);
        this.set({ status: 'pending_retry' }, s.pendingRetry);
        this.set({ status: 'due' }, s.dueNow);
        oldest.set(s.oldestDueAgeMs / 1000);
        leased.set(s.leased);
      },
    });
  }
  return m;
}
