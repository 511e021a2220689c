#!/usr/bin/env node
// Regenerates the settings table of docs/CONFIGURATION.md from the settings table in code.
// Run after changing packages/server/src/config/settings.ts:
//   npm run build -w packages/server && node scripts/config-doc.mjs
// `--check` only reports whether the page is up to date (exit 1 if not).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { updateConfigDoc } = await import(`${root}packages/server/dist/config/doc.js`);
const path = `${root}docs/CONFIGURATION.md`;
const page = readFileSync(path, 'utf8');
const next = updateConfigDoc(page);
if (process.argv.includes('--check')) {
  if (next !== page) {
    process.stderr.write('docs/CONFIGURATION.md is out of date: run node scripts/config-doc.mjs\n');
    process.exit(1);
  }
} else if (next !== page) {
  writeFileSync(path, next);
  process.stdout.write('docs/CONFIGURATION.md updated\n');
} else {
  process.stdout.write('docs/CONFIGURATION.md is up to date\n');
}
