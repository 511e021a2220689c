import { defineConfig } from 'vitest/config';

// One runner for every package. Tests talk to real SQLite files, real PostgreSQL and real
// HTTP servers on 127.0.0.1, so they run in forked processes (native modules, sockets).
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // expect.poll waits for a state (a re-rendered page, a row written); 1 s, vitest's default,
    // is one stall of a loaded 2-core machine. A poll that never gets there still fails.
    expect: { poll: { timeout: 5_000 } },
    reporters: ['default'],
  },
});
