#!/usr/bin/env node
import { Command, Option } from 'commander';
import { ConfigError, describeConfig, loadConfig, unknownSettings, type Config } from './config/load.js';
import { flagOf } from './config/doc.js';
import { SETTINGS } from './config/settings.js';
import { VERSION } from './core/version.js';
import { within } from './core/within.js';
import { buildHerald, createLogger } from './app.js';
import { recordSecretKey, resolveSecrets, verifySecretKey } from './bootstrap.js';
import { migrate, SchemaTooNewError } from './store/migrate.js';
import { openStore } from './store/open.js';
import { startClusterJobs } from './cluster-jobs.js';
import { loadPlugins } from './plugins.js';

/** Every setting has a matching flag: `HERALD_DELIVERY_TIMEOUT_MS` ↔ `--delivery-timeout-ms`. */
function withSettingFlags(cmd: Command): Command {
  for (const s of SETTINGS) {
    const o = new Option(`${flagOf(s.env)} ${s.type === 'bool' ? '[value]' : '<value>'}`, `${s.description} (env ${s.env})`);
    cmd.addOption(s.secret ? o.hideHelp() : o);
  }
  return cmd;
}

/** Flags override the environment, through the same validation. */
function configFrom(opts: Record<string, unknown>): Config {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const s of SETTINGS) {
    const key = flagOf(s.env).slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const v = opts[key];
    if (v !== undefined) env[s.env] = v === true ? 'true' : String(v);
  }
  return loadConfig(env);
}

/** listen()'s refusals (only its: other start-up steps fail in their own words), with the setting at fault. */
function listenFailure(e: unknown): { setting: string; message: string } | null {
  switch ((e as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return { setting: 'HERALD_PORT', message: 'the port is already in use' };
    case 'EACCES':
      return { setting: 'HERALD_PORT', message: 'this user may not listen on that port (below 1024 needs privileges; use a higher one behind the proxy)' };
    case 'EADDRNOTAVAIL':
      return { setting: 'HERALD_HOST', message: 'no network interface of this machine has that address' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { setting: 'HERALD_HOST', message: 'the host name does not resolve to an address of this machine' };
    default:
      return null;
  }
}

function fail(e: unknown): never {
  if (e instanceof ConfigError) process.stderr.write(`herald: configuration error: ${e.message}\n`);
  else if (e instanceof SchemaTooNewError) process.stderr.write(`herald: ${e.message}\n`);
  else process.stderr.write(`herald: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(e instanceof ConfigError ? 2 : 1);
}

/**
 * How much longer than twice the delivery timeout a shutdown may take before the process just
 * exits: past the requests being answered (timeout + 1 s), the grace for a stuck claim and
 * in-flight attempts (timeout + 1 s), 5 s of outcome writes, 2 s each to give leases back
 * (twice) and to close the database connections, with a margin.
 */
const SHUTDOWN_BACKSTOP_EXTRA_MS = 15_000;
/** The most the cluster jobs and closing the database may take each during shutdown. */
const SHUTDOWN_STEP_MS = 2_000;

async function serve(opts: Record<string, unknown>): Promise<void> {
  const config = configFrom(opts);
  const log = createLogger(config.logLevel);
  // A misspelt variable (HERALD_MAX_ATTEMPT) would otherwise be ignored without a word.
  for (const name of unknownSettings()) log.warn({ variable: name }, 'unknown HERALD_* variable ignored; check its spelling (`herald config` lists every setting)');
  if (config.dev) log.warn('HERALD_DEV is on: http:// URLs and loopback/private targets are allowed. Never use this in production.');
  // Allowed (processes on one machine may share the file), but rarely what was meant.
  if (config.role !== 'all' && config.db.kind === 'sqlite') {
    log.warn(
      { role: config.role },
      config.role === 'api'
        ? 'HERALD_ROLE=api on SQLite: this process delivers nothing; events wait for a `worker` process on the same file (which finds them at its poll, not at once). One process with HERALD_ROLE=all is the usual SQLite set-up; split roles need PostgreSQL to scale'
        : 'HERALD_ROLE=worker on SQLite: only processes on this machine sharing the same file publish to it. One process with HERALD_ROLE=all is the usual SQLite set-up; split roles need PostgreSQL to scale',
    );
  }
  // A signal while starting (waiting for the migration lock, say): nothing is in flight yet,
  // and an open migration transaction rolls back when the connection drops, so just exit.
  const early = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'stopped before start-up finished');
    process.exit(0);
  };
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  // Every setting is checked before the database is touched: a process that would refuse to
  // start must not migrate a database other processes share first.
  const secrets = resolveSecrets(config);
  const store = await openDatabase(config);
  // The key before migrating: a process with another key must not migrate a shared database.
  await verifySecretKey(store, secrets.secretKey);
  const { applied, version } = await migrate(store.q);
  if (applied.length) log.info({ applied, version }, 'database migrated');
  await recordSecretKey(store, secrets.secretKey);
  const herald = await buildHerald({
    config, store, logger: log, adminTokenHash: secrets.adminTokenHash, secretKey: secrets.secretKey,
    plugins: config.role === 'worker' ? [] : await loadPlugins(),
  });
  await herald.app.listen({ host: config.host, port: config.port }).catch((e: unknown) => {
    const named = listenFailure(e);
    throw named ? new ConfigError(named.setting, `${named.message} (${(e as Error).message})`) : e;
  });
  const addr = herald.app.server.address();
  const port = addr && typeof addr === 'object' ? addr.port : config.port;
  const url = config.publicUrl.replace(/:0$/, `:${port}`);
  herald.startWorker();
  const jobs = startClusterJobs(store, config, log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second signal means "now": leases of unfinished attempts run out and the
      // deliveries are sent again elsewhere, so nothing is lost, only repeated.
      log.warn({ signal }, 'second signal: exiting without waiting for in-flight deliveries');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, role: config.role }, 'shutting down: finishing in-flight deliveries');
    // Every step below is bounded (requests being answered, then a stuck claim and in-flight
    // attempts, by a grace of timeout + 1 s each; outcome writes by 5 s; giving leases back, the
    // jobs and closing the connections by 2 s each); this is the backstop should something hang
    // anyway.
    const backstopMs = 2 * config.deliveryTimeoutMs + SHUTDOWN_BACKSTOP_EXTRA_MS;
    setTimeout(() => {
      log.error({ after_ms: backstopMs }, 'shutdown did not finish in time; exiting without it (unfinished deliveries are sent again when their leases run out)');
      process.exit(1);
    }, backstopMs).unref();
    // A job's statement or a connection stuck on an unresponsive database must not hold the
    // exit: what they leave (a job run, a lease) is picked up again by the cluster.
    const bounded = async (p: Promise<unknown>, what: string): Promise<void> => {
      if (!(await within(p, SHUTDOWN_STEP_MS))) log.warn({ what }, 'did not finish in time during shutdown; going on');
    };
    try {
      await Promise.all([bounded(jobs.stop(), 'cluster jobs'), herald.close()]);
      await bounded(store.close(), 'database connections');
    } catch (e) {
      log.error({ err: e }, 'shutdown failed');
      process.exit(1);
    }
    log.info('stopped');
    process.exit(0);
  };
  // Armed before anything announces the start, since a supervisor may signal the moment it reads
  // the banner; and added before `early` goes, since with no listener left for a moment Node
  // restores the default action and a signal then kills the process outright.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.off('SIGTERM', early);
  process.off('SIGINT', early);

  log.info({ url, role: config.role, backend: store.dialect, version: VERSION, port, config: describeConfig(config) }, 'herald started');

  const lines = [`Herald ${VERSION} is running (${config.role}, ${store.dialect}) at ${url}`];
  if (config.role !== 'worker') lines.push(`  Dashboard:  ${url}/`, `  API docs:   ${url}/docs`);
  if (secrets.newAdminToken) {
    lines.push(
      `  Admin token (shown once, only its hash is stored): ${secrets.newAdminToken}`,
      `  Sign in to the dashboard with it, or use it as: Authorization: Bearer <token>`,
    );
  } else if (config.role !== 'worker') {
    lines.push('  Sign in with your admin token (lost it? `npm run herald -- admin-token --rotate`)');
  }
  process.stderr.write(lines.join('\n') + '\n');
}

/** The store, or an error naming HERALD_DATABASE_URL. */
const openDatabase = (config: Config) =>
  openStore(config).catch((e: Error) => {
    throw new ConfigError('HERALD_DATABASE_URL', `cannot open the database: ${e.message}`);
  });

const program = new Command('herald').version(VERSION).description('Herald webhook delivery');

withSettingFlags(program.command('serve').description('run the API, the delivery workers and the dashboard (see --role)')).action((o) => serve(o).catch(fail));

withSettingFlags(program.command('migrate').description('apply database migrations and exit')).action(async (o: Record<string, unknown>) => {
  try {
    const config = configFrom(o);
    const store = await openDatabase(config);
    const r = await migrate(store.q);
    process.stdout.write(`schema at version ${r.version}${r.applied.length ? ` (applied ${r.applied.join(', ')})` : ' (nothing to do)'}\n`);
    await store.close();
  } catch (e) {
    fail(e);
  }
});

withSettingFlags(program.command('admin-token').description('generate a new admin token (SQLite data dir) and print it once'))
  .option('--rotate', 'replace the stored admin token')
  .action((o: Record<string, unknown>) => {
    try {
      const config = configFrom(o);
      // The setting wins over the data dir: a token written there would never be used.
      if (o.rotate && config.adminToken) throw new ConfigError('HERALD_ADMIN_TOKEN', 'it is set, and it is the admin token Herald uses: to rotate, set a new value there and restart Herald');
      const s = resolveSecrets({ ...config, adminToken: '' }, { rotateAdminToken: Boolean(o.rotate) });
      process.stdout.write(s.newAdminToken ? `${s.newAdminToken}\n` : 'an admin token exists; pass --rotate to replace it\n');
    } catch (e) {
      fail(e);
    }
  });

program.command('config').description('list every setting with its default').action(() => {
  for (const s of SETTINGS) process.stdout.write(`${s.env.padEnd(28)} ${(s.default || '(empty)').padEnd(24)} ${s.description}\n`);
});

await program.parseAsync();
