// Where the time goes in a V8 .cpuprofile (from `node --cpu-prof`): self time by function and
// by area (Herald's own files, better-sqlite3, undici, pino, fastify, node internals, GC…),
// plus the inclusive time of Herald's functions. Usable alone:
//   node bench/lib/profile-summary.mjs FILE.cpuprofile [top]
import { readFileSync } from 'node:fs';

function area(url, name) {
  if (!url) {
    if (/garbage collector/i.test(name)) return 'GC';
    if (name === '(idle)' || name === '(program)') return name;
    return 'native (no file): ' + name;
  }
  // Herald's build, wherever it lives (packages/server/dist, or a candidate copy elsewhere).
  if (url.includes('/dist/') && !url.includes('node_modules')) return 'herald: ' + url.split('/dist/').at(-1);
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return 'node: ' + url.slice(5).split('/')[0];
  return url;
}

export function summarize(file, top = 15) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // samples[i] took timeDeltas[i] µs (the first delta is the gap before sampling began).
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let total = 0;
  const fn = new Map();
  const ar = new Map();
  const incl = new Map(); // Herald functions, inclusive (counted once per sample stack)
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    total += us;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url ? cf.url.replace(/^.*\/(node_modules|dist)\//, '$1/') + ':' + (cf.lineNumber + 1) : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = area(cf.url, cf.functionName);
    ar.set(a, (ar.get(a) ?? 0) + us);
    const seen = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x).callFrame;
      if (!f.url.includes('/dist/') || f.url.includes('node_modules')) continue;
      const k = `${f.functionName || '(anonymous)'} ${f.url.split('/dist/').at(-1)}:${f.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const busy = total - (ar.get('(idle)') ?? 0);
  const rows = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => ({ name: k, ms: us / 1000, pctBusy: (100 * us) / busy }));
  return { totalMs: total / 1000, busyMs: busy / 1000, byArea: rows(ar), byFunction: rows(fn), heraldInclusive: rows(incl) };
}

export function formatSummary(s) {
  const lines = [`profile: ${s.totalMs.toFixed(0)} ms sampled, ${s.busyMs.toFixed(0)} ms busy (not idle)`];
  for (const [title, list] of [['self time by area', s.byArea], ['self time by function', s.byFunction], ["Herald's functions, inclusive", s.heraldInclusive]]) {
    lines.push(`  ${title} (% of busy):`);
    for (const r of list) lines.push(`    ${r.pctBusy.toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(formatSummary(summarize(process.argv[2], Number(process.argv[3] ?? 15))));
}
