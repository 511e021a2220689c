import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, SECRET_KEY } from './herald.js';

const SERVER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(SERVER_DIR, 'dist/cli.js');

export interface SpawnedHerald {
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Every JSON log line written to stdout so far. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
}

function newestMtime(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return max;
}

/**
 * The process tests run `dist/cli.js`, the real entry point. A dist older than src would test
 * yesterday's code, so it is rebuilt first when stale, under a lock directory so two test
 * files starting together do not run tsc over each other.
 */
export function ensureBuilt(): void {
  const fresh = () => existsSync(CLI) && statSync(CLI).mtimeMs >= newestMtime(join(SERVER_DIR, 'src'));
  if (fresh()) return;
  const lock = join(SERVER_DIR, '.build-lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`spawn-herald: ${lock} held for 2 min; remove it if no build is running`);
      execFileSync('sleep', ['0.2']);
    }
  }
  try {
    if (!fresh()) execFileSync('npm', ['run', 'build', '--silent'], { cwd: SERVER_DIR, stdio: 'inherit' });
  } finally {
    rmdirSync(lock);
  }
}

/**
 * Start `node packages/server/dist/cli.js serve` as a child process on port 0 and wait for its
 * `herald started` log line, which carries the port it listens on. `env` is added to a
 * minimal environment (the test runner's own HERALD_* variables are not inherited).
 */
export async function spawnHerald(env: Record<string, string>, timeoutMs = 20_000): Promise<SpawnedHerald> {
  ensureBuilt();
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  Object.assign(childEnv, {
    HERALD_PORT: '0',
    HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
    HERALD_SECRET_KEY: SECRET_KEY,
    HERALD_LOG_LEVEL: 'info',
    HERALD_SQLITE_SYNCHRONOUS: 'normal',
    ...env,
  });
  const child = spawn(process.execPath, [CLI, 'serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buf = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const started = new Promise<Record<string, unknown>>((resolveStarted, reject) => {
    const timer = setTimeout(() => reject(new Error(`spawn-herald: no "herald started" within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(rec);
        if (rec.msg === 'herald started') {
          clearTimeout(timer);
          resolveStarted(rec);
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`spawn-herald: exited (${code ?? signal}) before starting\n${stderr}`));
    });
  });
  const rec = await started;
  const port = Number(rec.port);
  const url = String(rec.url);
  const api: SpawnedHerald['api'] = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    url, port, pid: child.pid!, child, logs, exited, api,
    stderr: () => stderr,
    kill: (signal) => void child.kill(signal),
  };
}
