import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySecretKey } from '../src/bootstrap.js';
import { ConfigError } from '../src/config/load.js';
import { query } from './helpers/api-kit.js';
import { createAccount, SECRET_KEY, startHerald, type TestHerald } from './helpers/herald.js';

/**
 * Start-up refuses a secret key other than the one the database's webhook secrets were sealed
 * with (bootstrap.ts verifySecretKey), on a real database of the backend under test: a
 * database that has recorded its key, one from before the check that holds sealed values, and
 * two processes with different keys starting on an empty one at once.
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
    await verifySecretKey(store(), RIGHT);
    expect(await query(h, 'SELECT name FROM herald_meta')).toEqual([{ name: 'secret_key_check' }]);
    const e = await refusal(WRONG);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).setting).toBe('HERALD_SECRET_KEY');
    await verifySecretKey(store(), RIGHT); // still fine
  });

  it('on a database from before the check, tries the key on a stored secret before recording it', async () => {
    const acc = await createAccount(h);
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: 'http://127.0.0.1:9/x', events: ['*'], secret: 'whsec_0123456789abcdef' });
    expect(w.status).toBe(201);
    await query(h, 'DELETE FROM herald_meta');
    expect(await refusal(WRONG)).toBeInstanceOf(ConfigError);
    expect(await query(h, 'SELECT name FROM herald_meta')).toEqual([]); // the wrong key was not recorded
    await verifySecretKey(store(), RIGHT);
    // Once recorded, the check holds without any webhook left to try.
    await query(h, 'DELETE FROM webhooks');
    expect(await refusal(WRONG)).toBeInstanceOf(ConfigError);
  });

  it('lets one key win when two processes with different keys start on an empty database at once', async () => {
    await query(h, 'DELETE FROM herald_meta');
    const [a, b] = await Promise.all([refusal(RIGHT), refusal(WRONG)]);
    expect([a, b].filter((e) => e instanceof ConfigError)).toHaveLength(1);
    expect([a, b].filter((e) => e === null)).toHaveLength(1);
  });
});
