import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/index.js';

const doc = readFileSync(new URL('../../../docs/receiving-webhooks.md', import.meta.url), 'utf8');

describe('docs/receiving-webhooks.md', () => {
  it.each(Object.entries(ERROR_CODES))('documents error code %s with its status', (code, { status }) => {
    expect(doc).toContain(`| \`${code}\` | ${status} |`);
  });

  it('documents no code that does not exist', () => {
    const table = doc.slice(doc.indexOf('### Errors'), doc.indexOf('### Event types'));
    const documented = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
});
