import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSecretKey, verifySecretKey } from '../src/bootstrap.js';
import { ConfigError } from '../src/config/load.js';
import { query } from './helpers/api-kit.js';
import { freshSqlite } from './helpers/db.js';
import { createAccount, SECRET_KEY, startHerald, type TestHerald } from './helpers/herald.js';

/**
 * Start-up refuses a secret key other than the one the database's webhook secrets were sealed
 * with (bootstrap.ts verifySecretKey, recordSecretKey), on a real database of the backend under
 * test: a database that has recorded its key, one from before the check that holds sealed
 * values (one of them damaged), and one whose tables do not exist yet.
 */
const RIGHT = Buffer.from(SECRET_KEY, 'hex');
const WRONG = Buffer.alloc(32, 0x5a);

describe('verifySecretKey', () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startHerald({ HERALD_DEV: 'true' }, { worker: false });
  });
  afterAll(async () => h.close());

  const store = () => h.herald.ctx.store;
  const refusal = (key: Buffer) => verifySecretKey(store(), key).then(() => null, (e: unknown) => e);

  it('records the key on first start, then refuses any other, naming HERALD_SECRET_KEY', async () => {
    await query(h, 'DELETE FROM herald_meta');
    await query(h, 'DELETE FROM webhooks');
    await verifySecretKey(store(), WRONG); // nothing recorded, nothing sealed: nothing to go by
    await recordSecretKey(store(), RIGHT);
    expect(await query(h, 'SELECT name FROM herald_meta')).toEqual([{ name: 'secret_key_check' }]);
    const e = await refusal(WRONG);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).setting).toBe('HERALD_SECRET_KEY');
    await verifySecretKey(store(), RIGHT); // still fine
    await recordSecretKey(store(), RIGHT); // and recording again changes nothing
    // Another process that recorded first wins: a second key is refused when it records.
    expect(await recordSecretKey(store(), WRONG).then(() => null, (x: unknown) => x)).toBeInstanceOf(ConfigError);
  });

  it('on a database from before the check, tries the key on stored secrets, and one damaged value does not lock it out', async () => {
    const acc = await createAccount(h);
    const make = async (n: number) => {
      const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `http://127.0.0.1:9/x${n}`, events: ['*'], secret: `whsec_0123456789abcdef-${n}` });
      expect(w.status).toBe(201);
      return w.body.id as string;
    };
    const damaged = await make(1);
    await make(2);
    await query(h, 'DELETE FROM herald_meta');
    expect(await refusal(WRONG)).toBeInstanceOf(ConfigError);
    expect(await query(h, 'SELECT name FROM herald_meta')).toEqual([]); // a check records nothing
    // A value sealed with another key (before this check existed) or damaged: the right key still opens the rest.
    await query(h, `UPDATE webhooks SET secret_enc = 'v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAA' WHERE id = ?`, damaged);
    await verifySecretKey(store(), RIGHT);
    expect(await refusal(WRONG)).toBeInstanceOf(ConfigError);
  });

  it('checks before the tables exist: an empty database passes, and nothing is written', async () => {
    const empty = await freshSqlite();
    try {
      const s = await empty.open();
      await verifySecretKey(s, WRONG);
      expect(await s.q.all("SELECT name FROM sqlite_master WHERE type = 'table'")).toEqual([]);
    } finally {
      await empty.drop();
    }
  });
});
