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
  it.each([['U+007F', '\u007f'], ['U+0080', '\u0080'], ['U+0090', '\u0090'], ['U+009F', '\u009f']])('refuses a value containing the control character %s (DEL and all of C1)', (_, c) => {
    const r = checkCustomHeaders({ 'X-A': `a${c}b` });
    expect(r).toMatchObject({ ok: false, message: expect.stringContaining('control character') });
  });
  it('accepts a no-break space, the first Latin-1 character after the C1 controls', () => {
    expect(checkCustomHeaders({ 'X-A': 'a\u00a0b' })).toEqual({ ok: true, headers: { 'X-A': 'a\u00a0b' } });
  });
  it.each(['X@A', 'X"A', 'X,A', 'X;A', 'X=A', 'X{A', 'X}A', 'X(A', 'X)A', 'X/A', 'X A', 'X:A', 'X<A', 'X>A', 'X?A', 'X[A', 'X]A', 'X\\A', ''])(
    'refuses the header name %j, which is not an HTTP token',
    (name) => {
      expect(checkCustomHeaders({ [name]: 'v' })).toMatchObject({ ok: false, message: expect.stringContaining('not a valid HTTP token') });
    },
  );
  it('accepts a header name made of every token special character', () => {
    const name = "X-a!#$%&'*+-.^_`|~1";
    expect(checkCustomHeaders({ [name]: 'v' })).toEqual({ ok: true, headers: { [name]: 'v' } });
  });
  it.each([
    'HOST', 'Content-Type', 'Content-Length', 'Transfer-Encoding', 'Connection', 'User-Agent', 'x-HUB-signature-256',
    'Keep-Alive', 'UPGRADE', 'TE', 'Trailer', 'Expect', 'Proxy-Connection', 'Content-ENCODING', 'ACCEPT-encoding', 'proxy-Authorization',
    'X-HERALD-Event', 'Webhook-Signature',
  ])('refuses the reserved header %s in any case', (name) => {
    expect(checkCustomHeaders({ [name]: 'v' })).toMatchObject({ ok: false, message: expect.stringContaining('set by Herald') });
  });
  it('treats null headers as no headers', () => {
    expect(checkCustomHeaders(null)).toEqual({ ok: true, headers: {} });
  });
  it('refuses names differing only in case whichever comes first', () => {
    expect(checkCustomHeaders({ 'x-a': '1', 'X-A': '2' })).toMatchObject({ ok: false, message: expect.stringContaining('given twice') });
    expect(checkCustomHeaders({ 'X-A': '1', 'x-a': '2' })).toMatchObject({ ok: false, message: expect.stringContaining('given twice') });
    expect(checkCustomHeaders({ 'x-A': '1', 'X-a': '2' })).toMatchObject({ ok: false, message: expect.stringContaining('given twice') });
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
