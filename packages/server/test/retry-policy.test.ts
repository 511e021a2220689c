import { describe, expect, it } from 'vitest';
import { DEFAULT_JITTER, nextStep, parseRetryAfter, retryPolicyOf, schedule, scheduledDelayMs, type RetryPolicy } from '../src/core/retry-policy.js';

const DEFAULTS: RetryPolicy = { baseMs: 60_000, factor: 10, maxAttempts: 5, jitter: DEFAULT_JITTER };
const MIN = 60_000;

describe('retry policy (SPEC §5)', () => {
  it('has the default schedule 1 min, 10 min, 1 h 40 min, 16 h 40 min: about 18.5 h in all', () => {
    expect(schedule(DEFAULTS)).toEqual([MIN, 10 * MIN, 100 * MIN, 1000 * MIN]);
    const hours = schedule(DEFAULTS).reduce((a, b) => a + b, 0) / 3_600_000;
    expect(hours).toBeCloseTo(18.5, 1);
    expect(scheduledDelayMs({ ...DEFAULTS, baseMs: 200, factor: 2 }, 3)).toBe(800);
  });

  it('jitters each delay within ±20 %, reaching both ends', () => {
    for (let attempt = 1; attempt < 5; attempt++) {
      const scheduled = scheduledDelayMs(DEFAULTS, attempt);
      const low = nextStep(DEFAULTS, attempt, { statusCode: 500 }, 0);
      const mid = nextStep(DEFAULTS, attempt, { statusCode: 500 }, 0.5);
      const high = nextStep(DEFAULTS, attempt, { statusCode: 500 }, 0.999999);
      expect(low).toEqual({ kind: 'retry', delayMs: scheduled * 0.8 });
      expect(mid).toEqual({ kind: 'retry', delayMs: scheduled });
      const h = high.kind === 'retry' ? high.delayMs : NaN;
      expect(h).toBeLessThanOrEqual(scheduled * 1.2);
      expect(h).toBeGreaterThan(scheduled * 1.2 - 1000);
    }
    // Spread out, not synchronised: many deliveries failing together retry at different times.
    const delays = new Set(Array.from({ length: 100 }, () => (nextStep(DEFAULTS, 1, { statusCode: null }, Math.random()) as { delayMs: number }).delayMs));
    expect(delays.size).toBeGreaterThan(50);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(0.8 * MIN);
      expect(d).toBeLessThanOrEqual(1.2 * MIN);
    }
  });

  it('treats every 2xx as success and everything else (3xx, 4xx, 5xx, no response) as a failed attempt', () => {
    for (const s of [200, 201, 202, 204, 299]) expect(nextStep(DEFAULTS, 1, { statusCode: s }, 0.5)).toEqual({ kind: 'succeeded' });
    for (const s of [null, 100, 199, 300, 301, 304, 308, 400, 404, 429, 500, 503]) expect(nextStep(DEFAULTS, 1, { statusCode: s }, 0.5).kind).toBe('retry');
  });

  it('fails after the last attempt, and a success on the last attempt still succeeds', () => {
    expect(nextStep(DEFAULTS, 5, { statusCode: 500 }, 0.5)).toEqual({ kind: 'failed', reason: 'exhausted' });
    expect(nextStep(DEFAULTS, 5, { statusCode: 200 }, 0.5)).toEqual({ kind: 'succeeded' });
    expect(nextStep({ ...DEFAULTS, maxAttempts: 1 }, 1, { statusCode: null }, 0.5)).toEqual({ kind: 'failed', reason: 'exhausted' });
  });

  it('stops at once on 410 Gone, on any attempt', () => {
    expect(nextStep(DEFAULTS, 1, { statusCode: 410 }, 0.5)).toEqual({ kind: 'failed', reason: 'gone' });
    expect(nextStep(DEFAULTS, 5, { statusCode: 410 }, 0.5)).toEqual({ kind: 'failed', reason: 'gone' });
  });

  it('honours Retry-After on 429 and 503 only, clamped between the scheduled delay and twice it', () => {
    const at = (status: number, retryAfterMs: number | null, random = 0.5) => nextStep(DEFAULTS, 1, { statusCode: status, retryAfterMs }, random);
    expect(at(429, 90_000)).toEqual({ kind: 'retry', delayMs: 90_000 });
    expect(at(503, 90_000)).toEqual({ kind: 'retry', delayMs: 90_000 });
    expect(at(429, 3_600_000)).toEqual({ kind: 'retry', delayMs: 2 * MIN }); // a receiver cannot stall a delivery for hours
    expect(at(429, 0, 0.75)).toEqual({ kind: 'retry', delayMs: 1.1 * MIN }); // nor make Herald hammer faster than the schedule
    expect(at(500, 90_000)).toEqual({ kind: 'retry', delayMs: MIN }); // ignored elsewhere
    expect(at(429, null)).toEqual({ kind: 'retry', delayMs: MIN });
    // The clamp scales with the attempt: after attempt 3 the window is [100 min, 200 min].
    expect(nextStep(DEFAULTS, 3, { statusCode: 503, retryAfterMs: 1e12 }, 0.5)).toEqual({ kind: 'retry', delayMs: 200 * MIN });
  });

  it('builds the policy from the settings with the default ±20 % jitter', () => {
    expect(retryPolicyOf({ retryBaseMs: 200, retryFactor: 2, maxAttempts: 3 })).toEqual({ baseMs: 200, factor: 2, maxAttempts: 3, jitter: 0.2 });
    expect(retryPolicyOf({ retryBaseMs: 60_000, retryFactor: 10, maxAttempts: 5 })).toEqual({ ...DEFAULTS, jitter: 0.2 });
  });

  it('caps Retry-After at twice the scheduled delay, not twice the jittered one', () => {
    // random 0.999 jitters the delay up by almost 20 %; the cap must not move with it.
    for (const status of [429, 503]) {
      expect(nextStep(DEFAULTS, 1, { statusCode: status, retryAfterMs: 3_600_000 }, 0.999)).toEqual({ kind: 'retry', delayMs: 2 * MIN });
      expect(nextStep(DEFAULTS, 2, { statusCode: status, retryAfterMs: 1e12 }, 0.999)).toEqual({ kind: 'retry', delayMs: 20 * MIN });
    }
  });

  it('never lets Retry-After shorten the jittered delay, whose low end is 20 % under the schedule', () => {
    // The floor is the jittered delay, not the scheduled one: with random 0 it is 0.8 × scheduled.
    expect(nextStep(DEFAULTS, 1, { statusCode: 429, retryAfterMs: 0 }, 0)).toEqual({ kind: 'retry', delayMs: 0.8 * MIN });
    expect(nextStep(DEFAULTS, 1, { statusCode: 503, retryAfterMs: 1000 }, 0)).toEqual({ kind: 'retry', delayMs: 0.8 * MIN });
    // A Retry-After above that floor is honoured even when it is under the scheduled delay.
    expect(nextStep(DEFAULTS, 1, { statusCode: 429, retryAfterMs: 50_000 }, 0)).toEqual({ kind: 'retry', delayMs: 50_000 });
  });

  it('ignores Retry-After on 502 and 504: they get the plain schedule', () => {
    for (const status of [502, 504]) {
      expect(nextStep(DEFAULTS, 1, { statusCode: status, retryAfterMs: 90_000 }, 0.5)).toEqual({ kind: 'retry', delayMs: MIN });
      expect(nextStep(DEFAULTS, 2, { statusCode: status, retryAfterMs: 1e12 }, 0.5)).toEqual({ kind: 'retry', delayMs: 10 * MIN });
    }
  });

  it('parses Retry-After as seconds or an HTTP date, and ignores anything else', () => {
    const now = Date.UTC(2024, 4, 20, 14, 30, 0);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 7 ', now)).toBe(7000);
    expect(parseRetryAfter('Mon, 20 May 2024 14:31:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Mon, 20 May 2024 14:00:00 GMT', now)).toBe(0); // in the past: now
    expect(parseRetryAfter('Monday, 20-May-24 14:31:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Mon May 20 14:31:00 2024', now)).toBe(60_000);
    for (const bad of [undefined, null, '', 'soon', '-5', '1.5', '0x10']) expect(parseRetryAfter(bad, now)).toBeNull();
  });
});
