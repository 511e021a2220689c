import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { waitFor } from './helpers/herald.js';
import { ensureBuilt } from './helpers/spawn-herald.js';
import { SecretBox } from '../src/core/secret-box.js';
import { loadMigrations, migrate } from '../src/store/migrate.js';
import { openStore } from '../src/store/open.js';

/**
 * The real CLI (`node packages/server/dist/cli.js serve`) as a child process: start-up errors,
 * the first-start admin token, and what reaches the logs. The build is refreshed first when any
 * source file is newer than it (ensureBuilt), so these tests never run yesterday's code.
 */
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  dirs.push(d);
  return d;
};

// Shares the build lock with the other process tests, so two files never run tsc over each other.
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// A process that should have failed but started, or a test that gave up on one, must not
// outlive its test. (A fixed kill timer did this before and, on a loaded machine, killed a
// process still shutting down cleanly.) When the test failed, what such a process wrote to
// stderr is printed, since a timeout says nothing of why the process never ended.
const live = new Map<ChildProcess, () => string>();
afterEach((context) => {
  for (const [c, err] of live) {
    if (context.task.result?.state === 'fail') console.error(`a Herald process was still running; the end of its stderr:\n${err().slice(-2000)}`);
    c.kill('SIGKILL');
  }
  live.clear();
});

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** The exit code, or the signal's name when a signal ended the process (so a failure says which). */
  exit: Promise<number | string>;
  /** Waits for the start-up banner; returns the URL it announces. */
  started(): Promise<string>;
  stop(): Promise<number | string>;
}

/** Spawns the CLI with only the given HERALD_* variables (the test runner's own are dropped). */
function herald(env: Record<string, string>, args: string[] = ['serve']): Run {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
  const child = spawn(process.execPath, [cli, ...args], { cwd: tempDir(), env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  live.set(child, () => err);
  // 'close', not 'exit': it comes once stdout and stderr are drained too, so the output is all there.
  const exit = new Promise<number | string>((resolve) => child.on('close', (code, signal) => (live.delete(child), resolve(code ?? signal ?? 'unknown'))));
  return {
    child, exit, out: () => out, err: () => err,
    async started() {
      const m = await waitFor(() => /is running \([^)]*\) at (http:\/\/\S+)/.exec(err), 15_000);
      return m[1]!;
    },
    async stop() {
      child.kill('SIGTERM');
      return exit;
    },
  };
}

const sqlite = (dir: string) => ({ HERALD_DATABASE_URL: `sqlite:${join(dir, 'herald.db')}`, HERALD_PORT: '0' });

describe('start-up errors', () => {
  it.each([
    ['HERALD_PORT', 'abc'],
    ['HERALD_DEV', 'maybe'],
    ['HERALD_ROLE', 'x'],
    ['HERALD_DATABASE_URL', 'mysql://db/herald'],
    ['HERALD_SECRET_KEY', 'short'],
    ['HERALD_ALLOWED_CIDRS', '10.0.0.1/8'],
    ['HERALD_MAX_ATTEMPTS', '0'],
    ['HERALD_EGRESS_PROXY', 'ftp://x'],
    ['HERALD_HOST', 'bad host'],
  ])('%s=%s: exits non-zero and names the variable', async (name, value) => {
    const run = herald({ ...sqlite(tempDir()), [name]: value });
    const code = await run.exit;
    expect(code).not.toBe(0);
    expect(typeof code).toBe('number'); // it exited by itself, not by a signal
    expect(run.err()).toContain(name);
    expect(run.err()).toMatch(/configuration error/);
    expect(run.err()).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('a bad flag is reported under its variable name', async () => {
    const run = herald(sqlite(tempDir()), ['serve', '--port', 'abc']);
    expect(await run.exit).not.toBe(0);
    expect(run.err()).toContain('HERALD_PORT');
  });

  it('an address of no interface of this machine is a clear error naming HERALD_HOST', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never configured here, and binding sends nothing.
    const run = herald({ ...sqlite(tempDir()), HERALD_HOST: '192.0.2.1', HERALD_LOG_LEVEL: 'silent' });
    expect(await run.exit).not.toBe(0);
    expect(run.err()).toMatch(/^herald: configuration error: HERALD_HOST: no network interface of this machine has that address/m);
    expect(run.err()).not.toMatch(/\n\s+at /);
  });

  it('a data dir that cannot be written, or a damaged secrets file in it, is an error naming HERALD_DATA_DIR', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a-file'), '');
    const unwritable = herald({ ...sqlite(dir), HERALD_DATA_DIR: join(dir, 'a-file', 'data') });
    expect(await unwritable.exit).toBe(2);
    expect(unwritable.err()).toMatch(/^herald: configuration error: HERALD_DATA_DIR: cannot write /m);
    const damaged = tempDir();
    writeFileSync(join(damaged, 'herald-secrets.json'), JSON.stringify({ secret_key_hex: 'ab'.repeat(20) }));
    const run = herald({ ...sqlite(damaged) });
    expect(await run.exit).toBe(2);
    expect(run.err()).toMatch(/^herald: configuration error: HERALD_DATA_DIR: .*secret_key_hex must be 64 hex characters/m);
    expect(run.err()).not.toMatch(/\n\s+at /);
  });

  it('a port in use is a clear error naming HERALD_PORT', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const port = (blocker.address() as { port: number }).port;
      const run = herald({ ...sqlite(tempDir()), HERALD_PORT: String(port), HERALD_LOG_LEVEL: 'silent' });
      expect(await run.exit).not.toBe(0);
      expect(run.err()).toContain('HERALD_PORT');
    } finally {
      blocker.close();
    }
  });
});

describe('start-up warnings', () => {
  it('warns that an api process on SQLite delivers nothing itself', async () => {
    const run = herald({ ...sqlite(tempDir()), HERALD_ROLE: 'api' });
    await run.started();
    expect(await run.stop()).toBe(0);
    const warning = run.out().split('\n').find((l) => l.includes('HERALD_ROLE=api on SQLite'));
    expect(warning && JSON.parse(warning)).toMatchObject({ level: 40, role: 'api' });
  });
});

describe('the secret key', () => {
  const keyA = 'a1'.repeat(32);
  const keyB = 'b2'.repeat(32);

  it('refuses to start, naming HERALD_SECRET_KEY, with a key other than the database\'s; starts again with the right one', async () => {
    const dir = tempDir();
    const env = { ...sqlite(dir), HERALD_LOG_LEVEL: 'silent', HERALD_ADMIN_TOKEN: 'admin-token-0123456789' };
    const first = herald({ ...env, HERALD_SECRET_KEY: keyA });
    await first.started();
    expect(await first.stop()).toBe(0);

    const wrong = herald({ ...env, HERALD_SECRET_KEY: keyB });
    expect(await wrong.exit).toBe(2);
    expect(wrong.err()).toMatch(/^herald: configuration error: HERALD_SECRET_KEY: this is not the key/m);
    expect(wrong.err()).not.toMatch(/\n\s+at /);

    // Unset, the key generated into the data dir is not the database's either.
    const generated = herald({ ...env });
    expect(await generated.exit).toBe(2);
    expect(generated.err()).toContain('HERALD_SECRET_KEY');

    const right = herald({ ...env, HERALD_SECRET_KEY: keyA });
    await right.started();
    expect(await right.stop()).toBe(0);
  });

  it('refuses another key before migrating: a database from before the check stays at its version', async () => {
    const dir = tempDir();
    const store = await openStore({ db: { kind: 'sqlite', path: join(dir, 'herald.db') }, sqliteSynchronous: 'normal', dbPoolSize: 1 });
    const before = loadMigrations('sqlite').filter((m) => m.name !== 'key_check' && m.version < 8);
    await migrate(store.q, before);
    await store.q.run("INSERT INTO accounts (id, name, plan, created_at, updated_at) VALUES ('acc_1', 'A', 'pro', 0, 0)");
    await store.q.run(
      "INSERT INTO webhooks (id, account_id, url, description, events, secret_enc, enabled, created_at, updated_at) VALUES ('wh_1', 'acc_1', 'https://x.example/', '', '[\"*\"]', ?, 1, 0, 0)",
      [new SecretBox(Buffer.from(keyA, 'hex')).seal('whsec_0123456789abcdef')],
    );
    await store.close();
    const env = { ...sqlite(dir), HERALD_LOG_LEVEL: 'silent', HERALD_ADMIN_TOKEN: 'admin-token-0123456789' };
    const wrong = herald({ ...env, HERALD_SECRET_KEY: keyB });
    expect(await wrong.exit).toBe(2);
    expect(wrong.err()).toMatch(/HERALD_SECRET_KEY: this is not the key/);
    const check = await openStore({ db: { kind: 'sqlite', path: join(dir, 'herald.db') }, sqliteSynchronous: 'normal', dbPoolSize: 1 });
    const versions = (await check.q.all<{ v: number }>('SELECT MAX(version) AS v FROM schema_migrations'))[0]!.v;
    await check.close();
    expect(Number(versions)).toBe(before.at(-1)!.version);
    const right = herald({ ...env, HERALD_SECRET_KEY: keyA });
    await right.started();
    expect(await right.stop()).toBe(0);
  });

  it('checks a refused setting before it touches the database: nothing is created or migrated', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'herald-secrets.json'), '{ not json');
    const run = herald({ ...sqlite(dir), HERALD_DATA_DIR: dir });
    expect(await run.exit).toBe(2);
    expect(run.err()).toContain('HERALD_DATA_DIR');
    expect(existsSync(join(dir, 'herald.db'))).toBe(false);
  });
});

describe('first start', () => {
  it('prints the admin token once, stores only its hash, and does not print it again', async () => {
    const dir = tempDir();
    const first = herald({ ...sqlite(dir), HERALD_LOG_LEVEL: 'silent' });
    const url = await first.started();
    const token = /Admin token[^:]*: (hadm_\S+)/.exec(first.err())?.[1];
    expect(token).toBeDefined();

    const accounts = await fetch(`${url}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
    expect(accounts.status).toBe(200);
    expect((await fetch(`${url}/v1/accounts`, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect(await first.stop()).toBe(0);
    expect((first.out() + first.err()).split(token!).length - 1).toBe(1);

    // The data dir holds the hash (and the generated secret key), never the token.
    const secrets = JSON.parse(readFileSync(join(dir, 'herald-secrets.json'), 'utf8'));
    expect(secrets.admin_token_sha256).toBe(createHash('sha256').update(token!).digest('hex'));
    expect(secrets.secret_key_hex).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dir, 'herald-secrets.json')).mode & 0o077).toBe(0);
    for (const f of readdirSync(dir)) expect({ f, has: readFileSync(join(dir, f)).includes(token!) }).toEqual({ f, has: false });

    const second = herald({ ...sqlite(dir), HERALD_LOG_LEVEL: 'silent' });
    const url2 = await second.started();
    expect(second.err()).not.toMatch(/hadm_/);
    expect(second.err()).toMatch(/Sign in with your admin token/);
    expect((await fetch(`${url2}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await second.stop()).toBe(0);
  });
});

describe('admin-token --rotate', () => {
  it('replaces the stored token: after a restart the new one works and the old one is refused', async () => {
    const dir = tempDir();
    const first = herald({ ...sqlite(dir), HERALD_LOG_LEVEL: 'silent' });
    await first.started();
    const old = /Admin token[^:]*: (hadm_\S+)/.exec(first.err())![1]!;
    expect(await first.stop()).toBe(0);
    const rotate = herald({ ...sqlite(dir) }, ['admin-token', '--rotate']);
    expect(await rotate.exit).toBe(0);
    const fresh = rotate.out().trim();
    expect(fresh).toMatch(/^hadm_\S+$/);
    expect(fresh).not.toBe(old);
    const next = herald({ ...sqlite(dir), HERALD_LOG_LEVEL: 'silent' });
    const url = await next.started();
    expect((await fetch(`${url}/v1/accounts`, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(200);
    expect((await fetch(`${url}/v1/accounts`, { headers: { authorization: `Bearer ${old}` } })).status).toBe(401);
    expect(await next.stop()).toBe(0);
  });

  it('refuses while HERALD_ADMIN_TOKEN is set, naming it: a token written to the data dir would never be used', async () => {
    const dir = tempDir();
    const r = herald({ ...sqlite(dir), HERALD_ADMIN_TOKEN: 'admin-token-from-the-environment' }, ['admin-token', '--rotate']);
    expect(await r.exit).toBe(2);
    expect(r.err()).toMatch(/^herald: configuration error: HERALD_ADMIN_TOKEN: /m);
    expect(r.out()).toBe('');
  });
});

describe('logs', () => {
  let rx: Receiver;
  beforeAll(async () => {
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx.close();
  });

  it('never contain the admin token, API keys, webhook secrets, header values or the secret key', async () => {
    const dir = tempDir();
    const adminToken = 'admin-token-for-log-test-' + 'q'.repeat(12);
    const secretKey = '5e'.repeat(32);
    const run = herald({ ...sqlite(dir), HERALD_LOG_LEVEL: 'info', HERALD_DEV: 'true', HERALD_ADMIN_TOKEN: adminToken, HERALD_SECRET_KEY: secretKey });
    const url = await run.started();
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const r = await fetch(url + path, {
        method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, body: (await r.json().catch(() => null)) as any };
    };

    const acc = (await call('POST', '/v1/accounts', adminToken, { name: 'Logs', plan: 'pro' })).body.id;
    const apiKey: string = (await call('POST', `/v1/accounts/${acc}/api-keys`, adminToken)).body.key;
    const webhookSecret = 'whsec_log-test-secret-' + 'w'.repeat(10);
    const headerValue = 'Bearer log-test-header-value-' + 'h'.repeat(10);
    const wh = await call('POST', `/v1/accounts/${acc}/webhooks`, apiKey, { url: `${rx.url}/logs`, events: ['*'], secret: webhookSecret, headers: { Authorization: headerValue } });
    expect(wh.status).toBe(201);
    expect((await call('GET', `/v1/accounts/${acc}/webhooks/${wh.body.id}/secret`, apiKey)).body.secret).toBe(webhookSecret);
    expect((await call('POST', `/v1/accounts/${acc}/events`, adminToken, { type: 'content.generated', data: { x: 1 } })).status).toBe(202);
    await waitFor(() => rx.received.some((r) => r.url === '/logs'));
    expect(rx.received.find((r) => r.url === '/logs')!.headers.authorization).toBe(headerValue);
    // Refused requests, whose bodies carry secrets too.
    // (Refused in dev mode too: credentials in a URL are never allowed.)
    expect((await call('POST', `/v1/accounts/${acc}/webhooks`, apiKey, { url: `http://user:${webhookSecret}@127.0.0.1:1/`, events: ['*'], secret: webhookSecret })).status).toBe(422);
    expect((await call('POST', `/v1/accounts/${acc}/webhooks`, apiKey, { url: `${rx.url}/x`, events: ['*'], headers: { Host: headerValue } })).status).toBe(422);
    expect((await call('GET', '/v1/accounts', apiKey + 'x')).status).toBe(401);
    expect((await call('POST', `/v1/accounts/${acc}/webhooks/test`, apiKey, { url: `${rx.url}/ping`, secret: webhookSecret, headers: { 'X-Ping': headerValue } })).status).toBe(200);
    await waitFor(async () => (await call('GET', `/v1/accounts/${acc}/deliveries`, apiKey)).body.data[0]?.status === 'succeeded');
    expect(await run.stop()).toBe(0);

    const logs = run.out();
    const lines = logs.trim().split('\n');
    // The logs are there to be searched: one JSON object per line, requests included.
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; route?: string });
    expect(parsed.filter((l) => l.msg === 'request').map((l) => l.route)).toContain('/v1/accounts/:account/webhooks');
    expect(parsed.some((l) => l.msg === 'herald started')).toBe(true);
    const everything = logs + run.err();
    for (const [what, secret] of Object.entries({ adminToken, apiKey, apiKeySecretPart: apiKey.slice(10), webhookSecret, headerValue, secretKey })) {
      expect({ what, leaked: everything.includes(secret) }).toEqual({ what, leaked: false });
    }
  });

  it('the start-up summary hides passwords in the proxy and database URLs', async () => {
    const run = herald({ ...sqlite(tempDir()), HERALD_LOG_LEVEL: 'info', HERALD_ROLE: 'api', HERALD_EGRESS_PROXY: 'http://proxyuser:proxy-password-xyz@127.0.0.1:3128' });
    await run.started();
    expect(await run.stop()).toBe(0);
    const started = run.out().split('\n').find((l) => l.includes('herald started'))!;
    expect(JSON.parse(started).config.HERALD_EGRESS_PROXY).toBe('http://proxyuser:[redacted]@127.0.0.1:3128');
    expect(run.out() + run.err()).not.toContain('proxy-password-xyz');
  });
});
