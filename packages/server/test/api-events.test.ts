import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Publisher } from '../src/api/publisher.js';
import { SqliteExecutor } from '../src/store/sqlite/sqlite-executor.js';
import { createAccount, startHerald, TEST_BACKEND, waitFor, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { count, expectError, snapshotCounts } from './helpers/api-kit.js';

/**
 * Publishing (SPEC §3): fan-out, idempotency, limits and bad input. Deliveries go to a local
 * receiver (HERALD_DEV); `h` runs no worker, so deliveries stay pending where a test counts
 * them, and `small` (HERALD_MAX_PAYLOAD_BYTES=2048) runs one to show what a receiver gets.
 */
let h: TestHerald;
let small: TestHerald;
let rx: Receiver;

beforeAll(async () => {
  [h, small, rx] = await Promise.all([
    startHerald({ HERALD_DEV: 'true' }, { worker: false }),
    startHerald({ HERALD_DEV: 'true', HERALD_MAX_PAYLOAD_BYTES: '2048' }),
    startReceiver(),
  ]);
});
afterAll(async () => {
  await Promise.all([h.close(), small.close(), rx.close()]);
});

const publish = (t: TestHerald, acc: string, body: unknown, headers?: Record<string, string>) => t.api('POST', `/v1/accounts/${acc}/events`, body, { headers });
const publishRaw = (t: TestHerald, acc: string, raw: string | Buffer, headers?: Record<string, string>) => t.api('POST', `/v1/accounts/${acc}/events`, undefined, { raw, headers });

async function webhook(t: TestHerald, acc: string, events: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await t.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/${acc}`, events, ...extra });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id;
}

describe('fan-out', () => {
  it('answers 202 with the event and one delivery per subscribed, enabled webhook', async () => {
    const acc = await createAccount(h);
    const all = await webhook(h, acc, ['*']);
    const exact = await webhook(h, acc, ['content.generated', 'analysis.completed']);
    await webhook(h, acc, ['publishing.failed']); // other type
    await webhook(h, acc, ['content.generated'], { enabled: false }); // disabled at creation
    const paused = await webhook(h, acc, ['*']);
    await h.api('PATCH', `/v1/accounts/${acc}/webhooks/${paused}`, { enabled: false }); // disabled later

    const r = await publish(h, acc, { type: 'content.generated', data: { id: 1 } });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^evt_/), type: 'content.generated', created_at: expect.any(String),
      deliveries: expect.any(Array),
    });
    expect(new Date(r.body.created_at).toISOString()).toBe(r.body.created_at);
    expect(r.body.deliveries.map((d: { webhook_id: string }) => d.webhook_id).sort()).toEqual([all, exact].sort());
    for (const d of r.body.deliveries) expect(Object.keys(d).sort()).toEqual(['id', 'webhook_id']);

    // Durable: committed by the time the 202 arrives, as another connection sees it.
    expect(await count(h, 'events', 'id = ?', r.body.id)).toBe(1);
    expect(await count(h, 'deliveries', 'event_id = ?', r.body.id)).toBe(2);
  });

  it('publishes with no deliveries when nothing subscribes', async () => {
    const acc = await createAccount(h);
    await webhook(h, acc, ['analysis.completed']);
    const r = await publish(h, acc, { type: 'publishing.failed', data: null });
    expect(r.status).toBe(202);
    expect(r.body.deliveries).toEqual([]);
  });

  it('keeps a free account’s events but delivers them nowhere', async () => {
    const acc = await createAccount(h, 'pro');
    await webhook(h, acc, ['*']);
    await h.api('PATCH', `/v1/accounts/${acc}`, { plan: 'free' });
    const r = await publish(h, acc, { type: 'content.generated', data: {} });
    expect(r.status).toBe(202);
    expect(r.body.deliveries).toEqual([]);
    expect(await count(h, 'deliveries', 'account_id = ?', acc)).toBe(0);
    expect(await count(h, 'events', 'id = ? AND account_id = ?', r.body.id, acc)).toBe(1);
  });

  it('answers 404 for a missing account, whatever the body', async () => {
    const before = await snapshotCounts(h);
    expectError(await publish(h, 'acc_00000000000000000000000000', { type: 'content.generated', data: {} }), 404, 'account_not_found');
    expectError(await publish(h, 'acc_00000000000000000000000000', { type: 'no.such', data: {} }), 404, 'account_not_found');
    expect(await snapshotCounts(h)).toEqual(before);
  });
});

// Publishing reads accounts through a one-second cache (api/account-cache.ts). Changes made
// through this process apply at once; the store written directly stands for another process.
describe('accounts as publishing sees them', () => {
  it('a plan changed through the API applies to the very next publish', async () => {
    const acc = await createAccount(h, 'pro');
    await webhook(h, acc, ['*']);
    expect((await publish(h, acc, { type: 'content.generated', data: {} })).body.deliveries).toHaveLength(1);
    await h.api('PATCH', `/v1/accounts/${acc}`, { plan: 'free' });
    expect((await publish(h, acc, { type: 'content.generated', data: {} })).body.deliveries).toEqual([]);
    await h.api('PATCH', `/v1/accounts/${acc}`, { plan: 'enterprise' });
    expect((await publish(h, acc, { type: 'content.generated', data: {} })).body.deliveries).toHaveLength(1);
  });

  it('a plan changed by another process applies within a second', async () => {
    const acc = await createAccount(h, 'pro');
    await webhook(h, acc, ['*']);
    expect((await publish(h, acc, { type: 'content.generated', data: {} })).body.deliveries).toHaveLength(1);
    await h.herald.ctx.store.updateAccount(acc, { plan: 'free' });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await publish(h, acc, { type: 'content.generated', data: {} })).body.deliveries).toEqual([]);
  });

  it('an account deleted through the API, or by another process, is 404 at once and stores nothing', async () => {
    for (const how of ['api', 'other process'] as const) {
      const acc = await createAccount(h, 'pro');
      await webhook(h, acc, ['*']);
      expect((await publish(h, acc, { type: 'content.generated', data: {} })).status).toBe(202); // cached now
      if (how === 'api') expect((await h.api('DELETE', `/v1/accounts/${acc}`)).status).toBe(204);
      else expect(await h.herald.ctx.store.deleteAccount(acc)).toBe(true);
      const before = await snapshotCounts(h);
      expectError(await publish(h, acc, { type: 'content.generated', data: {} }), 404, 'account_not_found');
      expect(await snapshotCounts(h)).toEqual(before);
    }
  });
});

describe('Idempotency-Key', () => {
  it('a repeated key answers with the first event and stores nothing new', async () => {
    const acc = await createAccount(h);
    await webhook(h, acc, ['*']);
    await webhook(h, acc, ['content.generated']);
    const headers = { 'Idempotency-Key': 'order-42' };
    const first = await publish(h, acc, { type: 'content.generated', data: { n: 1 } }, headers);
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const counts = await snapshotCounts(h);
    const again = await publish(h, acc, { type: 'content.generated', data: { n: 1 } }, headers);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // Even with another body: the key decides (the first event is the answer).
    const other = await publish(h, acc, { type: 'analysis.completed', data: { n: 2 } }, headers);
    expect(other.body).toEqual(first.body);
    expect(await snapshotCounts(h)).toEqual(counts);

    const fresh = await publish(h, acc, { type: 'content.generated', data: { n: 1 } }, { 'Idempotency-Key': 'order-43' });
    expect(fresh.body.id).not.toBe(first.body.id);
    expect(await count(h, 'events')).toBe(counts.events + 1);
  });

  it('concurrent requests with one key create one event and one set of deliveries', async () => {
    const acc = await createAccount(h);
    await webhook(h, acc, ['*']);
    await webhook(h, acc, ['*']);
    const before = await snapshotCounts(h);
    const rs = await Promise.all(
      Array.from({ length: 12 }, () => publish(h, acc, { type: 'content.generated', data: { race: true } }, { 'Idempotency-Key': 'race-1' })),
    );
    for (const r of rs) {
      expect(r.status).toBe(202);
      expect(r.body).toEqual(rs[0]!.body);
    }
    expect(rs[0]!.body.deliveries).toHaveLength(2);
    expect(await count(h, 'events')).toBe(before.events + 1);
    expect(await count(h, 'deliveries')).toBe(before.deliveries + 2);
  });

  it('is scoped to the account', async () => {
    const a = await createAccount(h);
    const b = await createAccount(h);
    const ra = await publish(h, a, { type: 'content.generated', data: {} }, { 'Idempotency-Key': 'shared' });
    const rb = await publish(h, b, { type: 'content.generated', data: {} }, { 'Idempotency-Key': 'shared' });
    expect([ra.status, rb.status]).toEqual([202, 202]);
    expect(ra.body.id).not.toBe(rb.body.id);
    expect(await count(h, 'events', 'account_id = ?', b)).toBe(1);
  });

  it('refuses a key longer than 255 characters', async () => {
    const acc = await createAccount(h);
    const before = await snapshotCounts(h);
    expectError(await publish(h, acc, { type: 'content.generated', data: {} }, { 'Idempotency-Key': 'k'.repeat(256) }), 400, 'invalid_request');
    expect(await snapshotCounts(h)).toEqual(before);
    expect((await publish(h, acc, { type: 'content.generated', data: {} }, { 'Idempotency-Key': 'k'.repeat(255) })).status).toBe(202);
  });
});

describe('payload limits', () => {
  // Bytes the delivered envelope adds around `data` (SPEC §4 body, delivery ids are 30 chars).
  const envelope = (type: string) =>
    Buffer.byteLength(`{"event":"${type}","created_at":"2024-01-01T00:00:00.000Z","delivery_id":"dlv_${'X'.repeat(26)}","data":}`);
  const dataOfSize = (bytes: number) => JSON.stringify({ s: 'x'.repeat(bytes - 8) }); // {"s":"…"} is 8 bytes of syntax

  it('accepts a body that is exactly at HERALD_MAX_PAYLOAD_BYTES, and delivers exactly that many bytes', async () => {
    const acc = await createAccount(small);
    await small.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/limit`, events: ['*'] });
    const data = dataOfSize(2048 - envelope('content.generated'));
    const r = await publishRaw(small, acc, `{"type":"content.generated","data":${data}}`);
    expect(r.status).toBe(202);
    const got = await waitFor(() => rx.received.find((x) => x.url === '/limit'));
    expect(got.body.length).toBe(2048);
    expect(JSON.parse(got.body.toString()).data).toEqual(JSON.parse(data));
    // Until its outcome is written, so the next test's row counts do not see it arrive.
    const id = r.body.deliveries[0].id as string;
    await waitFor(async () => (await small.api('GET', `/v1/accounts/${acc}/deliveries/${id}`)).body.status === 'succeeded');
  });

  it('answers 413 one byte over, and for bodies far over, storing nothing', async () => {
    const acc = await createAccount(small);
    await small.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/over`, events: ['*'] });
    const before = await snapshotCounts(small);
    const over = dataOfSize(2049 - envelope('content.generated'));
    expectError(await publishRaw(small, acc, `{"type":"content.generated","data":${over}}`), 413, 'payload_too_large');
    expectError(await publishRaw(small, acc, `{"type":"content.generated","data":${dataOfSize(1024 * 1024)}}`), 413, 'payload_too_large');
    // Multi-byte characters count as bytes, not characters.
    const wide = JSON.stringify({ s: 'é'.repeat(1000) });
    expectError(await publishRaw(small, acc, `{"type":"content.generated","data":${wide}}`), 413, 'payload_too_large');
    expect(await snapshotCounts(small)).toEqual(before);
  });

  it('answers 422 payload_too_deep for data nested 129 levels and accepts 128', async () => {
    const acc = await createAccount(h);
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const nestObj = (n: number) => '{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
    const before = await snapshotCounts(h);
    expectError(await publishRaw(h, acc, `{"type":"content.generated","data":${nest(129)}}`), 422, 'payload_too_deep');
    expectError(await publishRaw(h, acc, `{"type":"content.generated","data":${nestObj(129)}}`), 422, 'payload_too_deep');
    expectError(await publishRaw(h, acc, `{"type":"content.generated","data":${nest(100_000)}}`), 422, 'payload_too_deep');
    expect(await snapshotCounts(h)).toEqual(before);
    expect((await publishRaw(h, acc, `{"type":"content.generated","data":${nest(128)}}`)).status).toBe(202);
    expect((await publishRaw(h, acc, `{"type":"content.generated","data":${nestObj(128)}}`)).status).toBe(202);
    // Strings that look like brackets are not nesting.
    expect((await publishRaw(h, acc, `{"type":"content.generated","data":${JSON.stringify('['.repeat(500))}}`)).status).toBe(202);
  });
});

describe('bad input', () => {
  let acc: string;
  beforeAll(async () => {
    acc = await createAccount(h);
    await webhook(h, acc, ['*']);
  });

  it('answers 400 invalid_json for malformed JSON and invalid UTF-8, storing nothing', async () => {
    const before = await snapshotCounts(h);
    const bodies: Array<string | Buffer> = [
      '{"type":"content.generated","data":',
      '{"type":"content.generated","data":{}} trailing',
      "{'type':'content.generated','data':{}}",
      '{"type":"content.generated","data":NaN}',
      '{"type":"content.generated","data":{},}',
      Buffer.concat([Buffer.from('{"type":"content.generated","data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
      Buffer.concat([Buffer.from('{"type":"content.generated","data":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), // a UTF-8-encoded lone surrogate
      Buffer.concat([Buffer.from('{"type":"content.generated","data":"'), Buffer.from([0xc3]), Buffer.from('"}')]), // truncated sequence
      '',
    ];
    for (const b of bodies) expectError(await publishRaw(h, acc, b), 400, 'invalid_json');
    expect(await snapshotCounts(h)).toEqual(before);
  });

  it('answers 422 unknown_event_type, and refuses to publish ping', async () => {
    const before = await snapshotCounts(h);
    expectError(await publish(h, acc, { type: 'no.such.type', data: {} }), 422, 'unknown_event_type');
    expectError(await publish(h, acc, { type: 'CONTENT.GENERATED', data: {} }), 422, 'unknown_event_type');
    expectError(await publish(h, acc, { type: 'ping', data: {} }), 422, 'validation_failed');
    expect(await snapshotCounts(h)).toEqual(before);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const before = await snapshotCounts(h);
    const body = '{"type":"content.generated","data":{}}';
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      expectError(await publishRaw(h, acc, body, { 'content-type': ct }), 415, 'unsupported_media_type');
    }
    const noType = await fetch(`${h.url}/v1/accounts/${acc}/events`, { method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789' }, body: new Blob([body]) });
    expect(noType.status).toBe(415);
    expect(await snapshotCounts(h)).toEqual(before);
  });

  it('answers 400 for JSON of the wrong shape', async () => {
    const before = await snapshotCounts(h);
    for (const raw of ['null', '[]', '"text"', '42', '{}', '{"type":"content.generated"}', '{"data":{}}', '{"type":{},"data":{}}', '{"type":"content.generated","data":{},"extra":1}', '{"__proto__":{"admin":true},"type":"content.generated","data":{}}']) {
      const r = await publishRaw(h, acc, raw);
      expect({ raw, status: r.status, code: r.body?.error?.code }).toEqual({ raw, status: 400, code: 'invalid_request' });
    }
    expect(await snapshotCounts(h)).toEqual(before);
  });

  it('never answers 500: odd but valid JSON is accepted and kept byte for byte', async () => {
    const odd = [
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}',
      '1e999999',
      '-0.0000000000000000000000000000001e-400',
      '123456789012345678901234567890123456789',
      '"\\ud800 lone \\udfff surrogates"',
      '"nul \\u0000 inside"',
      '{"dup":1,"dup":2}',
      '"\u2028\u2029 line separators"',
      '  {  "spaced" :  [ 1 , 2 ]  }  ',
      'null',
    ];
    for (const data of odd) {
      const r = await publishRaw(h, acc, `{"type":"content.generated","data":${data}}`);
      expect({ data, status: r.status }).toEqual({ data, status: 202 });
      const d = await h.api('GET', `/v1/accounts/${acc}/deliveries/${r.body.deliveries[0].id}`);
      expect(d.body.request.body).toContain(`"data":${data.trim()}}`);
    }
    // The server is still healthy, and nothing polluted its objects.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await h.api('GET', '/healthz', undefined, { token: null })).status).toBe(200);
  });

  it('a request body over the route limit is 413 before it is parsed', async () => {
    const before = await snapshotCounts(h);
    const big = `{"type":"content.generated","data":"${'x'.repeat(6 * 1024 * 1024)}"}`;
    expectError(await publishRaw(h, acc, big), 413, 'payload_too_large');
    expectError(await h.api('POST', '/v1/accounts', undefined, { raw: `{"name":"${'x'.repeat(2 * 1024 * 1024)}","plan":"pro"}` }), 413, 'payload_too_large');
    expect(await snapshotCounts(h)).toEqual(before);
  });
});

describe('JSON bodies are validated as sent, not coerced', () => {
  it('a number where a string is expected is invalid_request, and a string "false" is not a boolean', async () => {
    const h2 = await startHerald({ HERALD_DEV: 'true' });
    try {
      const a = await createAccount(h2);
      const r = await h2.api('POST', `/v1/accounts/${a}/events`, { type: 42, data: {} });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
      const w = await h2.api('POST', `/v1/accounts/${a}/webhooks`, { url: 'http://127.0.0.1:9/x', events: ['*'], enabled: 'false' });
      expect(w.status).toBe(400);
      // Query strings are text: their numbers are still read as numbers.
      expect((await h2.api('GET', `/v1/accounts/${a}/deliveries?limit=5`)).status).toBe(200);
    } finally {
      await h2.close();
    }
  });
});


describe.skipIf(TEST_BACKEND === 'postgres')('publishing while another process holds the SQLite write lock', () => {
  it('answers 503 unavailable with Retry-After once the wait runs out, losing nothing, and publishes again once it is free', async () => {
    const a = await createAccount(h);
    if (h.config.db.kind !== 'sqlite') throw new Error('SQLite only');
    const other = new SqliteExecutor(h.config.db.path, { synchronous: 'normal' }); // another process
    const before = await snapshotCounts(h);
    other.db.exec('BEGIN IMMEDIATE');
    try {
      let answered = false;
      const pending = h.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: { n: 1 } }).finally(() => (answered = true));
      await new Promise((r) => setTimeout(r, 200));
      // The server answers other requests while the publish waits: its event loop does not.
      expect((await h.api('GET', '/healthz', undefined, { token: null })).status).toBe(200);
      expect(answered).toBe(false);
      const r = await pending;
      expectError(r, 503, 'unavailable');
      expect(r.headers.get('retry-after')).toBe('1');
    } finally {
      other.db.exec('COMMIT');
      await other.close();
    }
    expect(await snapshotCounts(h)).toEqual(before);
    expect((await h.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: { n: 2 } })).status).toBe(202);
  }, 20_000);
});

describe('a slow database', () => {
  it('answers 503 with Retry-After at once past what may wait, and stores the events it took', async () => {
    const t = await startHerald({ HERALD_DEV: 'true' }, { worker: false });
    try {
      const acc = await createAccount(t);
      await publish(t, acc, { type: 'content.generated', data: { warm: true } }); // the account is cached
      // One event may wait at a time (the default is 10,000).
      (t.herald.ctx as { publisher: Publisher }).publisher = new Publisher(t.herald.ctx.store, () => {}, null, { events: 1, chars: 1_000_000 });
      // A real lock: another connection holds the table the publish writes.
      const db = t.config.db;
      let release: () => Promise<void>;
      if (db.kind === 'sqlite') {
        const c = new SqliteExecutor(db.path, { synchronous: 'normal' }); // a second connection
        // It waits for nothing itself (busy_timeout 0): try again while Herald happens to write.
        for (let i = 0; ; i++) {
          try {
            c.db.exec('BEGIN IMMEDIATE');
            break;
          } catch (e) {
            if (i >= 100) throw e;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
        release = async () => {
          c.db.exec('COMMIT');
          await c.close();
        };
      } else {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        await c.query('BEGIN');
        await c.query('LOCK TABLE events IN EXCLUSIVE MODE');
        release = async () => {
          await c.query('COMMIT');
          await c.end();
        };
      }
      const first = publish(t, acc, { type: 'content.generated', data: { n: 1 } });
      await new Promise((r) => setTimeout(r, 200)); // it waits for the lock
      const refused = await publish(t, acc, { type: 'content.generated', data: { n: 2 } });
      expectError(refused, 503, 'unavailable');
      expect(refused.body.error.message).toContain('waiting to be stored'); // the budget, not a lock timeout
      expect(refused.headers.get('retry-after')).toBe('1');
      await release();
      expect((await first).status).toBe(202);
      expect(await count(t, 'events', 'account_id = ?', acc)).toBe(2); // the warm-up and n: 1
    } finally {
      await t.close();
    }
  });
});
