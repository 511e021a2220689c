import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, SchemaTooNewError, type Migration } from '../src/store/migrate.js';
import { openStore } from '../src/store/open.js';
import { freshPostgres, freshSqlite, postgresAdminUrl, type TestDatabase } from './helpers/db.js';
import { recordSecretKey, verifySecretKey } from '../src/bootstrap.js';
import { createAccount, SECRET_KEY, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { startReceiver } from './helpers/receiver.js';

/** Migrations on both backends (STYLE habit 8): empty, at latest, at a previous version, too new. */
const admin = await postgresAdminUrl();
const backends: Array<[string, () => Promise<TestDatabase>]> = [['sqlite', freshSqlite]];
if (admin) backends.push(['postgres', () => freshPostgres(admin)]);
else console.warn('\n!!! Migration tests on PostgreSQL SKIPPED: no PostgreSQL (HERALD_TEST_DATABASE_URL unset and nothing at the local default, or `none`)\n');

/** A store on the PostgreSQL server's own database, for roles, which outlive any test database. */
const freshAdmin = () => openStore({ db: { kind: 'postgres', url: admin! }, sqliteSynchronous: 'normal', dbPoolSize: 1 });

const TABLES = ['accounts', 'api_keys', 'event_types', 'webhooks', 'events', 'deliveries', 'attempts', 'portal_links', 'sessions', 'cluster_jobs', 'audit_events', 'herald_meta'];

describe('migration files', () => {
  // Lockstep: the same numbered files, tables, columns and indexes in both dialects.
  const shape = (m: Migration) => ({
    tables: [...m.sql.matchAll(/CREATE TABLE (\w+) \(([\s\S]*?)\n\);/g)].map(([, name, body]) => [
      name,
      body!.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((w) => w && !w.startsWith('--')),
    ]),
    indexes: [...m.sql.matchAll(/CREATE (?:UNIQUE )?INDEX (\w+) ON (\w+)\(([^)]*)\)/g)].map((x) => x.slice(1)),
  });

  it('are numbered alike and define the same schema in both dialects', () => {
    const sqlite = loadMigrations('sqlite');
    const postgres = loadMigrations('postgres');
    expect(sqlite.length).toBeGreaterThan(0);
    expect(postgres.map((m) => [m.version, m.name])).toEqual(sqlite.map((m) => [m.version, m.name]));
    expect(sqlite.map((m) => m.version)).toEqual(sqlite.map((_, i) => i + 1));
    for (let i = 0; i < sqlite.length; i++) expect(shape(postgres[i]!)).toEqual(shape(sqlite[i]!));
  });
});

describe.each(backends)('migrate on %s', (kind, make) => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });
  const open = async () => {
    db = await make();
    return db.open();
  };
  const latest = loadMigrations(kind as 'sqlite' | 'postgres').at(-1)!.version;
  const versions = async (s: Awaited<ReturnType<typeof open>>) =>
    (await s.q.all<{ version: unknown }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));

  it('migrates an empty database to the latest version', async () => {
    const s = await open();
    const r = await migrate(s.q);
    expect(r).toEqual({ applied: loadMigrations(s.dialect).map((m) => m.version), version: latest });
    for (const t of TABLES) await expect(s.q.all(`SELECT COUNT(*) AS c FROM ${t}`)).resolves.toHaveLength(1);
    expect((await s.listEventTypes()).length).toBe(4);
    expect(await versions(s)).toEqual(r.applied);
  });

  it('a database at the latest version: nothing to apply, nothing changes', async () => {
    const s = await open();
    await migrate(s.q);
    expect(await migrate(s.q)).toEqual({ applied: [], version: latest });
    expect((await s.listEventTypes()).length).toBe(4); // seeds not repeated
  });

  it('a database at the previous version gets only the newer migration', async () => {
    const s = await open();
    const current = loadMigrations(s.dialect);
    await migrate(s.q);
    const next: Migration = { version: latest + 1, name: 'probe', sql: 'CREATE TABLE zz_probe (x INTEGER NOT NULL);\nINSERT INTO zz_probe (x) VALUES (7);' };
    expect(await migrate(s.q, [...current, next])).toEqual({ applied: [latest + 1], version: latest + 1 });
    expect(await s.q.all('SELECT x FROM zz_probe')).toEqual([{ x: 7 }]);
  });

  it('a failing migration leaves no trace and applies nothing', async () => {
    const s = await open();
    await migrate(s.q);
    const bad: Migration = { version: latest + 1, name: 'bad', sql: 'CREATE TABLE zz_half (x INTEGER);\nSELECT * FROM no_such_table;' };
    await expect(migrate(s.q, [...loadMigrations(s.dialect), bad])).rejects.toThrow(/no_such_table/);
    expect(await versions(s)).toEqual(loadMigrations(s.dialect).map((m) => m.version));
    await expect(s.q.all('SELECT * FROM zz_half')).rejects.toThrow();
  });

  it('a database newer than the code is refused with SchemaTooNewError', async () => {
    const s = await open();
    await migrate(s.q);
    await s.q.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [latest + 98, 'from_the_future', 0]);
    const err = await migrate(s.q).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toMatch(new RegExp(`version ${latest + 98} .*versions up to ${latest}.*upgrade Herald`));
  });

  it.runIf(kind === 'postgres')('a process whose role may only read and write the tables starts and delivers once `herald migrate` ran as the owner', async () => {
    db = await make();
    const owner = await db.open({ poolSize: 1 });
    // The previous release's schema, with the grants OPERATIONS.md gives: on the tables there
    // are, and by default on those the owner's later migrations make.
    await migrate(owner.q, loadMigrations('postgres').slice(0, -1));
    const role = `herald_rw_${Math.random().toString(36).slice(2, 10)}`;
    const name = new URL(db.url).pathname.slice(1);
    // No CREATE on the schema (PostgreSQL 15 grants none to PUBLIC): DDL of any kind fails.
    await owner.q.exec(
      `CREATE ROLE ${role} LOGIN; GRANT CONNECT ON DATABASE "${name}" TO ${role}; GRANT USAGE ON SCHEMA public TO ${role}; ` +
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}; ` +
        `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}; REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
    );
    // The upgrade: `herald migrate` as the owner, then the serving processes as the role.
    await migrate(owner.q);
    const url = new URL(db.url);
    url.username = role;
    const rx = await startReceiver();
    let h: TestHerald | undefined;
    try {
      await expect(owner.q.all(`SELECT has_schema_privilege('${role}', 'public', 'CREATE') AS c`)).resolves.toEqual([{ c: false }]);
      h = await startHerald({ HERALD_DATABASE_URL: url.toString(), HERALD_DEV: 'true' });
      // What `herald serve` does at start with the key: the table 0008 made is the role's too.
      await verifySecretKey(h.herald.ctx.store, Buffer.from(SECRET_KEY, 'hex'));
      await recordSecretKey(h.herald.ctx.store, Buffer.from(SECRET_KEY, 'hex'));
      const acc = await createAccount(h);
      await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
      await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { n: 1 } });
      await waitFor(() => rx.received.length === 1);
    } finally {
      await h?.close();
      await rx.close();
      await db.drop();
      db = undefined;
      await owner.q.close().catch(() => {});
      const adminStore = await freshAdmin();
      await adminStore.q.exec(`DROP ROLE IF EXISTS ${role}`); // its default privileges went with the database
      await adminStore.close();
    }
  });

  /**
   * A long transaction of a running process, on a connection of its own: it read `webhooks`, so
   * it holds a lock an ALTER TABLE must wait for, until `release()`; `long` is its end.
   */
  const holdWebhooksTable = async (): Promise<{ release: () => void; long: Promise<void> }> => {
    const holder = await db!.open({ poolSize: 1 });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const long = holder.q.tx(async (t) => {
      await t.all('SELECT COUNT(*) AS c FROM webhooks');
      await released;
    });
    await new Promise((r) => setTimeout(r, 100));
    return { release, long };
  };

  it.runIf(kind === 'postgres')('a migration waiting for a table lock gives way to the running processes instead of queueing them all behind it', async () => {
    const s = await open();
    await migrate(s.q);
    const reader = await db!.open({ poolSize: 1 });
    const next: Migration = { version: latest + 1, name: 'probe', sql: 'ALTER TABLE webhooks ADD COLUMN zz_probe INTEGER' };
    const { release, long } = await holdWebhooksTable();
    const migrating = migrate(s.q, [...loadMigrations('postgres'), next], { lockTimeoutMs: 200, tries: 50 });
    await new Promise((r) => setTimeout(r, 300)); // the ALTER is waiting (or between tries)
    // Another process's read of the table is not queued behind the waiting ALTER for long.
    const read = reader.q.all('SELECT COUNT(*) AS c FROM webhooks').then(() => 'read' as const);
    expect(await Promise.race([read, new Promise((r) => setTimeout(() => r('still waiting'), 2000))])).toBe('read');
    release();
    await long;
    expect(await migrating).toEqual({ applied: [latest + 1], version: latest + 1 });
  });

  it.runIf(kind === 'postgres')('gives up on a lock that never comes, saying so, with the earlier migrations kept', async () => {
    const s = await open();
    await migrate(s.q);
    const first: Migration = { version: latest + 1, name: 'free', sql: 'CREATE TABLE zz_free (x INTEGER)' };
    const blocked: Migration = { version: latest + 2, name: 'blocked', sql: 'ALTER TABLE webhooks ADD COLUMN zz_probe INTEGER' };
    const { release, long } = await holdWebhooksTable();
    const err = await migrate(s.q, [...loadMigrations('postgres'), first, blocked], { lockTimeoutMs: 50, tries: 3 }).catch((e: Error) => e);
    release();
    await long;
    expect((err as Error).message).toMatch(/could not take the table locks it needs .*3 times/);
    expect(await versions(s)).toEqual([...loadMigrations('postgres').map((m) => m.version), latest + 1]);
  });

  it.runIf(kind === 'postgres')('three processes migrating one empty database at once take turns: each migration applied once', async () => {
    db = await make();
    const stores = await Promise.all([1, 2, 3].map(() => db!.open({ poolSize: 1 })));
    const results = await Promise.all(stores.map((s) => migrate(s.q)));
    // They take turns, a migration each time: every migration applied once, by one of them.
    expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(loadMigrations('postgres').map((m) => m.version));
    expect(results.every((r) => r.version === latest)).toBe(true);
    expect(await versions(stores[0]!)).toEqual(loadMigrations('postgres').map((m) => m.version));
  });
});
