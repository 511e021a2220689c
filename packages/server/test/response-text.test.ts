import { describe, expect, it } from 'vitest';
import { responseText } from '../src/core/response-text.js';

describe('responseText', () => {
  const bytes = (...b: number[]) => Uint8Array.from(b);

  it('reads UTF-8 by default, and with an unknown or missing charset', () => {
    const cafe = Buffer.from('café ✓', 'utf8');
    expect(responseText(cafe, undefined, false)).toBe('café ✓');
    expect(responseText(cafe, 'application/json', false)).toBe('café ✓');
    expect(responseText(cafe, 'text/plain; charset=no-such-charset', false)).toBe('café ✓');
  });

  it('decodes by the charset the Content-Type names, in any letter case and quoted', () => {
    expect(responseText(bytes(0x63, 0x61, 0x66, 0xe9), 'text/plain; charset=iso-8859-1', false)).toBe('café');
    expect(responseText(bytes(0x63, 0x61, 0x66, 0xe9), 'text/html; Charset="Windows-1252"', false)).toBe('café');
    expect(responseText(Buffer.from('hé', 'utf16le'), 'text/plain;charset=utf-16le', false)).toBe('hé');
    expect(responseText(bytes(0x82, 0xa0), 'text/plain; charset=shift_jis', false)).toBe('あ');
  });

  it('drops a character the capture limit cut in two, and only when the body was cut', () => {
    const cut = Buffer.from('abé', 'utf8').subarray(0, 3); // 'a', 'b' and the first byte of 'é'
    expect(responseText(cut, 'text/plain', true)).toBe('ab');
    expect(responseText(cut, 'text/plain', false)).toBe('ab\uFFFD'); // a whole body that ends badly says so
  });

  it('shows bytes that are not text, and NUL, as U+FFFD', () => {
    expect(responseText(bytes(0x61, 0xff, 0x00, 0x62), undefined, false)).toBe('a\uFFFD\uFFFDb');
  });
});

describe('responseText, cut UTF-8', () => {
  it('keeps every whole character and drops only a split last one, of any length', () => {
    for (const ch of ['é', '€', '😀']) {
      const whole = Buffer.from(`ab${ch}`, 'utf8');
      for (let cut = 3; cut < whole.length; cut++) expect(responseText(whole.subarray(0, cut), undefined, true), `${ch} cut at ${cut}`).toBe('ab');
      expect(responseText(whole, undefined, true)).toBe(`ab${ch}`);
    }
    expect(responseText(Buffer.from([0x61, 0x80, 0x80, 0x80]), undefined, true)).toBe('a\uFFFD\uFFFD\uFFFD'); // not text: shown as such
  });
});
