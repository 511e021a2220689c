import { describe, expect, it } from 'vitest';
import { checkCustomHeaders, MAX_CUSTOM_HEADERS } from '../src/core/header-policy.js';

describe('custom header rules', () => {
  it('keeps a header named __proto__ instead of swallowing it', () => {
    const r = checkCustomHeaders(JSON.parse('{"__proto__":"x","X-Token":"abc"}'));
    expect(r.ok).toBe(true);
    if (r.ok) expect(Object.entries(r.headers)).toEqual([['__proto__', 'x'], ['X-Token', 'abc']]);
  });
  it.each([
    ['Host', 'h'], ['content-length', '1'], ['X-Herald-Event', 'x'], ['webhook-id', 'x'], ['X-Hub-Signature-256', 'x'], ['Proxy-Authorization', 'Basic eDp5'],
    ['Bad Name', 'x'], ['X-A', 'v\r\nX-Inj: 1'], ['X-A', 'nul\u0000'], ['X-A', 'x'.repeat(4097)], ['Accept-Encoding', 'gzip'],
    // Past one byte per character (undici fails the request), a lone surrogate, C1 controls, DEL.
    ['X-A', 'price in €'], ['X-A', '\ud800'], ['X-A', 'next\u0085line'], ['X-A', 'del\u007f'],
  ])('refuses %s: %j', (name, value) => {
    expect(checkCustomHeaders({ [name]: value }).ok).toBe(false);
  });
  it('accepts visible ASCII, space, tab and Latin-1 text', () => {
    const r = checkCustomHeaders({ 'X-Team': 'Café Ünïcode\tñ ~!', 'X-Empty': '' });
    expect(r.ok).toBe(true);
  });
  it('refuses the same name twice in different case and more than the maximum', () => {
    expect(checkCustomHeaders({ 'X-A': '1', 'x-a': '2' }).ok).toBe(false);
    const many = Object.fromEntries(Array.from({ length: MAX_CUSTOM_HEADERS + 1 }, (_, i) => [`X-H${i}`, 'v']));
    expect(checkCustomHeaders(many).ok).toBe(false);
  });
});
