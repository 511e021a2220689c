import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../src/index.js';
import { delivery, envelope, post } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SECRET = 'whsec_example-receiver-test';
let child: ChildProcess;
let url: string;
const lines: Record<string, any>[] = [];
const waiters: Array<() => void> = [];

/** Resolves with the first stdout line (already seen or still to come) that matches. */
function waitForLine(match: (line: Record<string, any>) => boolean): Promise<Record<string, any>> {
  return new Promise((resolve) => {
    const check = () => {
      const found = lines.find(match);
      if (!found) return false;
      resolve(found);
      return true;
    };
    if (!check()) waiters.push(() => void check());
  });
}

beforeAll(async () => {
  // The example imports the built package, as a user's code would.
  execFileSync(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', 'packages/receiver/tsconfig.json'], { cwd: root });
  child = spawn(process.execPath, ['examples/receiver/server.mjs'], {
    cwd: root,
    env: { ...process.env, PORT: '0', HERALD_WEBHOOK_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(JSON.parse(line));
    for (const w of waiters) w();
  });
  const { listening } = await waitForLine((l) => 'listening' in l);
  expect(listening).toBeGreaterThan(0);
  url = `http://127.0.0.1:${listening}/webhooks`;
}, 60_000);

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});

// One file builds dist/ and runs both checks on it, so no other test races the build.
describe('the built package', () => {
  const pkgDir = join(root, 'packages/receiver');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

  it('has no runtime dependencies', () => {
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies ?? {}).toEqual({});
    expect(pkg.type).toBe('module');
  });

  it('every export resolves to a built file, importable without express, fastify or hono at runtime', () => {
    for (const [subpath, target] of Object.entries<Record<string, string>>(pkg.exports)) {
      if (typeof target === 'string') continue;
      expect(existsSync(join(pkgDir, target.types!)), target.types).toBe(true);
      expect(existsSync(join(pkgDir, target.import!)), target.import).toBe(true);
      const specifier = `@herald/receiver${subpath.slice(1)}`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', `console.log(Object.keys(await import('${specifier}')).length)`], { cwd: root });
      expect(Number(out.toString())).toBeGreaterThan(0);
    }
  });

  it('no built module imports a framework or a node: builtin', () => {
    const files = readdirSync(join(pkgDir, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(10);
    let seen = 0;
    for (const file of files) {
      const imports = [...readFileSync(join(pkgDir, 'dist', file), 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
      for (const spec of imports) expect(spec, `${file} imports ${spec}`).toMatch(/^\.\.?\//);
      seen += imports.length;
    }
    expect(seen).toBeGreaterThan(20); // the pattern does find imports
  });
});

describe('examples/receiver/server.mjs', () => {
  it('processes a verified delivery once, logging it as a JSON line', async () => {
    const { body, headers } = await delivery(envelope({ delivery_id: 'dlv_ex_1', data: { n: 1 } }), SECRET, 'dlv_ex_1');
    expect(await post(url, body, headers)).toMatchObject({ status: 200, body: { ok: true } });
    const line = await waitForLine((l) => l.processed?.delivery_id === 'dlv_ex_1');
    expect(line.processed).toMatchObject({ event: 'content.generated', attempt: 1, data: { n: 1 } });

    // A retry of the same delivery (fresh timestamp, next attempt) is acknowledged, not reprocessed.
    const retry = await delivery(body, SECRET, 'dlv_ex_1');
    expect(await post(url, body, { ...retry.headers, 'x-herald-attempt': '2' })).toMatchObject({ status: 200, body: { duplicate: true } });
    await waitForLine((l) => l.duplicate === 'dlv_ex_1');
    expect(lines.filter((l) => l.processed?.delivery_id === 'dlv_ex_1')).toHaveLength(1);
  });

  it('rejects a forged or replayed delivery with 401 and logs why', async () => {
    const { body, headers } = await delivery(envelope({ delivery_id: 'dlv_ex_2' }), 'whsec_wrong', 'dlv_ex_2');
    expect(await post(url, body, headers)).toMatchObject({ status: 401, body: { error: { code: 'signature_mismatch' } } });
    const old = await signWebhook({ secret: SECRET, body, id: 'dlv_ex_2', timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(await post(url, body, { 'content-type': 'application/json', ...old })).toMatchObject({ status: 401, body: { error: { code: 'timestamp_too_old' } } });
    await waitForLine((l) => l.rejected?.code === 'timestamp_too_old');
    expect(lines.some((l) => l.processed?.delivery_id === 'dlv_ex_2')).toBe(false);
  });

  it('answers 404 off the webhook path', async () => {
    expect((await post(url.replace('/webhooks', '/other'), '{}', {})).status).toBe(404);
  });

  it('exits cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
