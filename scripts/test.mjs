#!/usr/bin/env node
// `npm test`: typecheck every package, then run the whole suite once.
import { spawnSync } from 'node:child_process';

const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run('npm', ['run', 'typecheck', '--silent']);
run('npx', ['vitest', 'run', ...process.argv.slice(2)]);
