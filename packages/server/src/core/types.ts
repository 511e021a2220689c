/**
 * Glossary — names in code match these, the API and the docs.
 *
 * account    A customer workspace of the operator, with a plan (free | pro | enterprise).
 *            Webhooks exist only on pro and enterprise.
 * webhook    A receiver URL of one account: the event types it subscribes to, custom headers,
 *            an optional signing secret, and whether it is enabled.
 * event type A name like `content.generated` with a description (the catalog).
 * event      One fact published by the operator for one account: {id, type, created_at, data}.
 *            Its payload is stored once, however many webhooks receive it.
 * delivery   One event to one webhook. Its id is the `delivery_id` the receiver sees, the same
 *            on every attempt and on manual redelivery. Status pending | succeeded | failed.
 * attempt    One HTTP request of a delivery and what came back (or the error).
 * lease      A worker's time-limited claim on a pending delivery. While the lease runs no other
 *            worker takes the delivery; when it runs out (the worker died) anyone may.
 * lane       First attempts and retries are claimed separately so a backlog of retries never
 *            delays fresh events.
 */

export type Plan = 'free' | 'pro' | 'enterprise';
export const PLANS: readonly Plan[] = ['free', 'pro', 'enterprise'];
export const WEBHOOK_PLANS: ReadonlySet<Plan> = new Set(['pro', 'enterprise']);

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'succeeded', 'failed'];

/** Timestamps are integer milliseconds since the epoch everywhere below the API. */
export type EpochMs = number;

export interface Account {
  id: string;
  name: string;
  plan: Plan;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

export interface ApiKey {
  id: string;
  accountId: string;
  prefix: string;
  createdAt: EpochMs;
}

export interface EventType {
  name: string;
  description: string;
  schema: unknown | null;
  builtin: boolean;
  createdAt: EpochMs;
}

/** A webhook as stored: the secret and header values stay encrypted (see secret-box.ts). */
export interface WebhookRow {
  id: string;
  accountId: string;
  url: string;
  description: string;
  events: string[];
  headersEnc: string | null;
  secretEnc: string | null;
  /** The secret a rotation replaced: it signs too (a second webhook-signature entry) until `previousSecretUntil`. */
  previousSecretEnc: string | null;
  previousSecretUntil: EpochMs | null;
  enabled: boolean;
  disabledReason: string | null;
  /** The most deliveries a second sent to it, over the cluster; null for no limit. */
  rateLimit: number | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

export interface EventRow {
  id: string;
  accountId: string;
  type: string;
  createdAt: EpochMs;
  /** The `data` member exactly as published (raw JSON text): delivered byte for byte. */
  data: string;
}

export interface DeliveryRow {
  id: string;
  accountId: string;
  eventId: string;
  webhookId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: EpochMs | null;
  lastAttemptAt: EpochMs | null;
  lastStatusCode: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

export type ErrorKind =
  | 'timeout'
  | 'dns'
  | 'refused'
  | 'reset'
  | 'tls'
  | 'blocked'
  | 'protocol'
  | 'http_status'
  | 'network';

export interface AttemptRow {
  id: string;
  deliveryId: string;
  attemptNo: number;
  startedAt: EpochMs;
  durationMs: number;
  statusCode: number | null;
  success: boolean;
  errorKind: ErrorKind | null;
  errorMessage: string | null;
  requestHeaders: Record<string, string>;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
  responseTruncated: boolean;
}
