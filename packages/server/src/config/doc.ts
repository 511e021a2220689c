import { SETTINGS, type Setting } from './settings.js';

/**
 * The settings table of docs/CONFIGURATION.md, rendered from SETTINGS so the page cannot drift
 * from what the server accepts. `node scripts/config-doc.mjs` writes it between the markers
 * below; test/config.test.ts fails when the page is out of date.
 */
export const BEGIN_MARKER = '<!-- settings:begin (generated from packages/server/src/config/settings.ts by scripts/config-doc.mjs; do not edit) -->';
export const END_MARKER = '<!-- settings:end -->';

/** `HERALD_DELIVERY_TIMEOUT_MS` ↔ `--delivery-timeout-ms`, as the CLI spells its flags. */
export const flagOf = (env: string): string => '--' + env.replace(/^HERALD_/, '').toLowerCase().replace(/_/g, '-');

function accepts(s: Setting): string {
  if (s.accepts) return s.accepts;
  const range = (): string => {
    if (s.min !== undefined && s.max !== undefined) return ` ${s.min}–${s.max}`;
    if (s.min !== undefined) return ` ≥ ${s.min}`;
    if (s.max !== undefined) return ` ≤ ${s.max}`;
    return '';
  };
  switch (s.type) {
    case 'int':
      return `integer${range()}`;
    case 'number':
      return `number${range()}`;
    case 'bool':
      return '`1`/`true`/`yes` or `0`/`false`/`no`';
    case 'enum':
      return s.values!.map((v) => `\`${v}\``).join(', ');
    case 'url':
      return '`http://` or `https://` URL';
    case 'cidrs':
      return 'CIDRs, comma or space separated';
    case 'string':
      return 'text';
  }
}

// A `|` inside a cell would end it.
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderSettingsTable(settings: readonly Setting[] = SETTINGS): string {
  const rows = settings.map((s) => {
    const def = s.default === '' ? '(empty)' : cell(`\`${s.default}\``);
    // Flags are visible to every user of the machine in `ps`; secrets belong in the environment.
    const meaning = s.secret ? `${s.description}. **Secret**: never printed or logged; set it in the environment, not as a flag (flags show in \`ps\`)` : s.description;
    return `| \`${s.env}\` | \`${flagOf(s.env)}\` | ${def} | ${cell(accepts(s))} | ${cell(meaning)} |`;
  });
  return ['| variable | flag | default | accepts | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** `page` with the block between the markers replaced by the current table. */
export function updateConfigDoc(page: string): string {
  const start = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  if (start < 0 || end < start) throw new Error('docs/CONFIGURATION.md: the settings markers are missing');
  return `${page.slice(0, start)}${BEGIN_MARKER}\n${renderSettingsTable()}\n${page.slice(end)}`;
}
