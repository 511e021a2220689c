/**
 * When to try again (SPEC §5), as data plus pure functions. Attempt 1 goes at once; after
 * failed attempt n the next waits base × factorⁿ⁻¹ ± 20 %. With the defaults (1 min, ×10,
 * 5 attempts) that is 1 min, 10 min, 1 h 40 min, 16 h 40 min: about 18.5 h in all, enough to
 * ride out an overnight outage of the receiver.
 */
export interface RetryPolicy {
  baseMs: number;
  factor: number;
  maxAttempts: number;
  /** ±fraction of jitter so a recovering receiver is not hit by every retry at once. */
  jitter: number;
}

export const DEFAULT_JITTER = 0.2;

/** The policy the settings describe (HERALD_RETRY_BASE_MS, HERALD_RETRY_FACTOR, HERALD_MAX_ATTEMPTS). */
export const retryPolicyOf = (c: { retryBaseMs: number; retryFactor: number; maxAttempts: number }): RetryPolicy => ({
  baseMs: c.retryBaseMs, factor: c.retryFactor, maxAttempts: c.maxAttempts, jitter: DEFAULT_JITTER,
});

/** Statuses whose Retry-After header is honoured. */
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);
/** The receiver asks for no more deliveries: the webhook is disabled. */
export const GONE_STATUS = 410;

export function isSuccessStatus(status: number): boolean {
  return status >= 200 && status <= 299;
}

/** Un-jittered delay after failed attempt `attemptNo` (1-based). */
export function scheduledDelayMs(policy: RetryPolicy, attemptNo: number): number {
  return policy.baseMs * Math.pow(policy.factor, attemptNo - 1);
}

/** The whole schedule, for docs and the dashboard: delays after attempts 1..max-1. */
export function schedule(policy: RetryPolicy): number[] {
  const out: number[] = [];
  for (let n = 1; n < policy.maxAttempts; n++) out.push(scheduledDelayMs(policy, n));
  return out;
}

/**
 * An HTTP-date in any of its three RFC 9110 forms (`Sun, 06 Nov 1994 08:49:37 GMT`,
 * `Sunday, 06-Nov-94 08:49:37 GMT`, `Sun Nov  6 08:49:37 1994`): a weekday name, then a time.
 * Checked before Date.parse, which reads `1.5` or `-5` as dates in 2001.
 */
const HTTP_DATE = /^[A-Za-z]{3,9},? .*\b\d\d:\d\d:\d\d\b/;

/** Retry-After is delay-seconds or an HTTP-date; anything else is ignored. Returns ms from now. */
export function parseRetryAfter(value: string | undefined | null, now: number): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!HTTP_DATE.test(v)) return null;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

export type NextStep =
  | { kind: 'succeeded' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'failed'; reason: 'exhausted' | 'gone' };

/**
 * Decide after attempt `attemptNo` ended. `random` is in [0, 1) (injected for tests).
 * A Retry-After on 429/503 is honoured but clamped to [scheduled, 2 × scheduled]: a receiver
 * may slow Herald down, not stall a delivery for days nor make it hammer faster.
 */
export function nextStep(
  policy: RetryPolicy,
  attemptNo: number,
  result: { statusCode: number | null; retryAfterMs?: number | null },
  random: number,
): NextStep {
  const status = result.statusCode;
  if (status !== null && isSuccessStatus(status)) return { kind: 'succeeded' };
  if (status === GONE_STATUS) return { kind: 'failed', reason: 'gone' };
  if (attemptNo >= policy.maxAttempts) return { kind: 'failed', reason: 'exhausted' };
  const scheduled = scheduledDelayMs(policy, attemptNo);
  let delayMs = Math.round(scheduled * (1 + policy.jitter * (2 * random - 1)));
  if (status !== null && RETRY_AFTER_STATUSES.has(status) && result.retryAfterMs != null) {
    delayMs = Math.min(Math.max(result.retryAfterMs, delayMs), 2 * scheduled);
  }
  return { kind: 'retry', delayMs };
}
