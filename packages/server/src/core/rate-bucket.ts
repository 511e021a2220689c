/**
 * A token bucket over plain data: it holds at most one second of `rate` and refills at `rate`
 * a second. `take` answers whether one request may go now and, if not, how long until it may.
 */
export interface Bucket {
  tokens: number;
  at: number;
}

export function take(bucket: Bucket | undefined, rate: number, now: number): { bucket: Bucket; ok: boolean; waitMs: number } {
  const tokens = bucket ? Math.min(rate, bucket.tokens + (Math.max(0, now - bucket.at) * rate) / 1000) : rate;
  const at = bucket ? Math.max(now, bucket.at) : now;
  if (tokens >= 1) return { bucket: { tokens: tokens - 1, at }, ok: true, waitMs: 0 };
  return { bucket: { tokens, at }, ok: false, waitMs: Math.ceil(((1 - tokens) * 1000) / rate) };
}
