import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../src/core/secret-box.js';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed, and nothing sealed under another key', () => {
    const sealed = box.seal('whsec_abc');
    expect(box.open(sealed)).toBe('whsec_abc');
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow();
  });

  it('refuses a changed ciphertext and a tag cut short, which GCM alone would still check', () => {
    const [v, iv, tag, ct] = box.seal('whsec_abc').split('.') as [string, string, string, string];
    const flipped = Buffer.from(ct, 'base64url');
    flipped[0]! ^= 1;
    expect(() => box.open([v, iv, tag, flipped.toString('base64url')].join('.'))).toThrow();
    const short = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    expect(() => box.open([v, iv, short, ct].join('.'))).toThrow();
  });
});
