import type { Account, AttemptRow, DeliveryRow, DeliveryStatus, EventRow, EventType, Plan, WebhookRow } from '../core/types.js';
import { idFloor, newId } from '../core/ids.js';
import { insertRows, insertValues, type Column, type SqlExecutor, type SqlParam } from './executor.js';

/**
 * Everything Herald keeps, behind one class that speaks portable SQL through a SqlExecutor.
 * SQLite and PostgreSQL differ only inside their executors (store/sqlite, store/postgres);
 * the shared conformance suite (test/store.conformance.ts) runs against both.
 */

// ---------- row shapes as the database returns them ----------
type Num = number | string; // PostgreSQL BIGINT arrives as a string unless parsed
const n = (v: Num | null | undefined): number => Number(v);
const nn = (v: Num | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));
/**
 * PostgreSQL TEXT cannot hold U+0000 (the insert fails), and receivers can answer anything, so
 * a NUL in a response body would make its whole batch of attempts unrecordable, and the
 * delivery would be retried forever. Both backends store U+FFFD instead, so they behave alike.
 */
const text = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);
const textN = (s: string | null): string | null => (s === null ? null : text(s));

interface DbAccount { id: string; name: string; plan: Plan; created_at: Num; updated_at: Num }
interface DbWebhook {
  id: string; account_id: string; url: string; description: string; events: string;
  headers_enc: string | null; secret_enc: string | null; previous_secret_enc: string | null; previous_secret_until: Num | null;
  enabled: Num; disabled_reason: string | null; rate_limit: Num | null; created_at: Num; updated_at: Num;
}
interface DbDelivery {
  id: string; account_id: string; event_id: string; webhook_id: string; event_type: string;
  status: DeliveryStatus; attempts: Num; next_attempt_at: Num | null; last_attempt_at: Num | null;
  last_status_code: Num | null; last_error: string | null; last_duration_ms: Num | null;
  created_at: Num; updated_at: Num;
}
interface DbAttempt {
  id: string; delivery_id: string; attempt_no: Num; started_at: Num; duration_ms: Num;
  status_code: Num | null; success: Num; error_kind: string | null; error_message: string | null;
  request_headers: string; response_headers: string | null; response_body: string | null; response_truncated: Num;
}

const toAccount = (r: DbAccount): Account => ({ id: r.id, name: r.name, plan: r.plan, createdAt: n(r.created_at), updatedAt: n(r.updated_at) });
const toWebhook = (r: DbWebhook): WebhookRow => ({
  id: r.id, accountId: r.account_id, url: r.url, description: r.description, events: JSON.parse(r.events) as string[],
  headersEnc: r.headers_enc, secretEnc: r.secret_enc, previousSecretEnc: r.previous_secret_enc, previousSecretUntil: nn(r.previous_secret_until),
  enabled: n(r.enabled) === 1, disabledReason: r.disabled_reason, rateLimit: nn(r.rate_limit),
  createdAt: n(r.created_at), updatedAt: n(r.updated_at),
});
const toDelivery = (r: DbDelivery): DeliveryRow => ({
  id: r.id, accountId: r.account_id, eventId: r.event_id, webhookId: r.webhook_id, eventType: r.event_type,
  status: r.status, attempts: n(r.attempts), nextAttemptAt: nn(r.next_attempt_at), lastAttemptAt: nn(r.last_attempt_at),
  lastStatusCode: nn(r.last_status_code), lastError: r.last_error, lastDurationMs: nn(r.last_duration_ms),
  createdAt: n(r.created_at), updatedAt: n(r.updated_at),
});
const toAttempt = (r: DbAttempt): AttemptRow => ({
  id: r.id, deliveryId: r.delivery_id, attemptNo: n(r.attempt_no), startedAt: n(r.started_at), durationMs: n(r.duration_ms),
  statusCode: nn(r.status_code), success: n(r.success) === 1, errorKind: r.error_kind as AttemptRow['errorKind'],
  errorMessage: r.error_message, requestHeaders: JSON.parse(r.request_headers) as Record<string, string>,
  responseHeaders: r.response_headers ? (JSON.parse(r.response_headers) as Record<string, string>) : null,
  responseBody: r.response_body, responseTruncated: n(r.response_truncated) === 1,
});

const DELIVERY_COLS =
  'id, account_id, event_id, webhook_id, event_type, status, attempts, next_attempt_at, last_attempt_at, last_status_code, last_error, last_duration_ms, created_at, updated_at';

// ---------- inputs and outputs of the store's operations ----------
export interface PublishInput {
  accountId: string;
  type: string;
  data: string;
  idempotencyKey: string | null;
  now: number;
  /** Keep the event but deliver it nowhere (the account's plan has no webhooks). */
  noDeliveries?: boolean;
}
/**
 * Room the local worker offers for deliveries leased to it in the publish transaction itself
 * (one process on SQLite): an event then costs one transaction instead of publish + claim.
 */
export interface PublishLease {
  owner: string;
  leaseMs: number;
  limit: number;
  endpointLimit: number;
  /** This owner's ended-but-unwritten deliveries: they hold no request (as ClaimOptions.finished). */
  finished?: readonly string[];
  /** As ClaimOptions.prefetch. */
  prefetch?: Prefetch;
}

/**
 * Deliveries a webhook may be leased beyond its in-flight limit, held by the worker and sent
 * as its requests end, so one claim serves several rounds of requests. Only for a webhook of
 * which no other owner holds a live lease: other processes see a held delivery as a lease, a
 * request in flight, so while one owner holds at least as many leases as the limit, no other
 * gets room on that webhook, and the requests open over the cluster stay within the limit.
 * Once another owner holds leases of it, every owner leases only what it may send.
 */
export interface Prefetch {
  extra: number;
  /** The webhooks it applies to (those answering fast enough for the held rows to move). */
  webhooks: ReadonlySet<string>;
  /**
   * The most rows this claim or publish lease may lease ahead, over all webhooks (default: its
   * limit). The worker keeps room this way for the retries it is about to claim.
   */
  max?: number;
}

/**
 * The most deliveries of a webhook that may be leased at once, counting prefetched ones;
 * `shared`: webhooks of which another owner holds live leases (no prefetch for them).
 */
const leaseLimit = (o: { endpointLimit: number; prefetch?: Prefetch }, shared: ReadonlySet<string>) => (w: string): number =>
  o.endpointLimit + (o.prefetch?.webhooks.has(w) && !shared.has(w) ? o.prefetch.extra : 0);

/**
 * The per-webhook rule of one claim or publish lease, row by row. `used` holds each webhook's
 * live leases and counts every row taken. A row is taken while its webhook has room to send
 * now; beyond that, up to `limitOf` (Prefetch), it is `ahead` on a first pass (`later`), for
 * the caller to offer again once every webhook's sendable rows are in, so that leasing ahead
 * never takes the room another webhook would send with now; on that second offer at most
 * `aheadMax` rows are taken (Prefetch.max). Past either limit it is `full`.
 */
const admission = (used: Map<string, number>, limitOf: (w: string) => number, endpointLimit: number, aheadMax = Infinity) => {
  let aheadLeft = aheadMax;
  return (webhookId: string, later: boolean): 'take' | 'ahead' | 'full' => {
    const u = used.get(webhookId) ?? 0;
    if (u >= limitOf(webhookId)) return 'full';
    if (u >= endpointLimit) {
      if (later) return 'ahead';
      if (aheadLeft <= 0) return 'full';
      aheadLeft--;
    }
    used.set(webhookId, u + 1);
    return 'take';
  };
};

/**
 * A webhook's rate limit as one claim or publish lease sees it. A token bucket: it holds at
 * most one second of the limit and refills at the limit; `credit` is what it holds at `at`,
 * in thousandths of a delivery (whole numbers, so SQL and JavaScript count alike).
 */
interface Throttle {
  credit: number;
  at: number;
  /** Deliveries a second. */
  limit: number;
  /** The stored time was taken to be `at` (see throttleOf): written back even if nothing is leased. */
  reset?: boolean;
}
type DbThrottle = { rate_limit: Num; rate_credit: Num | null; rate_at: Num | null };
const SPEND_COLS: readonly Column[] = [['id', 'text'], ['credit', 'bigint'], ['at', 'bigint']];
/** How far behind the last spend a clock may be before that spend is taken for a wrong clock (throttleOf). */
const CLOCK_SLACK_MS = 1000;

/**
 * The bucket as of `now`. A `now` a little behind the last spend (another process's clock, up
 * to CLOCK_SLACK_MS) adds nothing and keeps the later time. A last spend further ahead than
 * that (a clock stepped back, or a process whose clock is far ahead) is taken to be now and
 * written back, so a wrong clock cannot stop a webhook until real time catches up with it.
 * (Clocks that stay more than a second apart can let a webhook exceed its limit, as they can
 * its concurrency limit: see DELIVERY.md, Clocks.)
 */
const throttleOf = (r: DbThrottle, now: number): Throttle => {
  const limit = n(r.rate_limit);
  const full = limit * 1000;
  if (r.rate_at === null || r.rate_credit === null) return { credit: full, at: now, limit };
  const at = n(r.rate_at);
  const credit = Math.min(full, n(r.rate_credit));
  if (at > now + CLOCK_SLACK_MS) return { credit, at: now, limit, reset: true };
  return { credit: Math.min(full, credit + Math.max(0, now - at) * limit), at: Math.max(now, at), limit };
};

/**
 * Fills ClaimOptions.throttled from the buckets as a claim left them (`taken` spent): each
 * rate-limited webhook the claim reports backlogged whose bucket holds less than a claim's
 * worth, with the time it will. A claim's worth is one delivery, or for a limit over 20 a
 * second a twentieth of a second of it, so a busy rate-limited webhook is claimed for some
 * 20 times a second rather than at every token.
 */
function markThrottled(o: ClaimOptions, throttles: ReadonlyMap<string, Throttle>, taken: ReadonlyMap<string, number>): void {
  if (!o.throttled || !o.backlogged) return;
  for (const [w, th] of throttles) {
    if (!o.backlogged.has(w)) continue;
    const left = th.credit - (taken.get(w) ?? 0) * 1000;
    const want = Math.max(1, Math.ceil(th.limit / 20)) * 1000;
    if (left < want) o.throttled.set(w, th.at + Math.ceil((want - left) / th.limit));
  }
}

/**
 * `limitOf` with rate limits: a throttled webhook may lease, beyond its live leases, no more
 * than its bucket allows now, never more than its concurrency limit, and nothing ahead (rows
 * held for later would go out in a burst the bucket did not pay for).
 */
const throttledLimit = (limitOf: (w: string) => number, throttles: ReadonlyMap<string, Throttle>, live: ReadonlyMap<string, number>, endpointLimit: number) =>
  throttles.size === 0
    ? limitOf
    : (w: string): number => {
      const th = throttles.get(w);
      return th ? Math.min(endpointLimit, (live.get(w) ?? 0) + Math.floor(th.credit / 1000)) : limitOf(w);
    };

export interface PublishResult {
  event: EventRow;
  deliveries: Array<{ id: string; webhookId: string }>;
  replayed: boolean;
  /** Deliveries of this event leased to the local worker at publish (see PublishLease). */
  leased?: ClaimedDelivery[];
}

/** The claim lane that queued deliveries fall into (see ClaimOptions.lane). */
export type QueuedLane = 'first' | 'retry';

/** One entry of an account's audit log (see recordAudit). */
export interface AuditEvent {
  id: string;
  accountId: string;
  at: number;
  /** Who: `admin_token`, `api_key:<key id>`, `operator_session`, `portal_session` or `portal_link`. */
  actor: string;
  /** What, as `<object>.<verb>`: `webhook.updated`, `api_key.revoked`, … */
  action: string;
  /** The id of what it was done to, when not the account itself. */
  target: string | null;
  details: Record<string, unknown> | null;
}

/**
 * The audit entry a change makes of its result (null: nothing happened worth an entry). The
 * store writes it in the change's own transaction, so the log has an entry exactly when the
 * change committed.
 */
export type AuditOf<T> = (result: T) => Omit<AuditEvent, 'id'> | null;

/** A dashboard session as stored (see dashboard/session.ts). */
export interface SessionRow {
  tokenHash: string;
  accountId: string | null;
  csrfToken: string;
  expiresAt: number;
  adminTag?: string | null;
}

export interface DeliveryQuery {
  accountId: string;
  webhookId?: string;
  eventType?: string;
  status?: DeliveryStatus;
  /** Return deliveries with ids below this one (the cursor is the last id of the previous page). */
  beforeId?: string;
  limit: number;
}

/** A claimed delivery with what the sender needs to build the request. */
export interface ClaimedDelivery {
  id: string;
  accountId: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  attempts: number;
  eventCreatedAt: number;
  data: string;
}

export interface ClaimOptions {
  owner: string;
  now: number;
  leaseMs: number;
  limit: number;
  /** 'first' = deliveries never tried; 'retry' = the rest. */
  lane: 'first' | 'retry';
  endpointLimit: number;
  /** Webhooks to look at first: a delivery of theirs just finished, or work was just published for them. */
  webhooks?: readonly string[];
  /** Walk every webhook with pending deliveries when the oldest due ones all belong to full webhooks. */
  thorough?: boolean;
  /**
   * Look only at `webhooks` (default false: also the oldest due deliveries of any webhook).
   * For a claim that refills slots of known webhooks: the window of oldest due rows would be
   * one full webhook's backlog, read and skipped at every refill.
   */
  onlyWebhooks?: boolean;
  /**
   * Ids of this owner's deliveries whose attempts have ended but whose outcomes are not
   * written yet: their leases still count against their webhooks, but their requests are
   * over, so the slots are free. A lease is discounted only while it is still this owner's,
   * so an outcome committed meanwhile (which freed its lease already) is not discounted twice.
   * (A per-webhook count cannot tell those apart: claims running beside an outcome write
   * overshot HERALD_ENDPOINT_CONCURRENCY, 8 open with a limit of 4 across three workers.)
   */
  finished?: readonly string[];
  /**
   * Filled by the claim with the webhooks it saw that may still have due deliveries in this
   * lane afterwards: at their limit, or with more due rows than room. A webhook of `webhooks`
   * that is not added had nothing more due when the claim looked, so the worker need not
   * claim for it again when one of its slots frees up.
   */
  backlogged?: Set<string>;
  /**
   * Filled by the claim (with `backlogged`) with the rate-limited webhooks it left due work of
   * because their bucket ran short, each with the time (epoch ms) a claim for it will find
   * some credit again: until then a freed slot of theirs is no reason to claim.
   */
  throttled?: Map<string, number>;
  /** See Prefetch. */
  prefetch?: Prefetch;
}

/** What updateWebhook sets: the fields given; the others stay as stored. */
export interface WebhookChange {
  url?: string;
  description?: string;
  events?: string[];
  headersEnc?: string | null;
  /** Replaces the secret at once (null: none), ending a rotation's previous secret too. */
  secretEnc?: string | null;
  enabled?: boolean;
  rateLimit?: number | null;
}

/** The outcome of one attempt, written back in batches by the worker. */
export interface AttemptRecord {
  attempt: AttemptRow;
  owner: string;
  status: DeliveryStatus;
  nextAttemptAt: number | null;
  error: string | null;
  /** Set when the receiver answered 410 Gone: why, and the URL that answered it. */
  disableWebhook: { reason: string; url: string } | null;
  webhookId: string;
}

const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000; // SPEC §3: the same key within 24 h
/**
 * The notification channel that wakes workers in other processes when deliveries are queued
 * (PostgreSQL LISTEN/NOTIFY). Only a latency aid: a missed notification costs at most one
 * poll interval, because workers keep polling.
 */
const QUEUED_CHANNEL = 'herald_deliveries';

const EVENT_COLS: readonly Column[] = [['id', 'text'], ['account_id', 'text'], ['type', 'text'], ['created_at', 'bigint'], ['data', 'text'], ['idempotency_key', 'text']];
const NEW_DELIVERY_COLS: readonly Column[] = [
  ['id', 'text'], ['account_id', 'text'], ['event_id', 'text'], ['webhook_id', 'text'], ['event_type', 'text'], ['status', 'text'],
  ['attempts', 'int'], ['next_attempt_at', 'bigint'], ['created_at', 'bigint'], ['updated_at', 'bigint'],
];
const ATTEMPT_COLS: readonly Column[] = [
  ['id', 'text'], ['delivery_id', 'text'], ['attempt_no', 'int'], ['started_at', 'bigint'], ['duration_ms', 'int'], ['status_code', 'int'],
  ['success', 'int'], ['error_kind', 'text'], ['error_message', 'text'], ['request_headers', 'text'], ['response_headers', 'text'],
  ['response_body', 'text'], ['response_truncated', 'int'],
];
/** One row per attempt outcome, joined to `deliveries` by id and the owner that must still hold the lease. */
const OUTCOME_COLS: readonly Column[] = [
  ['id', 'text'], ['owner', 'text'], ['status', 'text'], ['attempts', 'int'], ['next_attempt_at', 'bigint'],
  ['last_attempt_at', 'bigint'], ['last_status_code', 'int'], ['last_error', 'text'], ['last_duration_ms', 'int'],
];
const KEY_COLS: readonly Column[] = [['account_id', 'text'], ['k', 'text']];

/** Event rows (EVENT_COLS) by account, then Idempotency-Key (unkeyed first). */
function keyOrder(x: readonly SqlParam[], y: readonly SqlParam[]): number {
  // A key sorts after no key (''): every key is prefixed by a character above it.
  const sortKey = (r: readonly SqlParam[]): [string, string] => [String(r[1]), r[5] === null ? '' : `\u0001${String(r[5])}`];
  const [[ax, kx], [ay, ky]] = [sortKey(x), sortKey(y)];
  return ax < ay ? -1 : ax > ay ? 1 : kx < ky ? -1 : kx > ky ? 1 : 0;
}

/** Most webhooks one thorough claim visits. */
const MAX_WEBHOOK_WALK = 1000;
type DbEventType = { name: string; description: string; schema: string | null; builtin: Num; created_at: Num };
const toEventType = (r: DbEventType): EventType => ({
  name: r.name, description: r.description, schema: r.schema ? JSON.parse(r.schema) : null, builtin: n(r.builtin) === 1, createdAt: n(r.created_at),
});

/**
 * Adds to `backlogged` the webhooks that may have more due rows than a claim took: no room
 * left, as many rows as room, or (`cut`) a batch limit that stopped the claim early.
 */
function markBacklogged(backlogged: Set<string>, rooms: ReadonlyArray<readonly [string, number]>, rows: ReadonlyArray<{ webhook_id: string }>, cut: boolean): void {
  const got = new Map<string, number>();
  for (const r of rows) got.set(r.webhook_id, (got.get(r.webhook_id) ?? 0) + 1);
  for (const [w, room] of rooms) if (room <= 0 || cut || (got.get(w) ?? 0) >= room) backlogged.add(w);
}

/** What createWebhook needs; the store fills in the id and times. */
type NewWebhook = Omit<WebhookRow, 'id' | 'createdAt' | 'updatedAt' | 'disabledReason' | 'previousSecretEnc' | 'previousSecretUntil' | 'rateLimit'> & { rateLimit?: number | null };

/** A delivery row as a claim leases it (its event's payload is read after the commit). */
type LeasedRow = { id: string; account_id: string; webhook_id: string; event_id: string; event_type: string; attempts: Num };

/**
 * Webhooks looked up per statement of a claim (PostgreSQL): one round trip for the usual
 * handful, and a bounded number of rows read and locked when a walk visits hundreds.
 */
const WEBHOOKS_PER_STATEMENT = 64;
/**
 * Attempts kept per delivery: a delivery queued again keeps this many, its next attempt
 * included, so at most this many (twice what its detail lists).
 */
const KEPT_ATTEMPTS = 100;
/** A query's error for a table that does not exist (yet: the database is older than its migration). */
const missingTable = (e: unknown): boolean =>
  (e as { code?: unknown } | null)?.code === '42P01' || /no such table/i.test(String((e as Error | null)?.message));

/** Deliveries deleted per statement when a webhook or account goes (tens of ms each). */
const DELETE_CHUNK = 10_000;
const ROOM_COLS: readonly Column[] = [['w', 'text'], ['room', 'int']];

export class Store {
  /** The time part of the last audit id this process made (recordAudit). */
  #lastAuditIdMs = 0;

  constructor(readonly q: SqlExecutor) {}

  get dialect(): 'sqlite' | 'postgres' {
    return this.q.dialect.name;
  }

  async close(): Promise<void> {
    await this.q.close();
  }

  async ping(): Promise<void> {
    await this.q.all('SELECT 1 AS ok');
  }

  // ---------------- the database's own facts ----------------
  /** A fact about the database; null when unset, or before the migration that makes the table. */
  async getMeta(name: string): Promise<string | null> {
    try {
      const [r] = await this.q.all<{ value: string }>('SELECT value FROM herald_meta WHERE name = ?', [name]);
      return r ? r.value : null;
    } catch (e) {
      if (missingTable(e)) return null;
      throw e;
    }
  }

  /** Stores `value` unless `name` has one already; returns the value that stands (first writer wins). */
  async putMetaOnce(name: string, value: string): Promise<string> {
    await this.q.run('INSERT INTO herald_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, value]);
    return (await this.getMeta(name))!;
  }

  /**
   * Up to `limit` sealed values of webhooks (secrets, header values): none on an empty database,
   * or before the migration that makes the table. Read before migrating, so only the columns
   * of the first migration.
   */
  async someSealedValues(limit: number): Promise<string[]> {
    try {
      const rows = await this.q.all<{ s: string | null; h: string | null }>(
        'SELECT secret_enc AS s, headers_enc AS h FROM webhooks WHERE secret_enc IS NOT NULL OR headers_enc IS NOT NULL LIMIT ?',
        [limit],
      );
      return rows.map((r) => (r.s ?? r.h)!);
    } catch (e) {
      if (missingTable(e)) return [];
      throw e;
    }
  }

  // ---------------- accounts ----------------
  async createAccount(name: string, plan: Plan, now = Date.now(), audit?: AuditOf<Account>): Promise<Account> {
    const a: Account = { id: newId('acc', now), name, plan, createdAt: now, updatedAt: now };
    a.name = text(name);
    return this.#audited(audit, async (q) => {
      await q.run('INSERT INTO accounts (id, name, plan, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [a.id, a.name, plan, now, now]);
      return a;
    });
  }

  async getAccount(id: string): Promise<Account | null> {
    const [r] = await this.q.all<DbAccount>('SELECT * FROM accounts WHERE id = ?', [id]);
    return r ? toAccount(r) : null;
  }

  async listAccounts(limit: number, afterId: string | null): Promise<Account[]> {
    const rows = await this.q.all<DbAccount>('SELECT * FROM accounts WHERE id > ? ORDER BY id LIMIT ?', [afterId ?? '', limit]);
    return rows.map(toAccount);
  }

  async updateAccount(id: string, patch: { name?: string; plan?: Plan }, now = Date.now(), audit?: AuditOf<Account | null>): Promise<Account | null> {
    return this.#audited(audit, (q) => q.tx(async (t) => {
      // Locked: two changes at once (the name, the plan) must not each write the other's old value.
      const [cur] = await t.all<DbAccount>(`SELECT * FROM accounts WHERE id = ?${t.dialect.forUpdate}`, [id]);
      if (!cur) return null;
      const next = { ...toAccount(cur), ...patch, updatedAt: now };
      next.name = text(next.name);
      const r = await t.run('UPDATE accounts SET name = ?, plan = ?, updated_at = ? WHERE id = ?', [next.name, next.plan, now, id]);
      return r.changes ? next : null;
    }));
  }

  /** Deletes the account and, by cascade, everything it owns. */
  async deleteAccount(id: string): Promise<boolean> {
    if (!(await this.getAccount(id))) return false;
    await this.#deleteHistoryInChunks('account_id', id);
    return this.q.tx(async (t) => {
      // The account's row first, as every change of a row it owns takes it (#audited's
      // lockFirst): taken after the deliveries below, a webhook deletion holding the account's
      // key lock and waiting for one of them would deadlock with this.
      if (t.dialect.name === 'postgres') await t.all('SELECT id FROM accounts WHERE id = ? FOR UPDATE', [id]);
      // Deliveries reference events and webhooks; clear them first so the cascade stays cheap.
      await t.run('DELETE FROM deliveries WHERE account_id = ?', [id]);
      const r = await t.run('DELETE FROM accounts WHERE id = ?', [id]);
      return r.changes > 0;
    });
  }

  /**
   * Deletes the deliveries (their attempts cascade) of a webhook or an account in chunks of
   * DELETE_CHUNK, each chunk its own transaction, with the events each chunk leaves without a
   * delivery. A history of millions of rows in one statement outlasted PostgreSQL's
   * statement_timeout (about 9 s a million here), so the delete could never succeed, and it held
   * row locks that outcome writes of other webhooks' deliveries waited on; on SQLite it stopped
   * the event loop for as long. Events are found through their deliveries: they have no index
   * by account (one would cost every publish). What publishing adds meanwhile goes with the
   * final transaction; an account's events that never had a delivery, with the account.
   */
  async #deleteHistoryInChunks(column: 'webhook_id' | 'account_id', value: string): Promise<void> {
    while ((await this.q.tx((t) => this.#deleteHistoryChunk(t, column, value))) === DELETE_CHUNK);
  }

  /** One chunk of #deleteHistoryInChunks, in `t`: how many deliveries went. */
  async #deleteHistoryChunk(t: SqlExecutor, column: 'webhook_id' | 'account_id', value: string): Promise<number> {
    const d = this.q.dialect;
    const rows = await t.all<{ id: string; event_id: string }>(`SELECT id, event_id FROM deliveries WHERE ${column} = ? LIMIT ?`, [value, DELETE_CHUNK]);
    if (!rows.length) return 0;
    await t.run(`DELETE FROM deliveries WHERE ${d.inList('id')}`, [d.listParam(rows.map((r) => r.id))]);
    const events = [...new Set(rows.map((r) => r.event_id))];
    await t.run(`DELETE FROM events WHERE ${d.inList('id')} AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_id = events.id)`, [d.listParam(events)]);
    return rows.length;
  }

  // ---------------- audit events ----------------
  /** One entry of an account's audit log; `details` is JSON the caller built (never a secret). */
  async recordAudit(e: Omit<AuditEvent, 'id'>): Promise<AuditEvent> {
    return this.#insertAudit(this.q, e);
  }

  async #insertAudit(q: SqlExecutor, e: Omit<AuditEvent, 'id'>): Promise<AuditEvent> {
    // Ids sort the log; two entries in one millisecond would otherwise sort at random, so a
    // process keeps its own entries in the order it wrote them (an id's time may run a few ms
    // ahead of `at` under a burst).
    const idMs = Math.max(e.at, this.#lastAuditIdMs + 1);
    this.#lastAuditIdMs = idMs;
    const row: AuditEvent = { ...e, id: newId('aud', idMs) };
    await q.run(
      'INSERT INTO audit_events (id, account_id, at, actor, action, target, details) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [row.id, row.accountId, row.at, row.actor, row.action, row.target, row.details === null ? null : JSON.stringify(row.details)],
    );
    return row;
  }

  /**
   * Runs a change, and with `audit` writes the entry it makes of the result in the same
   * transaction (the change's own, joined when it opens one). Without `audit` the change runs
   * exactly as before, on the store's executor.
   *
   * `lockFirst`: the account whose row the entry's foreign key will lock, for a change that
   * locks a row of the account's before (a webhook, a key). On PostgreSQL that lock is taken
   * first, in the order deleting the account takes them (the account, then what it owns);
   * taken last, the two could deadlock.
   */
  async #audited<T>(audit: AuditOf<T> | undefined, change: (q: SqlExecutor) => Promise<T>, lockFirst?: string): Promise<T> {
    if (!audit) return change(this.q);
    return this.q.tx(async (t) => {
      if (lockFirst !== undefined && t.dialect.name === 'postgres') await t.all('SELECT id FROM accounts WHERE id = ? FOR KEY SHARE', [lockFirst]);
      const r = await change(t);
      const e = audit(r);
      if (e) await this.#insertAudit(t, e);
      return r;
    });
  }

  /** An account's audit log, newest first; `beforeId` pages on from the last id of a page. */
  async listAudit(accountId: string, o: { beforeId?: string; limit: number }): Promise<AuditEvent[]> {
    const rows = await this.q.all<{ id: string; account_id: string; at: Num; actor: string; action: string; target: string | null; details: string | null }>(
      `SELECT id, account_id, at, actor, action, target, details FROM audit_events WHERE account_id = ?${o.beforeId ? ' AND id < ?' : ''} ORDER BY id DESC LIMIT ?`,
      o.beforeId ? [accountId, o.beforeId, o.limit] : [accountId, o.limit],
    );
    return rows.map((r) => ({
      id: r.id, accountId: r.account_id, at: n(r.at), actor: r.actor, action: r.action, target: r.target,
      details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
    }));
  }

  // ---------------- API keys ----------------
  async createApiKey(accountId: string, keyHash: string, prefix: string, now = Date.now(), audit?: AuditOf<{ id: string }>): Promise<{ id: string }> {
    const id = newId('key', now);
    return this.#audited(audit, async (q) => {
      await q.run('INSERT INTO api_keys (id, account_id, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)', [id, accountId, prefix, keyHash, now]);
      return { id };
    });
  }

  async findApiKey(keyHash: string): Promise<{ id: string; accountId: string } | null> {
    const [r] = await this.q.all<{ id: string; account_id: string }>('SELECT id, account_id FROM api_keys WHERE key_hash = ?', [keyHash]);
    return r ? { id: r.id, accountId: r.account_id } : null;
  }

  async listApiKeys(accountId: string): Promise<Array<{ id: string; prefix: string; createdAt: number }>> {
    const rows = await this.q.all<{ id: string; prefix: string; created_at: Num }>('SELECT id, prefix, created_at FROM api_keys WHERE account_id = ? ORDER BY id', [accountId]);
    return rows.map((r) => ({ id: r.id, prefix: r.prefix, createdAt: n(r.created_at) }));
  }

  async deleteApiKey(accountId: string, id: string, audit?: AuditOf<boolean>): Promise<boolean> {
    return this.#audited(audit, async (q) => (await q.run('DELETE FROM api_keys WHERE account_id = ? AND id = ?', [accountId, id])).changes > 0, accountId);
  }

  // ---------------- event types ----------------
  async listEventTypes(): Promise<EventType[]> {
    return (await this.q.all<DbEventType>('SELECT * FROM event_types ORDER BY name')).map(toEventType);
  }

  async getEventType(name: string): Promise<EventType | null> {
    const [r] = await this.q.all<DbEventType>('SELECT * FROM event_types WHERE name = ?', [name]);
    return r ? toEventType(r) : null;
  }

  /** Returns false when the name exists already. */
  async createEventType(t: { name: string; description: string; schema: unknown | null }, now = Date.now()): Promise<boolean> {
    // ON CONFLICT rather than look-then-insert: two concurrent creates on PostgreSQL would both
    // see no row, and the loser would fail with a unique violation instead of answering false.
    const r = await this.q.run(
      'INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES (?, ?, ?, 0, ?) ON CONFLICT (name) DO NOTHING',
      [t.name, text(t.description), t.schema === null ? null : JSON.stringify(t.schema), now],
    );
    return r.changes === 1;
  }

  async eventTypeNames(): Promise<Set<string>> {
    const rows = await this.q.all<{ name: string }>('SELECT name FROM event_types');
    return new Set(rows.map((r) => r.name));
  }

  // ---------------- webhooks ----------------
  /**
   * With `max`: null when the account has that many webhooks already, or is gone. The
   * account's row is locked while counting, so two requests at once cannot both take the last
   * place.
   */
  createWebhook(w: NewWebhook, now?: number): Promise<WebhookRow>;
  createWebhook(w: NewWebhook, now: number, max: number, audit?: AuditOf<WebhookRow | null>): Promise<WebhookRow | null>;
  async createWebhook(w: NewWebhook, now = Date.now(), max?: number, audit?: AuditOf<WebhookRow | null>): Promise<WebhookRow | null> {
    const row: WebhookRow = {
      ...w, description: text(w.description), id: newId('wh', now), previousSecretEnc: null, previousSecretUntil: null, disabledReason: null,
      rateLimit: w.rateLimit ?? null, createdAt: now, updatedAt: now,
    };
    const insert = (t: SqlExecutor) => t.run(
      'INSERT INTO webhooks (id, account_id, url, description, events, headers_enc, secret_enc, enabled, disabled_reason, rate_limit, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [row.id, row.accountId, row.url, row.description, JSON.stringify(row.events), row.headersEnc, row.secretEnc, row.enabled ? 1 : 0, null, row.rateLimit, now, now],
    );
    return this.#audited(audit, async (q) => {
      if (max === undefined) {
        await insert(q);
        return row;
      }
      return q.tx(async (t) => {
        const [acc] = await t.all<{ id: string }>(`SELECT id FROM accounts WHERE id = ?${this.q.dialect.forUpdate}`, [w.accountId]);
        if (!acc) return null;
        const [c] = await t.all<{ c: Num }>('SELECT COUNT(*) AS c FROM webhooks WHERE account_id = ?', [w.accountId]);
        if (n(c!.c) >= max) return null;
        await insert(t);
        return row;
      });
    });
  }

  async getWebhook(accountId: string, id: string): Promise<WebhookRow | null> {
    const [r] = await this.q.all<DbWebhook>('SELECT * FROM webhooks WHERE id = ? AND account_id = ?', [id, accountId]);
    return r ? toWebhook(r) : null;
  }

  /** For the worker: a webhook with its account's plan, in one read (null when either is gone). */
  async getWebhookWithPlan(id: string): Promise<{ webhook: WebhookRow; plan: Plan } | null> {
    const [r] = await this.q.all<DbWebhook & { account_plan: Plan }>('SELECT w.*, a.plan AS account_plan FROM webhooks w JOIN accounts a ON a.id = w.account_id WHERE w.id = ?', [id]);
    return r ? { webhook: toWebhook(r), plan: r.account_plan } : null;
  }

  async listWebhooks(accountId: string): Promise<WebhookRow[]> {
    const rows = await this.q.all<DbWebhook>('SELECT * FROM webhooks WHERE account_id = ? ORDER BY id', [accountId]);
    return rows.map(toWebhook);
  }

  /**
   * Changes the fields `change` names, applied to the row as it is inside the transaction
   * (locked on PostgreSQL), never to an earlier read: a change that waited (a URL's DNS check
   * takes up to two seconds) must not undo what committed meanwhile, such as a 410 Gone that
   * disabled the webhook, a secret rotation, or another change's fields. Setting the secret
   * ends a rotation's previous secret too. `audit` sees the row before and after. Answers the
   * row as stored; null when it is not (any more) the account's.
   */
  async updateWebhook(
    accountId: string,
    id: string,
    change: WebhookChange,
    now = Date.now(),
    audit?: (saved: WebhookRow | null, before: WebhookRow | null) => Omit<AuditEvent, 'id'> | null,
  ): Promise<WebhookRow | null> {
    let before: WebhookRow | null = null;
    return this.#audited(audit && ((saved) => audit(saved, before)), (q) => q.tx(async (t) => {
      const [cur] = await t.all<DbWebhook>(`SELECT * FROM webhooks WHERE id = ? AND account_id = ?${t.dialect.forUpdate}`, [id, accountId]);
      if (!cur) return null;
      before = toWebhook(cur);
      const next: WebhookRow = { ...before, updatedAt: now };
      if (change.url !== undefined) next.url = change.url;
      if (change.description !== undefined) next.description = text(change.description);
      if (change.events !== undefined) next.events = change.events;
      if (change.headersEnc !== undefined) next.headersEnc = change.headersEnc;
      if (change.rateLimit !== undefined) next.rateLimit = change.rateLimit;
      if (change.enabled !== undefined) {
        // Disabling keeps the reason of a webhook Herald disabled (410 Gone); enabling clears it.
        next.disabledReason = !change.enabled && !before.enabled ? before.disabledReason : null;
        next.enabled = change.enabled;
      }
      const secret = change.secretEnc !== undefined;
      const secretCols = secret ? 'secret_enc = ?, previous_secret_enc = NULL, previous_secret_until = NULL, ' : '';
      // A new rate limit starts with a full bucket; the same one keeps what it has left (SET
      // reads the old row, so `rate_limit = ?` compares with the limit before this change).
      await t.run(
        `UPDATE webhooks SET url = ?, description = ?, events = ?, headers_enc = ?, ${secretCols}enabled = ?, disabled_reason = ?,
           rate_credit = CASE WHEN rate_limit = ? THEN rate_credit ELSE NULL END, rate_at = CASE WHEN rate_limit = ? THEN rate_at ELSE NULL END,
           rate_limit = ?, updated_at = ?
          WHERE id = ?`,
        [next.url, next.description, JSON.stringify(next.events), next.headersEnc, ...(secret ? [change.secretEnc ?? null] : []),
          next.enabled ? 1 : 0, textN(next.disabledReason), next.rateLimit, next.rateLimit, next.rateLimit, now, id],
      );
      const [r] = await t.all<DbWebhook>('SELECT * FROM webhooks WHERE id = ?', [id]);
      return r ? toWebhook(r) : null;
    }), accountId);
  }

  /**
   * Secret rotation: `secretEnc` becomes the secret, and the one it replaces keeps signing until
   * `previousUntil` (null: it stops at once). The old value is read by the UPDATE itself, so
   * two rotations at once cannot both keep the same previous secret. A webhook without a
   * secret has nothing to keep. Null when the webhook is not the account's.
   */
  async rotateWebhookSecret(accountId: string, id: string, secretEnc: string, previousUntil: number | null, now = Date.now(), audit?: AuditOf<WebhookRow | null>): Promise<WebhookRow | null> {
    return this.#audited(audit, (q) => q.tx(async (t) => {
      const r = previousUntil === null
        ? await t.run('UPDATE webhooks SET secret_enc = ?, previous_secret_enc = NULL, previous_secret_until = NULL, updated_at = ? WHERE id = ? AND account_id = ?', [secretEnc, now, id, accountId])
        : await t.run(
          `UPDATE webhooks SET previous_secret_enc = secret_enc, previous_secret_until = CASE WHEN secret_enc IS NULL THEN NULL ELSE CAST(? AS BIGINT) END,
             secret_enc = ?, updated_at = ? WHERE id = ? AND account_id = ?`,
          [previousUntil, secretEnc, now, id, accountId],
        );
      if (r.changes === 0) return null;
      const [row] = await t.all<DbWebhook>('SELECT * FROM webhooks WHERE id = ?', [id]);
      return row ? toWebhook(row) : null;
    }), accountId);
  }

  async deleteWebhook(accountId: string, id: string, audit?: AuditOf<boolean>): Promise<boolean> {
    // The account's own webhook only: its history goes first, in chunks, then the rest with it.
    const [own] = await this.q.all('SELECT id FROM webhooks WHERE id = ? AND account_id = ?', [id, accountId]);
    if (!own) return false;
    await this.#deleteHistoryInChunks('webhook_id', id);
    return this.#audited(audit, (q) => q.tx(async (t) => {
      const [r] = await t.all('SELECT id FROM webhooks WHERE id = ? AND account_id = ?', [id, accountId]);
      if (!r) return false;
      // What was published while the chunks went, and the events it leaves without a delivery.
      while ((await this.#deleteHistoryChunk(t, 'webhook_id', id)) === DELETE_CHUNK);
      await t.run('DELETE FROM webhooks WHERE id = ?', [id]);
      return true;
    }), accountId);
  }

  // ---------------- publishing ----------------
  /**
   * Publish several events in ONE transaction (the API groups concurrent requests), so one
   * disk sync covers them all. When this resolves, every event and every delivery is committed.
   */
  async publishMany(inputs: readonly PublishInput[], lease?: PublishLease | (() => PublishLease | null) | null): Promise<PublishResult[]> {
    // Two processes publishing the same new Idempotency-Key at once both find no prior event;
    // on PostgreSQL the second insert then waits for the first to commit and fails on the
    // unique index. Running the batch again finds the winner's event and answers with it.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#publishOnce(inputs, lease ?? null);
      } catch (e) {
        const keyed = inputs.some((p) => p.idempotencyKey !== null);
        if (attempt >= 3 || !keyed || !this.q.dialect.isUniqueViolation(e)) throw e;
      }
    }
  }

  /**
   * Lease the new deliveries to the local worker right away, within its free slots and each
   * webhook's concurrency limit (live leases counted as in claimDue). What does not fit stays
   * pending for the normal claim.
   */
  async #leaseAtPublish(t: SqlExecutor, results: PublishResult[], lease: PublishLease, throttled: ReadonlySet<string>): Promise<void> {
    const d = this.q.dialect;
    const now = Date.now();
    const fresh = results.filter((r) => !r.replayed && r.deliveries.length);
    const { used, shared } = await this.#liveLeases(t, now, lease.owner, lease.finished ?? []);
    const admit = admission(used, leaseLimit(lease, shared), lease.endpointLimit, lease.prefetch?.max);
    const ids: string[] = [];
    const ahead: Array<[PublishResult, { id: string; webhookId: string }]> = [];
    const take = (r: PublishResult, x: { id: string; webhookId: string }, later: boolean): void => {
      // A rate-limited webhook's new deliveries wait for a claim, which takes its oldest due
      // first: leased here they would spend its bucket ahead of a backlog queued earlier.
      if (ids.length >= lease.limit || throttled.has(x.webhookId)) return;
      const a = admit(x.webhookId, later);
      if (a === 'ahead') ahead.push([r, x]);
      if (a !== 'take') return;
      ids.push(x.id);
      (r.leased ??= []).push({
        id: x.id, accountId: r.event.accountId, webhookId: x.webhookId, eventId: r.event.id, eventType: r.event.type,
        attempts: 0, eventCreatedAt: r.event.createdAt, data: r.event.data,
      });
    };
    for (const r of fresh) for (const x of r.deliveries) take(r, x, true);
    for (const [r, x] of ahead) take(r, x, false);
    if (ids.length) await t.run(`UPDATE deliveries SET lease_until = ?, lease_owner = ? WHERE ${d.inList('id')}`, [now + lease.leaseMs, lease.owner, d.listParam(ids)]);
  }

  /**
   * A fixed number of statements whatever the group size (the idempotency look-up, the
   * webhooks of every account, the inserts): on PostgreSQL each statement is a round trip
   * inside the transaction, so per-event queries would make the group commit slower per event
   * the busier the API is.
   */
  async #publishOnce(inputs: readonly PublishInput[], offer: PublishLease | (() => PublishLease | null) | null): Promise<PublishResult[]> {
    const d = this.q.dialect;
    return this.q.tx(async (t) => {
      const keyOf = (p: PublishInput) => `${p.accountId}\n${p.idempotencyKey}`;
      const prior = await this.#findIdempotent(t, inputs, keyOf);
      const replays = (p: PublishInput) => p.idempotencyKey !== null && prior.has(keyOf(p));
      const accounts = [...new Set(inputs.filter((p) => !p.noDeliveries && !replays(p)).map((p) => p.accountId))];
      const hooksByAccount = new Map<string, Array<{ id: string; events: string[] }>>();
      // Rate-limited ones, which the publish lease leaves to the claims.
      const throttled = new Set<string>();
      if (accounts.length) {
        const rows = await t.all<{ id: string; account_id: string; events: string; rate_limit: Num | null }>(
          `SELECT id, account_id, events, rate_limit FROM webhooks WHERE ${d.inList('account_id')} AND enabled = 1 ORDER BY id`,
          [d.listParam(accounts)],
        );
        for (const r of rows) {
          if (r.rate_limit !== null) throttled.add(r.id);
          let l = hooksByAccount.get(r.account_id);
          if (!l) hooksByAccount.set(r.account_id, (l = []));
          l.push({ id: r.id, events: JSON.parse(r.events) as string[] });
        }
      }
      const results: PublishResult[] = [];
      const eventRows: SqlParam[][] = [];
      const deliveryRows: SqlParam[][] = [];
      const seenKeys = new Map<string, PublishResult>();
      for (const p of inputs) {
        if (p.idempotencyKey !== null) {
          const same = seenKeys.get(keyOf(p));
          if (same) {
            results.push({ ...same, replayed: true });
            continue;
          }
          const before = prior.get(keyOf(p));
          if (before) {
            results.push(before);
            continue;
          }
        }
        const hooks = p.noDeliveries ? [] : (hooksByAccount.get(p.accountId) ?? []);
        const event: EventRow = { id: newId('evt', p.now), accountId: p.accountId, type: p.type, createdAt: p.now, data: p.data };
        eventRows.push([event.id, p.accountId, p.type, p.now, p.data, p.idempotencyKey]);
        const deliveries: PublishResult['deliveries'] = [];
        for (const h of hooks) {
          if (!h.events.includes('*') && !h.events.includes(p.type)) continue;
          const id = newId('dlv', p.now);
          deliveries.push({ id, webhookId: h.id });
          deliveryRows.push([id, p.accountId, event.id, h.id, p.type, 'pending', 0, p.now, p.now, p.now]);
        }
        const result = { event, deliveries, replayed: false };
        if (p.idempotencyKey !== null) seenKeys.set(keyOf(p), result);
        results.push(result);
      }
      // Keyed events in key order: two groups inserting the same new keys in opposite orders
      // would each hold one key's index entry while waiting for the other's (a deadlock).
      if (seenKeys.size > 1) eventRows.sort(keyOrder);
      await insertValues(t, 'events', EVENT_COLS, eventRows);
      await insertRows(t, 'deliveries', NEW_DELIVERY_COLS, deliveryRows);
      // A function is asked here, inside the transaction: on SQLite no claim or outcome write
      // can run until it ends, so the worker's free slots and ended attempts are current.
      const lease = typeof offer === 'function' ? offer() : offer;
      if (lease && lease.limit > 0 && deliveryRows.length) await this.#leaseAtPublish(t, results, lease, throttled);
      if (deliveryRows.length) await this.#wakeWorkers(t, 'first');
      return results;
    });
  }

  /**
   * The earlier events of the group's Idempotency-Keys, in one query, keyed by `keyOf`. A key
   * older than the window is forgotten (cleared on its event) so the caller publishes anew.
   */
  async #findIdempotent(t: SqlExecutor, inputs: readonly PublishInput[], keyOf: (p: PublishInput) => string): Promise<Map<string, PublishResult>> {
    const out = new Map<string, PublishResult>();
    const wanted = new Map<string, PublishInput>();
    for (const p of inputs) if (p.idempotencyKey !== null && !wanted.has(keyOf(p))) wanted.set(keyOf(p), p);
    if (!wanted.size) return out;
    const d = this.q.dialect;
    const events = await t.all<{ id: string; account_id: string; idempotency_key: string; type: string; created_at: Num; data: string }>(
      `SELECT e.id, e.account_id, e.idempotency_key, e.type, e.created_at, e.data
         FROM events e JOIN ${d.rows(KEY_COLS)} ON e.account_id = v.account_id AND e.idempotency_key = v.k`,
      d.rowsParams(KEY_COLS, [...wanted.values()].map((p) => [p.accountId, p.idempotencyKey])),
    );
    const expired: string[] = [];
    const live: typeof events = [];
    for (const e of events) {
      const p = wanted.get(`${e.account_id}\n${e.idempotency_key}`);
      if (!p) continue;
      if (n(e.created_at) < p.now - IDEMPOTENCY_WINDOW_MS) expired.push(e.id);
      else live.push(e);
    }
    if (expired.length) await t.run(`UPDATE events SET idempotency_key = NULL WHERE ${d.inList('id')}`, [d.listParam(expired)]);
    if (!live.length) return out;
    // Webhook order, as the first answer listed them, so a replay is the same response.
    const ds = await t.all<{ id: string; webhook_id: string; event_id: string }>(
      `SELECT id, webhook_id, event_id FROM deliveries WHERE ${d.inList('event_id')} ORDER BY webhook_id`,
      [d.listParam(live.map((e) => e.id))],
    );
    const byEvent = new Map<string, PublishResult['deliveries']>(live.map((e) => [e.id, []]));
    for (const x of ds) byEvent.get(x.event_id)!.push({ id: x.id, webhookId: x.webhook_id });
    for (const e of live) {
      out.set(`${e.account_id}\n${e.idempotency_key}`, {
        event: { id: e.id, accountId: e.account_id, type: e.type, createdAt: n(e.created_at), data: e.data },
        deliveries: byEvent.get(e.id)!,
        replayed: true,
      });
    }
    return out;
  }

  /**
   * Deliveries of `lane` ('any': either) were queued in this transaction: wake every worker of
   * the cluster once it commits.
   */
  async #wakeWorkers(t: SqlExecutor, lane: QueuedLane | 'any'): Promise<void> {
    const sql = this.q.dialect.notify(QUEUED_CHANNEL, lane);
    if (sql) await t.exec(sql);
  }

  /**
   * Call `onQueued` whenever any process queues deliveries: with 'first' for new ones
   * (publishing), 'retry' for ones tried before (redelivery), null when either or unknown
   * (leases given back; and once whenever listening starts or restarts after a lost
   * connection, since what was queued meanwhile went unheard). A no-op on SQLite: one process
   * per database file, which wakes its own worker. Returns the unsubscribe function.
   */
  onDeliveriesQueued(onQueued: (lane: QueuedLane | null) => void, onError?: (err: unknown) => void): () => void {
    const lane = (payload: string | null): QueuedLane | null => (payload === 'first' || payload === 'retry' ? payload : null);
    return this.q.listen?.(QUEUED_CHANNEL, { onNotify: (p) => onQueued(lane(p)), onError }) ?? (() => {});
  }

  // ---------------- history ----------------
  async listDeliveries(f: DeliveryQuery): Promise<DeliveryRow[]> {
    const where = ['account_id = ?'];
    const params: SqlParam[] = [f.accountId];
    if (f.webhookId) (where.push('webhook_id = ?'), params.push(f.webhookId));
    if (f.eventType) (where.push('event_type = ?'), params.push(f.eventType));
    if (f.status) (where.push('status = ?'), params.push(f.status));
    if (f.beforeId) (where.push('id < ?'), params.push(f.beforeId));
    params.push(f.limit);
    const rows = await this.q.all<DbDelivery>(`SELECT ${DELIVERY_COLS} FROM deliveries WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`, params);
    return rows.map(toDelivery);
  }

  /** The delivery row alone: no payload, no attempts. */
  async getDeliveryRow(accountId: string, id: string): Promise<DeliveryRow | null> {
    const [d] = await this.q.all<DbDelivery>(`SELECT ${DELIVERY_COLS} FROM deliveries WHERE id = ? AND account_id = ?`, [id, accountId]);
    return d ? toDelivery(d) : null;
  }

  /**
   * A delivery with its event and its latest `maxAttempts` attempts, oldest first (redelivery
   * has no limit, and each attempt may hold 64 KiB of response: the detail must stay bounded).
   */
  async getDelivery(accountId: string, id: string, maxAttempts = 50): Promise<{ delivery: DeliveryRow; event: EventRow; attempts: AttemptRow[] } | null> {
    const delivery = await this.getDeliveryRow(accountId, id);
    if (!delivery) return null;
    const [e] = await this.q.all<{ id: string; type: string; created_at: Num; data: string }>('SELECT id, type, created_at, data FROM events WHERE id = ?', [delivery.eventId]);
    if (!e) return null; // the account was deleted between the two reads
    const atts = await this.q.all<DbAttempt>(
      'SELECT * FROM (SELECT * FROM attempts WHERE delivery_id = ? ORDER BY attempt_no DESC, started_at DESC LIMIT ?) AS latest ORDER BY attempt_no, started_at',
      [id, maxAttempts],
    );
    return {
      delivery,
      event: { id: e.id, accountId, type: e.type, createdAt: n(e.created_at), data: e.data },
      attempts: atts.map(toAttempt),
    };
  }

  /**
   * Queue again now with the same id; attempts keep counting. False when the delivery is
   * unknown or an attempt of it is in flight (its outcome would overwrite the request). An
   * expired lease is cleared with it: the owner's outcome, written late, must not match it and
   * undo the redelivery.
   */
  async redeliver(accountId: string, id: string, now = Date.now(), audit?: AuditOf<boolean>): Promise<boolean> {
    return this.#audited(audit, (q) => q.tx(async (t) => {
      const [r] = await t.all<{ id: string; attempts: Num }>(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?, lease_until = NULL, lease_owner = NULL
          WHERE id = ? AND account_id = ? AND (lease_until IS NULL OR lease_until <= ?) RETURNING id, attempts`,
        [now, now, id, accountId, now],
      );
      if (r) {
        await this.#pruneAttempts(t, [r]);
        await this.#wakeWorkers(t, n(r.attempts) > 0 ? 'retry' : 'first');
      }
      return r !== undefined;
    }), accountId);
  }

  /**
   * A delivery sent again and again (redelivery has no limit) keeps its latest KEPT_ATTEMPTS
   * attempts: the ones before go when it is queued again, so one delivery's log cannot grow
   * without bound. `attempts` on the delivery still counts them all (the detail's
   * `earlier_attempts`).
   */
  async #pruneAttempts(t: SqlExecutor, queued: ReadonlyArray<{ id: string; attempts: Num }>): Promise<void> {
    for (const r of queued) {
      if (n(r.attempts) >= KEPT_ATTEMPTS) await t.run('DELETE FROM attempts WHERE delivery_id = ? AND attempt_no <= ?', [r.id, n(r.attempts) - KEPT_ATTEMPTS + 1]);
    }
  }

  /**
   * Queue again, due now, the failed deliveries of one webhook created in [since, until), oldest
   * first: recovery after the receiver was down longer than the retries lasted. Attempts keep
   * counting, as with redeliver; Test Connection's pings are not sent again. One call looks at
   * `scan` of the webhook's deliveries at most (of any status, after `afterId`), in
   * transactions of `chunk`, so its work is bounded however few of them failed. Returns how many
   * were queued and, when it stopped before `until`, the last id it looked at: pass that back as
   * `afterId` to go on. Rows queued by one call are behind that id, so a delivery that fails
   * again at once is not picked twice by one sweep. `retry` says whether any went to the retry
   * lane (attempted before; the others were never sent).
   */
  async recoverFailed(
    accountId: string,
    webhookId: string,
    o: { since: number; until: number; afterId?: string | null; scan?: number; chunk?: number },
    now = Date.now(),
    audit?: AuditOf<{ queued: number }>,
  ): Promise<{ queued: number; lastId: string | null; retry: boolean }> {
    const chunk = o.chunk ?? 1000;
    const scan = Math.max(chunk, o.scan ?? 10_000);
    const d = this.q.dialect;
    let after = o.afterId ?? '';
    let queued = 0;
    let retry = false;
    for (let looked = 0; looked < scan; looked += chunk) {
      // Each transaction writes the audit entry of what it queued.
      const r = await this.#audited(audit, (q) => q.tx(async (t) => {
        // The (webhook_id, id) index walks the window in id order, which is creation order.
        const rows = await t.all<{ id: string; status: DeliveryStatus; event_type: string }>(
          'SELECT id, status, event_type FROM deliveries WHERE webhook_id = ? AND account_id = ? AND id >= ? AND id < ? AND id > ? ORDER BY id LIMIT ?',
          [webhookId, accountId, idFloor('dlv', o.since), idFloor('dlv', o.until), after, chunk],
        );
        const failed = rows.filter((x) => x.status === 'failed' && x.event_type !== 'ping').map((x) => x.id);
        let lanes: Array<{ id: string; attempts: Num }> = [];
        let anyRetry = false;
        if (failed.length) {
          // `status = 'failed'` again under the row lock: a row another call queued meanwhile is left alone.
          lanes = await t.all<{ id: string; attempts: Num }>(
            `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?, lease_until = NULL, lease_owner = NULL
              WHERE ${d.inList('id')} AND status = 'failed' RETURNING id, attempts`,
            [now, now, d.listParam(failed)],
          );
          if (lanes.length) {
            await this.#pruneAttempts(t, lanes);
            anyRetry = lanes.some((x) => n(x.attempts) > 0);
            const first = lanes.some((x) => n(x.attempts) === 0);
            await this.#wakeWorkers(t, anyRetry && first ? 'any' : anyRetry ? 'retry' : 'first');
          }
        }
        return { looked: rows.length, last: rows.at(-1)?.id ?? null, queued: lanes.length, anyRetry };
      }), accountId);
      queued += r.queued;
      retry ||= r.anyRetry;
      if (r.looked < chunk) return { queued, lastId: null, retry };
      after = r.last!;
    }
    return { queued, lastId: after, retry };
  }

  /** Test Connection of a saved webhook: a `ping` event and its one attempt, kept in the history. */
  async recordPing(input: { accountId: string; webhookId: string; data: string; deliveryId: string; now: number; attempt: AttemptRow; succeeded: boolean; error: string | null }): Promise<void> {
    await this.q.tx(async (t) => {
      const eventId = newId('evt', input.now);
      await t.run('INSERT INTO events (id, account_id, type, created_at, data, idempotency_key) VALUES (?, ?, ?, ?, ?, NULL)', [eventId, input.accountId, 'ping', input.now, input.data]);
      const a = input.attempt;
      await t.run(
        `INSERT INTO deliveries (id, account_id, event_id, webhook_id, event_type, status, attempts, next_attempt_at, last_attempt_at, last_status_code, last_error, last_duration_ms, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'ping', ?, 1, NULL, ?, ?, ?, ?, ?, ?)`,
        [input.deliveryId, input.accountId, eventId, input.webhookId, input.succeeded ? 'succeeded' : 'failed', a.startedAt, a.statusCode, textN(input.error), a.durationMs, input.now, input.now],
      );
      await this.#insertAttempts(t, [a]);
    });
  }

  // ---------------- the delivery queue ----------------
  /**
   * A refill of named webhooks on PostgreSQL (ClaimOptions.onlyWebhooks) in one statement:
   * live leases, each webhook's room, its oldest due rows (SKIP LOCKED) and the lease update.
   * The general claim takes three round trips for the same, all while holding the cluster-wide
   * claim lock, and with one busy webhook refills are most of the claims. Same rules as the
   * general path; the conformance suite runs both.
   */
  async #claimNamedPostgres(t: SqlExecutor, o: ClaimOptions): Promise<LeasedRow[]> {
    const laneCond = o.lane === 'first' ? 'attempts = 0' : 'attempts > 0';
    const webhooks = [...new Set(o.webhooks)];
    const fast = o.prefetch ? webhooks.filter((w) => o.prefetch!.webhooks.has(w)) : [];
    type Out = { rooms: Array<[string, number, number, Num | null, Num | null, Num | null]>; claimed: Array<LeasedRow & { next_attempt_at: Num }> };
    // rooms: `room_now` is what a webhook may send at once, `room` adds the rows it may be leased
    // ahead (Prefetch: only when no other owner holds leases of it). A rate-limited webhook
    // (thr: its bucket as throttleOf reads it) gets no more than the bucket allows and nothing
    // ahead, and `spent` takes what was leased out of the bucket. Rows leased ahead come
    // after every webhook's `room_now` rows, as in the general path's take(), and at most
    // Prefetch.max of them are taken (k counts them).
    // upd updates the picked rows by primary key, not joined with picked: the planner cannot
    // know how few rows picked holds, and a join may hash the whole table (seen: 17 ms of a
    // 20 ms claim on a table of 20,000 deliveries, growing with the table).
    // (No comments inside the SQL text: toPg numbers every ? outside quoted literals, and an
    // apostrophe in a comment would shift the placeholders after it.)
    const [r] = await t.all<Out>(
      `WITH live AS (
         SELECT webhook_id, COUNT(*) AS c, SUM(CASE WHEN lease_owner <> ? THEN 1 ELSE 0 END) AS others FROM deliveries
          WHERE lease_until IS NOT NULL AND lease_until > ? AND NOT (lease_owner = ? AND id = ANY(?::text[]))
          GROUP BY webhook_id),
       thr AS (
         SELECT id AS w, rate_limit AS lim,
                CASE WHEN rate_at IS NULL OR rate_credit IS NULL OR rate_at > c.now + ${CLOCK_SLACK_MS} THEN c.now ELSE GREATEST(c.now, rate_at) END AS at,
                COALESCE(rate_at > c.now + ${CLOCK_SLACK_MS} AND rate_credit IS NOT NULL, false) AS reset,
                CASE WHEN rate_at IS NULL OR rate_credit IS NULL THEN rate_limit::bigint * 1000
                     WHEN rate_at > c.now + ${CLOCK_SLACK_MS} THEN LEAST(rate_limit::bigint * 1000, rate_credit)
                     ELSE LEAST(rate_limit::bigint * 1000, rate_credit + GREATEST(c.now - rate_at, 0) * rate_limit) END AS credit
           FROM webhooks CROSS JOIN (SELECT ?::bigint AS now) c
          WHERE id = ANY(?::text[]) AND rate_limit IS NOT NULL AND enabled = 1),
       rooms AS (
         SELECT w, credit, at, reset, lim, LEAST(room_now, COALESCE(allow, room_now)) AS room_now,
                CASE WHEN allow IS NULL THEN room ELSE LEAST(room_now, allow, ?::int) END AS room
           FROM (SELECT r.w, thr.credit, thr.at, thr.reset, thr.lim, (thr.credit / 1000)::int AS allow, ?::int - COALESCE(live.c, 0)::int AS room_now,
                        LEAST(CASE WHEN COALESCE(live.others, 0) = 0 AND r.w = ANY(?::text[]) THEN ?::int ELSE ?::int END - COALESCE(live.c, 0)::int, ?::int) AS room
                   FROM unnest(?::text[]) AS r(w) LEFT JOIN live ON live.webhook_id = r.w LEFT JOIN thr ON thr.w = r.w) x),
       picked AS (
         SELECT id, next_attempt_at FROM (
           SELECT c.id, c.next_attempt_at, c.ahead, row_number() OVER (PARTITION BY c.ahead ORDER BY c.next_attempt_at) AS k FROM (
             SELECT c.id, c.next_attempt_at, row_number() OVER (PARTITION BY rooms.w ORDER BY c.next_attempt_at) > rooms.room_now AS ahead
               FROM rooms CROSS JOIN LATERAL (
                 SELECT id, next_attempt_at FROM deliveries
                  WHERE webhook_id = rooms.w AND status = 'pending' AND ${laneCond} AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
                  ORDER BY next_attempt_at LIMIT GREATEST(rooms.room, 0) FOR UPDATE SKIP LOCKED) c) c) c
          WHERE NOT ahead OR k <= ?
         ORDER BY ahead, next_attempt_at LIMIT ?),
       upd AS (
         UPDATE deliveries d SET lease_until = ?, lease_owner = ? WHERE d.id = ANY(ARRAY(SELECT id FROM picked))
         RETURNING d.id, d.account_id, d.webhook_id, d.event_id, d.event_type, d.attempts, d.next_attempt_at),
       spent AS (
         UPDATE webhooks wh SET rate_credit = rooms.credit - 1000 * COALESCE(k.n, 0), rate_at = rooms.at
           FROM rooms LEFT JOIN (SELECT webhook_id, COUNT(*) AS n FROM upd GROUP BY webhook_id) k ON k.webhook_id = rooms.w
          WHERE wh.id = rooms.w AND rooms.credit IS NOT NULL AND (k.n IS NOT NULL OR rooms.reset))
       SELECT (SELECT COALESCE(json_agg(json_build_array(w, room, room_now, credit, at, lim)), '[]'::json) FROM rooms) AS rooms,
              (SELECT COALESCE(json_agg(upd), '[]'::json) FROM upd) AS claimed`,
      [
        o.owner, o.now, o.owner, [...(o.finished ?? [])],
        o.now, webhooks,
        o.limit, o.endpointLimit, fast, o.endpointLimit + (o.prefetch?.extra ?? 0), o.endpointLimit, o.limit, webhooks,
        o.now, o.now, o.prefetch?.max ?? o.limit, o.limit, o.now + o.leaseMs, o.owner,
      ],
    );
    const claimed = r!.claimed.sort((x, y) => n(x.next_attempt_at) - n(y.next_attempt_at));
    // Cut by the batch limit, or by Prefetch.max once it took that many rows ahead: any
    // webhook with room may have more.
    let aheadCut = false;
    if (o.prefetch?.max !== undefined) {
      const got = new Map<string, number>();
      for (const c of claimed) got.set(c.webhook_id, (got.get(c.webhook_id) ?? 0) + 1);
      let ahead = 0;
      for (const [w, , roomNow] of r!.rooms) ahead += Math.max(0, (got.get(w) ?? 0) - Math.max(0, roomNow));
      aheadCut = ahead >= o.prefetch.max;
    }
    if (o.backlogged) markBacklogged(o.backlogged, r!.rooms.map(([w, room]) => [w, room] as const), claimed, claimed.length >= o.limit || aheadCut);
    if (o.throttled) {
      const throttles = new Map<string, Throttle>();
      for (const [w, , , credit, at, lim] of r!.rooms) if (credit !== null) throttles.set(w, { credit: n(credit), at: n(at!), limit: n(lim!) });
      const taken = new Map<string, number>();
      for (const c of claimed) taken.set(c.webhook_id, (taken.get(c.webhook_id) ?? 0) + 1);
      markThrottled(o, throttles, taken);
    }
    return claimed.map(({ next_attempt_at: _, ...row }) => row);
  }

  /**
   * Requests in flight per webhook, over every process: live leases, minus this owner's ended
   * attempts whose outcome is not written yet (`finished`: they hold no request); and the
   * webhooks of which another owner holds live leases (`shared`: no Prefetch for them).
   * Only the partial index deliveries_leased is read, whose rows are the live leases (an
   * outcome clears its lease). `lease_until IS NOT NULL` repeats that index's condition, and
   * there is deliberately no `webhook_id IN (…)` filter: either would let SQLite (no planner
   * statistics) read a webhook's whole history through deliveries_webhook instead, which made
   * each claim cost ~40 ms at 200,000 rows and each publish grow slower with the history.
   *
   * With `throttled`, the same statement (no extra round trip under the claim lock) also reads
   * the enabled rate-limited webhooks, with their buckets as of `now`: those of the list, or
   * with 'all' every one (a wide claim may meet any; read through the partial index
   * webhooks_rate_limited). A disabled webhook's deliveries are failed without an attempt, so
   * its limit does not hold them back.
   */
  async #liveLeases(
    t: SqlExecutor, now: number, owner: string, finished: readonly string[], throttled?: 'all' | readonly string[],
  ): Promise<{ used: Map<string, number>; shared: Set<string>; throttles: Map<string, Throttle> }> {
    const d = this.q.dialect;
    const params: SqlParam[] = [owner, now, owner, d.listParam([...finished])];
    let sql =
      `SELECT webhook_id, COUNT(*) AS c, SUM(CASE WHEN lease_owner <> ? THEN 1 ELSE 0 END) AS others, NULL AS rate_limit, NULL AS rate_credit, NULL AS rate_at
         FROM deliveries WHERE lease_until IS NOT NULL AND lease_until > ? AND NOT (lease_owner = ? AND ${d.inList('id')})
        GROUP BY webhook_id`;
    if (throttled === 'all' || throttled?.length) {
      sql += ' UNION ALL SELECT id, 0, 0, rate_limit, rate_credit, rate_at FROM webhooks WHERE rate_limit IS NOT NULL AND enabled = 1';
      if (throttled !== 'all') {
        sql += ` AND ${d.inList('id')}`;
        params.push(d.listParam([...throttled]));
      }
    }
    type Row = { webhook_id: string; c: Num; others: Num; rate_limit: Num | null; rate_credit: Num | null; rate_at: Num | null };
    const used = new Map<string, number>();
    const shared = new Set<string>();
    const throttles = new Map<string, Throttle>();
    for (const r of await t.all<Row>(sql, params)) {
      if (r.rate_limit !== null) {
        throttles.set(r.webhook_id, throttleOf({ rate_limit: r.rate_limit, rate_credit: r.rate_credit, rate_at: r.rate_at }, now));
        continue;
      }
      used.set(r.webhook_id, n(r.c));
      if (n(r.others) > 0) shared.add(r.webhook_id);
    }
    return { used, shared, throttles };
  }

  /** Take what was leased (`taken` per webhook) out of the rate-limited webhooks' buckets. */
  async #spend(t: SqlExecutor, throttles: ReadonlyMap<string, Throttle>, taken: ReadonlyMap<string, number>): Promise<void> {
    const rows: SqlParam[][] = [];
    for (const [w, k] of taken) {
      const th = throttles.get(w);
      if (th && k > 0) rows.push([w, th.credit - k * 1000, th.at]);
    }
    for (const [w, th] of throttles) if (th.reset && !taken.get(w)) rows.push([w, th.credit, th.at]);
    if (!rows.length) return;
    const d = this.q.dialect;
    await t.run(`UPDATE webhooks SET rate_credit = v.credit, rate_at = v.at FROM ${d.rows(SPEND_COLS)} WHERE webhooks.id = v.id`, d.rowsParams(SPEND_COLS, rows));
  }

  /**
   * Lease up to `limit` due deliveries of one lane. Webhooks already at their in-flight limit
   * (counted over live leases of every process) are skipped, and no webhook gets more than its
   * remaining capacity, so a stalled endpoint cannot fill the batch. On PostgreSQL the claim
   * runs under a cluster-wide lock so two processes never both see the same free capacity,
   * and candidates are read with SKIP LOCKED so claims never wait on rows being completed.
   */
  async claimDue(o: ClaimOptions): Promise<ClaimedDelivery[]> {
    const d = this.q.dialect;
    if (o.limit < 1 || o.endpointLimit < 1) return [];
    const leased = await this.q.tx(
      async (t) => {
        if (d.name === 'postgres' && o.onlyWebhooks && o.webhooks?.length) return this.#claimNamedPostgres(t, o);
        const { used, shared, throttles } = await this.#liveLeases(t, o.now, o.owner, o.finished ?? [], o.onlyWebhooks ? (o.webhooks ?? []) : 'all');
        const limitOf = throttledLimit(leaseLimit(o, shared), throttles, new Map(used), o.endpointLimit);
        const admit = admission(used, limitOf, o.endpointLimit, o.prefetch?.max);
        const taken = new Map<string, number>();
        const laneCond = o.lane === 'first' ? 'attempts = 0' : 'attempts > 0';
        const due = `status = 'pending' AND ${laneCond} AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)`;
        const chosen: string[] = [];
        const chosenSet = new Set<string>();
        let skippedFull = 0;
        // Rows leased ahead (Prefetch), offered again after everything else (see admission).
        const ahead: Array<{ id: string; webhook_id: string }> = [];
        const take = (candidates: ReadonlyArray<{ id: string; webhook_id: string }>, later = true): void => {
          for (const c of candidates) {
            if (chosenSet.has(c.id)) continue;
            if (chosen.length >= o.limit) {
              o.backlogged?.add(c.webhook_id);
              continue;
            }
            const a = admit(c.webhook_id, later);
            if (a === 'take') {
              chosen.push(c.id);
              chosenSet.add(c.id);
              taken.set(c.webhook_id, (taken.get(c.webhook_id) ?? 0) + 1);
              continue;
            }
            // Full, or at its limit for now: either way the walk below must still look past it.
            skippedFull++;
            if (a === 'ahead') ahead.push(c);
            else o.backlogged?.add(c.webhook_id);
          }
        };
        // The oldest due deliveries of each webhook, up to its free slots: one index seek per
        // webhook (deliveries_webhook_due_*), whatever the backlog of other webhooks. Where the
        // dialect has LATERAL (PostgreSQL) a whole chunk of webhooks is one statement: one each
        // would be a round trip each, all taken while holding the cluster-wide claim lock.
        const forWebhooks = async (ws: Iterable<string>): Promise<void> => {
          const list = [...new Set(ws)];
          let i = 0;
          for (; i < list.length && chosen.length < o.limit; i += WEBHOOKS_PER_STATEMENT) {
            const rooms: Array<[string, number]> = [];
            for (const w of list.slice(i, i + WEBHOOKS_PER_STATEMENT)) {
              const room = Math.min(limitOf(w) - (used.get(w) ?? 0), o.limit - chosen.length);
              if (room > 0) rooms.push([w, room]);
              else o.backlogged?.add(w); // full: whether it has more due is not looked up
            }
            if (!rooms.length) continue;
            type Head = { id: string; webhook_id: string; next_attempt_at: Num };
            let heads: Head[] = [];
            if (d.lateral) {
              heads = await t.all<Head>(
                `SELECT c.id, c.webhook_id, c.next_attempt_at FROM ${d.rows(ROOM_COLS)} CROSS JOIN LATERAL (
                   SELECT id, webhook_id, next_attempt_at FROM deliveries WHERE webhook_id = v.w AND ${due}
                    ORDER BY next_attempt_at LIMIT v.room${d.skipLocked}) c
                 ORDER BY c.next_attempt_at`,
                [...d.rowsParams(ROOM_COLS, rooms), o.now, o.now],
              );
            } else {
              for (const [w, room] of rooms) {
                heads.push(...(await t.all<Head>(
                  `SELECT id, webhook_id, next_attempt_at FROM deliveries WHERE webhook_id = ? AND ${due} ORDER BY next_attempt_at LIMIT ?${d.skipLocked}`,
                  [w, o.now, o.now, room],
                )));
              }
              heads.sort((x, y) => n(x.next_attempt_at) - n(y.next_attempt_at)); // as ORDER BY above
            }
            // As many heads as room: there may be more behind them.
            if (o.backlogged) markBacklogged(o.backlogged, rooms, heads, false);
            take(heads);
          }
          // Named webhooks the batch limit left unvisited may well have work: say so.
          for (const w of list.slice(i)) o.backlogged?.add(w);
        };
        // 1. Webhooks the worker knows may have room again or fresh work.
        await forWebhooks(o.webhooks ?? []);
        // 2. Oldest due first, in a bounded window: cheap, and fair across webhooks.
        if (chosen.length < o.limit && !o.onlyWebhooks) {
          // Twice what is wanted, at most 256: a window of one full webhook's rows costs a scan
          // and yields nothing, and the webhooks that have room were mostly refilled above.
          const window = Math.max(32, Math.min(256, (o.limit - chosen.length) * 2));
          const candidates = await t.all<{ id: string; webhook_id: string }>(
            `SELECT id, webhook_id FROM deliveries WHERE ${due} ORDER BY next_attempt_at LIMIT ?${d.skipLocked}`,
            [o.now, o.now, window],
          );
          take(candidates);
          // 3. The window held only webhooks at their limit (a stalled endpoint's backlog, say):
          // walk the webhooks that have pending deliveries, one index seek each, and take what
          // the others have due. Bounded, and the worker asks for it at most once per poll.
          if (chosen.length < o.limit && candidates.length === window && skippedFull > 0 && o.thorough) {
            const hooks = await t.all<{ w: string }>(
              `WITH RECURSIVE h(w, k) AS (
                 SELECT MIN(webhook_id), 1 FROM deliveries WHERE status = 'pending' AND ${laneCond}
                 UNION ALL
                 SELECT (SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending' AND ${laneCond} AND webhook_id > h.w), k + 1
                   FROM h WHERE h.w IS NOT NULL AND h.k < ?
               )
               SELECT w FROM h WHERE w IS NOT NULL`,
              [MAX_WEBHOOK_WALK],
            );
            await forWebhooks(hooks.map((h) => h.w));
          }
        }
        take(ahead, false); // past Prefetch.max they are full: reported backlogged, left for later
        await this.#spend(t, throttles, taken);
        markThrottled(o, throttles, taken);
        if (!chosen.length) return [];
        const rows = await t.all<LeasedRow>(
          `UPDATE deliveries SET lease_until = ?, lease_owner = ? WHERE ${d.inList('id')}
           RETURNING id, account_id, webhook_id, event_id, event_type, attempts`,
          [o.now + o.leaseMs, o.owner, d.listParam(chosen)],
        );
        // RETURNING order is unspecified; hand them out oldest due first, as chosen.
        const rank = new Map(chosen.map((id, i) => [id, i]));
        return rows.sort((x, y) => rank.get(x.id)! - rank.get(y.id)!);
      },
      { lock: 'claim', relaxed: true },
    );
    if (!leased.length) return [];
    // Events never change, so their payloads are read after the commit: the claim lock, which
    // every worker of the cluster waits for, is not held while megabytes of payload travel.
    const eventIds = [...new Set(leased.map((r) => r.event_id))];
    const events = await this.q.all<{ id: string; created_at: Num; data: string }>(`SELECT id, created_at, data FROM events WHERE ${d.inList('id')}`, [d.listParam(eventIds)]);
    const byId = new Map(events.map((e) => [e.id, e]));
    const out: ClaimedDelivery[] = [];
    for (const r of leased) {
      // Gone only if its account was deleted since the claim, and the delivery with it.
      const e = byId.get(r.event_id);
      if (!e) continue;
      out.push({
        id: r.id, accountId: r.account_id, webhookId: r.webhook_id, eventId: r.event_id, eventType: r.event_type,
        attempts: n(r.attempts), eventCreatedAt: n(e.created_at), data: e.data,
      });
    }
    return out;
  }

  /**
   * Write a batch of attempt outcomes in one transaction, in a fixed number of statements
   * (one UPDATE for all the deliveries, one INSERT per INSERT_MAX_ROWS attempts) rather than
   * one per outcome: on PostgreSQL each would be a round trip.
   *
   * An outcome changes the delivery only while its attempt is still the delivery's latest: the
   * same owner holds the lease and no attempt was recorded since the claim (`attempts` one
   * below the attempt's number). A late one (its lease ran out and another worker sent the
   * delivery again, it was redelivered, or this batch was committed before and its answer was
   * lost) leaves the newer state alone; its attempt still joins the history, since the request
   * really was made, unless the delivery is gone. The UPDATE goes first, so a delivery deleted
   * meanwhile is just not found (no foreign-key failure for the attempt), and rows are taken in
   * id order, as deletions take them, so the two do not deadlock. Returns how many outcomes
   * did not change their delivery.
   */
  async recordAttempts(records: readonly AttemptRecord[], now = Date.now()): Promise<number> {
    if (!records.length) return 0;
    const d = this.q.dialect;
    const byId = (x: AttemptRecord, y: AttemptRecord): number => (x.attempt.deliveryId < y.attempt.deliveryId ? -1 : x.attempt.deliveryId > y.attempt.deliveryId ? 1 : 0);
    const sorted = [...records].sort(byId);
    // One row per (delivery, owner), the first: a second one of the same owner could never
    // match once the first frees the lease, and in a single UPDATE … FROM PostgreSQL would
    // apply an arbitrary one of the duplicates.
    const seen = new Set<string>();
    const outcomes: SqlParam[][] = [];
    for (const r of sorted) {
      const a = r.attempt;
      const k = `${a.deliveryId}\n${r.owner}`;
      if (seen.has(k)) continue;
      seen.add(k);
      outcomes.push([a.deliveryId, r.owner, r.status, a.attemptNo, r.nextAttemptAt, a.startedAt, a.statusCode, textN(r.error), a.durationMs]);
    }
    return this.q.tx(async (t) => {
      const updated = await t.run(
        `UPDATE deliveries SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at, lease_until = NULL, lease_owner = NULL,
           last_attempt_at = v.last_attempt_at, last_status_code = v.last_status_code, last_error = v.last_error, last_duration_ms = v.last_duration_ms, updated_at = ?
         FROM ${d.rows(OUTCOME_COLS)}
         WHERE deliveries.id = v.id AND deliveries.lease_owner = v.owner AND deliveries.attempts = v.attempts - 1`,
        [now, ...d.rowsParams(OUTCOME_COLS, outcomes)],
      );
      // Usually every outcome applied; otherwise the rows it wrote are the ones showing its
      // attempt now (no later attempt could have been recorded in between: they are locked).
      const matched = updated.changes === outcomes.length ? new Set(sorted.map((r) => r.attempt.deliveryId)) : await this.#appliedOutcomes(t, sorted, now);
      // The late ones: their attempts are kept where the delivery still exists (and stays, for
      // the rest of this transaction: KEY SHARE is what the attempt's foreign key takes anyway).
      let exists = matched;
      const late = [...new Set(sorted.map((r) => r.attempt.deliveryId).filter((id) => !matched.has(id)))];
      if (late.length) {
        const found = await t.all<{ id: string }>(`SELECT id FROM deliveries WHERE ${d.inList('id')} ORDER BY id${d.name === 'postgres' ? ' FOR KEY SHARE' : ''}`, [d.listParam(late)]);
        exists = new Set([...matched, ...found.map((r) => r.id)]);
      }
      await this.#insertAttempts(t, sorted.filter((r) => exists.has(r.attempt.deliveryId)).map((r) => r.attempt));
      // 410 Gone is rare: a statement per webhook is fine. Only an outcome that applied, and
      // only from the URL that answered: a webhook moved to another URL since stays enabled.
      const disable = new Map<string, { reason: string; url: string }>();
      for (const r of sorted) if (r.disableWebhook !== null && matched.has(r.attempt.deliveryId)) disable.set(r.webhookId, r.disableWebhook);
      for (const [webhookId, g] of [...disable].sort(([x], [y]) => (x < y ? -1 : 1))) {
        await t.run('UPDATE webhooks SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ? AND url = ?', [text(g.reason), now, webhookId, g.url]);
      }
      return outcomes.length - matched.size;
    }, { relaxed: true });
  }

  /** Of `records`, the deliveries their UPDATE in recordAttempts changed (at `now`). */
  async #appliedOutcomes(t: SqlExecutor, records: readonly AttemptRecord[], now: number): Promise<Set<string>> {
    const d = this.q.dialect;
    const rows = await t.all<{ id: string; attempts: Num; last_attempt_at: Num | null; updated_at: Num; lease_owner: string | null }>(
      `SELECT id, attempts, last_attempt_at, updated_at, lease_owner FROM deliveries WHERE ${d.inList('id')}`,
      [d.listParam([...new Set(records.map((r) => r.attempt.deliveryId))])],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const out = new Set<string>();
    for (const r of records) {
      const x = byId.get(r.attempt.deliveryId);
      if (x && x.lease_owner === null && n(x.updated_at) === now && n(x.attempts) === r.attempt.attemptNo && nn(x.last_attempt_at) === r.attempt.startedAt) out.add(x.id);
    }
    return out;
  }

  /** Finish deliveries without an attempt (their webhook was disabled or deleted meanwhile). */
  async failWithoutAttempt(ids: readonly string[], owner: string, reason: string, now = Date.now()): Promise<void> {
    if (!ids.length) return;
    const d = this.q.dialect;
    await this.q.run(
      `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_until = NULL, lease_owner = NULL, last_error = ?, updated_at = ?
       WHERE ${d.inList('id')} AND lease_owner = ?`,
      [text(reason), now, d.listParam([...ids]), owner],
    );
  }

  /** Give leases back (graceful shutdown): the deliveries are due again at once. */
  async releaseLeases(ids: readonly string[], owner: string): Promise<void> {
    if (!ids.length) return;
    const d = this.q.dialect;
    // Other processes' workers pick them up at once rather than at their next poll.
    await this.q.tx(async (t) => {
      const r = await t.run(`UPDATE deliveries SET lease_until = NULL, lease_owner = NULL WHERE ${d.inList('id')} AND lease_owner = ?`, [d.listParam([...ids]), owner]);
      if (r.changes > 0) await this.#wakeWorkers(t, 'any');
    });
  }

  /**
   * Attempt rows are written once: an outcome batch written again after a commit whose answer
   * was lost (a timeout, a dropped connection) finds its rows there and goes on.
   */
  async #insertAttempts(t: SqlExecutor, attempts: readonly AttemptRow[]): Promise<void> {
    await insertValues(
      t,
      'attempts',
      ATTEMPT_COLS,
      attempts.map((a) => [
        a.id, a.deliveryId, a.attemptNo, a.startedAt, a.durationMs, a.statusCode, a.success ? 1 : 0, a.errorKind, textN(a.errorMessage),
        JSON.stringify(a.requestHeaders), a.responseHeaders ? JSON.stringify(a.responseHeaders) : null, textN(a.responseBody), a.responseTruncated ? 1 : 0,
      ]),
      { skipExisting: true },
    );
  }

  /** Queue depth for /metrics. Each count reads one partial index, never the whole table. */
  async queueStats(now = Date.now()): Promise<{ pendingFirst: number; pendingRetry: number; dueNow: number; oldestDueAgeMs: number; leased: number }> {
    const lane = async (cond: string) => {
      const [r] = await this.q.all<{ c: Num; oldest: Num | null }>(`SELECT COUNT(*) AS c, MIN(next_attempt_at) AS oldest FROM deliveries WHERE status = 'pending' AND ${cond}`);
      const [due] = await this.q.all<{ c: Num }>(`SELECT COUNT(*) AS c FROM deliveries WHERE status = 'pending' AND ${cond} AND next_attempt_at <= ?`, [now]);
      return { count: n(r?.c ?? 0), oldest: nn(r?.oldest), due: n(due?.c ?? 0) };
    };
    const first = await lane('attempts = 0');
    const retry = await lane('attempts > 0');
    const [l] = await this.q.all<{ c: Num }>('SELECT COUNT(*) AS c FROM deliveries WHERE lease_until > ?', [now]);
    const oldest = Math.min(first.oldest ?? Infinity, retry.oldest ?? Infinity);
    return {
      pendingFirst: first.count, pendingRetry: retry.count, dueNow: first.due + retry.due,
      oldestDueAgeMs: Number.isFinite(oldest) && oldest <= now ? now - oldest : 0, leased: n(l?.c ?? 0),
    };
  }

  async countByStatus(): Promise<Record<DeliveryStatus, number>> {
    const rows = await this.q.all<{ status: DeliveryStatus; c: Num }>('SELECT status, COUNT(*) AS c FROM deliveries GROUP BY status');
    const out: Record<DeliveryStatus, number> = { pending: 0, succeeded: 0, failed: 0 };
    for (const r of rows) out[r.status] = n(r.c);
    return out;
  }

  // ---------------- cluster jobs and retention ----------------
  /** True for exactly one caller per period across the cluster: it moved next_run_at forward. */
  async claimJob(name: string, owner: string, everyMs: number, now = Date.now()): Promise<boolean> {
    await this.q.run('INSERT INTO cluster_jobs (name, next_run_at, owner) VALUES (?, 0, NULL) ON CONFLICT (name) DO NOTHING', [name]);
    const r = await this.q.run('UPDATE cluster_jobs SET next_run_at = ?, owner = ? WHERE name = ? AND next_run_at <= ?', [now + everyMs, owner, name, now]);
    return r.changes === 1;
  }

  /** Moves the job's next run forward while `owner` still runs it (a run longer than its period). */
  async renewJob(name: string, owner: string, everyMs: number, now = Date.now()): Promise<void> {
    await this.q.run('UPDATE cluster_jobs SET next_run_at = ? WHERE name = ? AND owner = ?', [now + everyMs, name, owner]);
  }

  /** Delete finished deliveries (and their attempts) older than the cutoff, in bounded chunks. */
  async purgeOlderThan(cutoff: number, chunk = 1000, stop: () => boolean = () => false): Promise<{ deliveries: number; events: number }> {
    let deliveries = 0;
    let events = 0;
    const d = this.q.dialect;
    for (;;) {
      if (stop()) return { deliveries, events };
      const gone = await this.q.tx(async (t) => {
        // A delivery's id begins with its created_at (newId), so the primary key finds them.
        // Under a row lock: a redelivery that commits meanwhile waits for this transaction, and
        // one that committed before is pending and not picked.
        const ids = await t.all<{ id: string }>(
          `SELECT id FROM deliveries WHERE id < ? AND status <> 'pending' LIMIT ?${d.forUpdate}`,
          [idFloor('dlv', cutoff), chunk],
        );
        if (!ids.length) return 0;
        const list = d.listParam(ids.map((r) => r.id));
        await t.run(`DELETE FROM attempts WHERE ${d.inList('delivery_id')}`, [list]);
        await t.run(`DELETE FROM deliveries WHERE ${d.inList('id')}`, [list]);
        return ids.length;
      });
      deliveries += gone;
      if (gone < chunk) break;
    }
    for (;;) {
      if (stop()) return { deliveries, events };
      const ids = await this.q.all<{ id: string }>(
        'SELECT id FROM events e WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_id = e.id) LIMIT ?',
        [cutoff, chunk],
      );
      if (!ids.length) break;
      await this.q.run(`DELETE FROM events WHERE ${d.inList('id')}`, [d.listParam(ids.map((r) => r.id))]);
      events += ids.length;
      if (ids.length < chunk) break;
    }
    // The audit log is kept as long as the delivery history, deleted in bounded chunks too.
    for (;;) {
      if (stop()) return { deliveries, events };
      const r = await this.q.run('DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE id < ? LIMIT ?)', [idFloor('aud', cutoff), chunk]);
      if (r.changes < chunk) break;
    }
    await this.q.run('DELETE FROM portal_links WHERE expires_at < ?', [Date.now()]);
    await this.q.run('DELETE FROM sessions WHERE expires_at < ?', [Date.now()]);
    // A rotated-out secret that no longer signs is not kept either (it is never decrypted again).
    await this.q.run('UPDATE webhooks SET previous_secret_enc = NULL, previous_secret_until = NULL WHERE previous_secret_until <= ?', [Date.now()]);
    return { deliveries, events };
  }

  // ---------------- dashboard sign-in ----------------
  async createPortalLink(tokenHash: string, accountId: string, expiresAt: number, audit?: AuditOf<void>): Promise<void> {
    await this.#audited(audit, async (q) => {
      await q.run('INSERT INTO portal_links (token_hash, account_id, expires_at, used_at) VALUES (?, ?, ?, NULL)', [tokenHash, accountId, expiresAt]);
    });
  }

  /** The account of a portal link that may still be used, without using it. */
  async peekPortalLink(tokenHash: string, now = Date.now()): Promise<string | null> {
    const rows = await this.q.all<{ account_id: string }>('SELECT account_id FROM portal_links WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?', [tokenHash, now]);
    return rows[0]?.account_id ?? null;
  }

  /**
   * Spends a portal link and opens its session, all in one transaction: the link is marked
   * used, the browser's previous session (`replace`, a token hash) ended, the new session made
   * by `session` stored and, with `audit`, its entry written; or none of it. The account, or
   * null when the link is unknown, used or expired.
   */
  async usePortalLink(
    linkHash: string,
    o: { replace: string | null; session: (accountId: string) => SessionRow; audit?: AuditOf<string> },
    now = Date.now(),
  ): Promise<string | null> {
    return this.q.tx(async (t) => {
      const [r] = await t.all<{ account_id: string }>(
        'UPDATE portal_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING account_id',
        [now, linkHash, now],
      );
      if (!r) return null;
      if (o.replace !== null) await t.run('DELETE FROM sessions WHERE token_hash = ?', [o.replace]);
      await this.#insertSession(t, o.session(r.account_id), now);
      const e = o.audit?.(r.account_id);
      if (e) await this.#insertAudit(t, e);
      return r.account_id;
    });
  }

  /** `adminTag`: for an operator's session, which admin token opened it (see dashboard/session.ts). */
  async createSession(s: SessionRow, now = Date.now()): Promise<void> {
    await this.#insertSession(this.q, s, now);
  }

  async #insertSession(q: SqlExecutor, s: SessionRow, now: number): Promise<void> {
    await q.run(
      'INSERT INTO sessions (token_hash, account_id, csrf_token, created_at, expires_at, admin_tag) VALUES (?, ?, ?, ?, ?, ?)',
      [s.tokenHash, s.accountId, s.csrfToken, now, s.expiresAt, s.adminTag ?? null],
    );
  }

  async getSession(tokenHash: string, now = Date.now()): Promise<{ accountId: string | null; csrfToken: string; expiresAt: number; adminTag: string | null } | null> {
    const [r] = await this.q.all<{ account_id: string | null; csrf_token: string; expires_at: Num; admin_tag: string | null }>(
      'SELECT account_id, csrf_token, expires_at, admin_tag FROM sessions WHERE token_hash = ? AND expires_at > ?',
      [tokenHash, now],
    );
    return r ? { accountId: r.account_id, csrfToken: r.csrf_token, expiresAt: n(r.expires_at), adminTag: r.admin_tag } : null;
  }

  /** Deletes the operators' sessions not opened with the admin token whose tag is `adminTag`. */
  async endAdminSessionsExcept(adminTag: string): Promise<number> {
    return (await this.q.run('DELETE FROM sessions WHERE account_id IS NULL AND (admin_tag IS NULL OR admin_tag <> ?)', [adminTag])).changes;
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.q.run('DELETE FROM sessions WHERE token_hash = ?', [tokenHash]);
  }
}
