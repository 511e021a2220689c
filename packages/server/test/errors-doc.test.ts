import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/core/errors.js';

/**
 * Every error code the API can answer is documented in docs/API.md with its status, and the
 * docs list no code that does not exist (fastify's habit: a code missing from the docs fails CI).
 */
const page = readFileSync(new URL('../../../docs/API.md', import.meta.url), 'utf8');

/** The rows of the table under "## Error codes": code → status. */
function documentedCodes(markdown: string): Map<string, number> {
  const start = markdown.indexOf('\n## Error codes');
  if (start < 0) throw new Error('docs/API.md has no "## Error codes" section');
  const next = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, number>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([a-z0-9_]+)`\s*\|\s*(\d{3})\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (!m) continue;
    if (rows.has(m[1]!)) throw new Error(`docs/API.md lists ${m[1]} twice`);
    if (m[3]!.length < 10) throw new Error(`docs/API.md: ${m[1]} needs a meaning`);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}

describe('error codes in docs/API.md', () => {
  const documented = documentedCodes(page);

  it('documents every code of the registry with its status', () => {
    const missing = Object.entries(ERROR_CODES)
      .filter(([code, e]) => documented.get(code) !== e.status)
      .map(([code, e]) => `${code} (${e.status}): ${documented.has(code) ? `documented as ${documented.get(code)}` : 'missing'}`);
    expect(missing).toEqual([]);
  });

  it('documents no code that does not exist', () => {
    expect([...documented.keys()].filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });

  it('every code is snake_case and every status an error status', () => {
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(e.status).toBeGreaterThanOrEqual(400);
      expect(e.status).toBeLessThan(600);
    }
  });

  it('the parser reads the table (a broken table must not pass as "nothing missing")', () => {
    expect(documented.size).toBe(Object.keys(ERROR_CODES).length);
    expect(documentedCodes('x\n## Error codes\n| code | status | meaning |\n|---|---|---|\n| `made_up` | 418 | a code for the test only |\n')).toEqual(new Map([['made_up', 418]]));
  });
});
