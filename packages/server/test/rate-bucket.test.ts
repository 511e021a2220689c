import { describe, expect, it } from 'vitest';
import { take, type Bucket } from '../src/core/rate-bucket.js';

describe('rate bucket', () => {
  it('starts full with one second of the rate, then refuses, saying how long until the next', () => {
    let b: Bucket | undefined;
    const oks: boolean[] = [];
    let wait = 0;
    for (let i = 0; i < 4; i++) {
      const r = take(b, 3, 1000);
      b = r.bucket;
      oks.push(r.ok);
      wait = r.waitMs;
    }
    expect(oks).toEqual([true, true, true, false]);
    expect(wait).toBe(334); // a third of a second, rounded up
  });

  it('refills at the rate, never beyond one second of it, and a clock behind adds nothing', () => {
    const empty = { tokens: 0, at: 1000 };
    expect(take(empty, 4, 1250).ok).toBe(true); // 0.25 s × 4 = 1
    expect(take(empty, 4, 1200).ok).toBe(false); // 0.8
    const rested = take(empty, 4, 60_000).bucket;
    expect(rested.tokens).toBe(3); // 4 at most, one taken
    expect(take({ tokens: 0.5, at: 5000 }, 4, 4000)).toEqual({ bucket: { tokens: 0.5, at: 5000 }, ok: false, waitMs: 125 });
  });
});
