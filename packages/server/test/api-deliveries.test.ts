import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { createApiKey, expectError } from './helpers/api-kit.js';

/**
 * Delivery history (SPEC §3): filters, cursor pagination, one delivery in full, redeliver.
 * A real worker delivers to a local receiver (HERALD_DEV) that answers 200 on /ok and 500 on
 * /fail. Two attempts at most, and the retry an hour away, so a failed first attempt leaves
 * its delivery `pending` for as long as the test needs, and a redelivery then finishes it.
 */
let h: TestHerald;
let rx: Receiver;
let acc: string;
let key: string;
let okHook: string;
let failHook: string;

beforeAll(async () => {
  h = await startHerald({ HERALD_DEV: 'true', HERALD_MAX_ATTEMPTS: '2', HERALD_RETRY_BASE_MS: '3600000' });
  rx = await startReceiver((r, res) => {
    res.statusCode = r.url === '/fail' ? 500 : 200;
    res.setHeader('x-receiver', 'yes');
    res.end(r.url === '/fail' ? 'nope' : 'thanks');
  });
  acc = await createAccount(h);
  ({ key } = await createApiKey(h, acc));
  okHook = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/ok`, events: ['content.generated', 'analysis.completed'], secret: 'whsec_history-secret' })).body.id;
  failHook = (await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/fail`, events: ['content.generated'] })).body.id;
});
afterAll(async () => {
  await h.close();
  await rx.close();
});

const list = (query = '') => h.api('GET', `/v1/accounts/${acc}/deliveries${query}`, undefined, { token: key });
const detail = (id: string) => h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`, undefined, { token: key });
const settled = (id: string, pred: (d: any) => boolean) =>
  waitFor(async () => {
    const d = await detail(id);
    return pred(d.body) ? d.body : null;
  });

describe('one delivery', () => {
  it('shows every attempt and the exact request body the receiver got', async () => {
    const raw = '{"type":"content.generated","data": {"n": 1.0, "big": 12345678901234567890, "s": "é\\u2028"}}';
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, undefined, { raw });
    const id = p.body.deliveries.find((d: { webhook_id: string }) => d.webhook_id === okHook).id;
    const d = await settled(id, (x) => x.status === 'succeeded');
    const got = rx.received.find((r) => r.headers['x-herald-delivery'] === id)!;
    expect(d.request).toEqual({ url: `${rx.url}/ok`, body: got.body.toString('utf8') });
    expect(d).toMatchObject({
      id, event_id: p.body.id, webhook_id: okHook, event_type: 'content.generated', status: 'succeeded',
      next_attempt_at: null, response_status: 200, last_error: null,
    });
    expect(d.attempts).toEqual([
      {
        id: expect.stringMatching(/^att_/), attempt: 1, started_at: expect.any(String), duration_ms: expect.any(Number), status_code: 200,
        success: true, error_kind: null, error: null, request_headers: expect.any(Object), response_headers: expect.objectContaining({ 'x-receiver': 'yes' }),
        response_body: 'thanks', response_truncated: false,
      },
    ]);
    expect(d.attempts[0].request_headers).toMatchObject({ 'x-herald-delivery': id, 'x-herald-attempt': '1', 'x-hub-signature-256': '[redacted]' });
  });

  it('lists the latest 50 attempts and counts the earlier ones, however often a delivery was redelivered', async () => {
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { many: true } });
    const id = p.body.deliveries.find((d: { webhook_id: string }) => d.webhook_id === okHook).id;
    await settled(id, (x) => x.status === 'succeeded');
    // 60 more attempts, as 60 redeliveries would leave them (each may hold 64 KiB of response).
    const q = h.herald.ctx.store.q;
    await q.tx(async (t) => {
      for (let no = 2; no <= 61; no++) {
        await t.run(
          `INSERT INTO attempts (id, delivery_id, attempt_no, started_at, duration_ms, status_code, success, error_kind, error_message, request_headers, response_headers, response_body, response_truncated)
           VALUES (?, ?, ?, ?, 1, 200, 1, NULL, NULL, '{}', '{}', ?, 0)`,
          [`att_many${String(no).padStart(22, '0')}`, id, no, Date.now() + no, 'x'.repeat(1000)],
        );
      }
      await t.run('UPDATE deliveries SET attempts = 61 WHERE id = ?', [id]);
    });
    const d = (await detail(id)).body;
    expect(d.attempts.map((a: { attempt: number }) => a.attempt)).toEqual(Array.from({ length: 50 }, (_, i) => 12 + i));
    expect(d.earlier_attempts).toBe(11);
    // A delivery with few attempts lists them all.
    const one = (await list(`?webhook_id=${okHook}&status=succeeded&limit=200`)).body.data.find((x: { attempts: number }) => x.attempts === 1);
    expect((await detail(one.id)).body).toMatchObject({ earlier_attempts: 0, attempts: [expect.objectContaining({ attempt: 1 })] });
  });

  it('a failed attempt is recorded with its status and body, and the delivery waits for its retry', async () => {
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { fail: 1 } });
    const id = p.body.deliveries.find((d: { webhook_id: string }) => d.webhook_id === failHook).id;
    const d = await settled(id, (x) => x.attempts.length === 1);
    expect(d).toMatchObject({ status: 'pending', response_status: 500, next_attempt_at: expect.any(String) });
    // The list shows the same delivery with its attempt count.
    const listed = (await list(`?webhook_id=${failHook}`)).body.data.find((x: { id: string }) => x.id === id);
    expect(listed).toMatchObject({ status: 'pending', attempts: 1, response_status: 500 });
    expect(Date.parse(d.next_attempt_at) - Date.now()).toBeGreaterThan(30 * 60 * 1000);
    expect(d.attempts[0]).toMatchObject({ attempt: 1, status_code: 500, success: false, response_body: 'nope' });
  });

  it('answers 404 for unknown and malformed delivery ids', async () => {
    expectError(await detail('dlv_00000000000000000000000000'), 404, 'delivery_not_found');
    expectError(await detail('nonsense'), 404, 'delivery_not_found');
    expectError(await h.api('POST', `/v1/accounts/${acc}/deliveries/nonsense/redeliver`), 404, 'delivery_not_found');
  });
});

describe('redeliver', () => {
  it('queues the same delivery again at once; attempts keep counting, and a final failure is `failed`', async () => {
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { again: true } });
    const id = p.body.deliveries.find((d: { webhook_id: string }) => d.webhook_id === failHook).id;
    await settled(id, (x) => x.attempts.length === 1 && x.status === 'pending');

    const r = await h.api('POST', `/v1/accounts/${acc}/deliveries/${id}/redeliver`, undefined, { token: key });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ id, status: 'pending' });
    const d = await settled(id, (x) => x.attempts.length === 2 && x.status !== 'pending');
    expect(d).toMatchObject({ status: 'failed', next_attempt_at: null, last_error: expect.any(String) });
    expect(d.attempts.map((a: { attempt: number }) => a.attempt)).toEqual([1, 2]);
    const sent = rx.received.filter((x) => x.headers['x-herald-delivery'] === id);
    expect(sent.map((x) => x.headers['x-herald-attempt'])).toEqual(['1', '2']);
    expect(sent[1]!.body.equals(sent[0]!.body)).toBe(true);
  });

  it('redelivers a succeeded delivery with the same delivery_id and body', async () => {
    const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'analysis.completed', data: { twice: true } });
    const id = p.body.deliveries[0].id;
    await settled(id, (x) => x.status === 'succeeded');
    // A client that sends Content-Type: application/json on every request, with no body.
    const r = await h.api('POST', `/v1/accounts/${acc}/deliveries/${id}/redeliver`, undefined, { headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(202);
    const d = await settled(id, (x) => x.attempts.length === 2 && x.status === 'succeeded');
    expect(d.id).toBe(id);
    const sent = rx.received.filter((x) => x.headers['x-herald-delivery'] === id);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.body.toString()).toBe(sent[0]!.body.toString());
    expect(sent[1]!.headers['webhook-id']).toBe(id);
  });
});

describe('redeliver refusals', () => {
  it('refuses while the webhook is disabled, and on a free account, leaving the delivery as it was', async () => {
    const a = await createAccount(h);
    const wh = (await h.api('POST', `/v1/accounts/${a}/webhooks`, { url: `${rx.url}/ok`, events: ['*'] })).body.id;
    const p = await h.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: { refuse: true } });
    const id = p.body.deliveries[0].id;
    const done = await waitFor(async () => {
      const d = await h.api('GET', `/v1/accounts/${a}/deliveries/${id}`);
      return d.body.status === 'succeeded' ? d.body : null;
    });
    const sent = () => rx.received.filter((x) => x.headers['x-herald-delivery'] === id).length;
    expect(sent()).toBe(1);

    await h.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, { enabled: false });
    expectError(await h.api('POST', `/v1/accounts/${a}/deliveries/${id}/redeliver`), 422, 'validation_failed');
    await h.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, { enabled: true });
    await h.api('PATCH', `/v1/accounts/${a}`, { plan: 'free' });
    expectError(await h.api('POST', `/v1/accounts/${a}/deliveries/${id}/redeliver`), 403, 'plan_required');
    // Nothing was queued: the history is as it was, and nothing more was sent.
    await new Promise((r) => setTimeout(r, 100));
    expect((await h.api('GET', `/v1/accounts/${a}/deliveries/${id}`)).body).toEqual(done);
    expect(sent()).toBe(1);
  });
});

describe('redeliver while an attempt is in flight', () => {
  it('answers 409 conflict and the attempt in flight decides the outcome', async () => {
    // The first answer waits until the test lets it go, so the redeliver surely meets the
    // attempt in flight however slow the machine.
    let answer = (): void => {};
    const held = new Promise<void>((r) => (answer = r));
    const slow = await startReceiver(async (_r, res, n) => {
      if (n === 1) await held;
      res.end('late but fine');
    });
    try {
      const a = await createAccount(h);
      await h.api('POST', `/v1/accounts/${a}/webhooks`, { url: slow.url, events: ['*'] });
      const id = (await h.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: {} })).body.deliveries[0].id;
      await waitFor(() => slow.received.length === 1);
      expectError(await h.api('POST', `/v1/accounts/${a}/deliveries/${id}/redeliver`), 409, 'conflict');
      answer();
      const d = await waitFor(async () => {
        const x = await h.api('GET', `/v1/accounts/${a}/deliveries/${id}`);
        return x.body.status === 'succeeded' ? x.body : null;
      });
      expect(d.attempts).toHaveLength(1);
      // Once the attempt has ended, redelivery works again.
      expect((await h.api('POST', `/v1/accounts/${a}/deliveries/${id}/redeliver`)).status).toBe(202);
      await waitFor(() => slow.received.length === 2);
    } finally {
      await slow.close();
    }
  });
});

describe('history list', () => {
  let typesAcc: string;
  let hookA: string;
  let hookB: string;
  const published: string[] = [];

  beforeAll(async () => {
    typesAcc = await createAccount(h);
    hookA = (await h.api('POST', `/v1/accounts/${typesAcc}/webhooks`, { url: `${rx.url}/ok`, events: ['*'] })).body.id;
    hookB = (await h.api('POST', `/v1/accounts/${typesAcc}/webhooks`, { url: `${rx.url}/fail`, events: ['analysis.completed'] })).body.id;
    for (let i = 0; i < 7; i++) {
      const type = i % 2 ? 'analysis.completed' : 'content.generated';
      const p = await h.api('POST', `/v1/accounts/${typesAcc}/events`, { type, data: { i } });
      published.push(...p.body.deliveries.map((d: { id: string }) => d.id));
      await new Promise((r) => setTimeout(r, 3)); // distinct milliseconds, so "newest" is well defined
    }
    // 7 deliveries to A, 3 to B; wait until every one has had its first attempt.
    await waitFor(async () => {
      const r = await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?limit=200`);
      return r.body.data.length === 10 && r.body.data.every((d: { attempts: number }) => d.attempts >= 1);
    });
  });

  type Row = { id: string; webhook_id: string; event_type: string; status: string };
  const all = async (query: string) => {
    const ids: string[] = [];
    const rows: Row[] = [];
    const pages: number[] = [];
    let cursor: string | null = null;
    for (let guard = 0; guard < 20; guard++) {
      const r: { status: number; body: { data: Row[]; next_cursor: string | null } } = await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?${query}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      ids.push(...r.body.data.map((d) => d.id));
      rows.push(...r.body.data);
      pages.push(r.body.data.length);
      cursor = r.body.next_cursor;
      if (!cursor) return { ids, rows, pages };
    }
    throw new Error('pagination does not end');
  };

  it('pages through everything newest first, each delivery once', async () => {
    const { ids, pages } = await all('limit=3');
    expect(pages).toEqual([3, 3, 3, 1]);
    expect(new Set(ids).size).toBe(10);
    expect([...ids].sort()).toEqual([...published].sort());
    // Newest first: creation times never increase down the list (one event's deliveries share one).
    const created = await Promise.all(ids.map(async (id) => (await h.api('GET', `/v1/accounts/${typesAcc}/deliveries/${id}`)).body.created_at as string));
    expect([...created].sort().reverse()).toEqual(created);
    // The default page holds them all, with no cursor after it.
    expect((await h.api('GET', `/v1/accounts/${typesAcc}/deliveries`)).body).toMatchObject({ next_cursor: null });
  });

  it('answers 404 webhook_not_found for the history of a webhook the account does not have (deleted, or another account\'s)', async () => {
    const quiet = (await h.api('POST', `/v1/accounts/${typesAcc}/webhooks`, { url: 'https://93.184.216.34/quiet', events: ['*'] })).body.id as string;
    expect((await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?webhook_id=${quiet}`)).body).toEqual({ data: [], next_cursor: null });
    expect((await h.api('DELETE', `/v1/accounts/${typesAcc}/webhooks/${quiet}`)).status).toBe(204);
    expectError(await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?webhook_id=${quiet}`), 404, 'webhook_not_found');
    const stranger = await createAccount(h);
    expectError(await h.api('GET', `/v1/accounts/${stranger}/deliveries?webhook_id=${hookB}`), 404, 'webhook_not_found');
    expectError(await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?webhook_id=not-an-id`), 404, 'webhook_not_found');
  });

  it('filters by webhook, event type and status, also across pages', async () => {
    const byHook = await all(`webhook_id=${hookB}&limit=2`);
    expect(byHook.ids).toHaveLength(3);
    expect(byHook.rows.every((d) => d.webhook_id === hookB)).toBe(true);
    const byType = await all('event_type=content.generated&limit=2');
    expect(byType.ids).toHaveLength(4);
    expect(byType.rows.every((d) => d.event_type === 'content.generated')).toBe(true);
    const ok = await all('status=succeeded&limit=4');
    const pending = await all('status=pending');
    expect(ok.ids).toHaveLength(7);
    expect(ok.rows.every((d) => d.status === 'succeeded' && d.webhook_id === hookA)).toBe(true);
    expect(pending.ids).toHaveLength(3);
    expect(pending.ids.sort()).toEqual(byHook.ids.sort());
    expect((await all('status=failed')).ids).toEqual([]);
    const both = await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?webhook_id=${hookA}&event_type=analysis.completed&status=succeeded`);
    expect(both.body.data).toHaveLength(3);
    for (const d of both.body.data) expect(d).toMatchObject({ webhook_id: hookA, event_type: 'analysis.completed', status: 'succeeded' });
  });

  it('refuses a bad cursor, limit or status with 400', async () => {
    for (const q of ['cursor=abc', 'cursor=wh_00000000000000000000000000', 'limit=0', 'limit=201', 'limit=ten', 'status=done', 'colour=red']) {
      expectError(await h.api('GET', `/v1/accounts/${typesAcc}/deliveries?${q}`), 400, 'invalid_request');
    }
  });
});

describe('recover: send a webhook\'s failed deliveries again', () => {
  // One attempt per delivery, so a failure is final at once: the state recovery is for.
  let h1: TestHerald;
  let down = true;
  let flaky: Receiver;
  beforeAll(async () => {
    h1 = await startHerald({ HERALD_DEV: 'true', HERALD_MAX_ATTEMPTS: '1' });
    flaky = await startReceiver((_r, res) => {
      res.statusCode = down ? 503 : 200;
      res.end(down ? 'down for maintenance' : 'ok');
    });
  });
  afterAll(async () => {
    await h1.close();
    await flaky.close();
  });

  const failedDeliveries = async (a: string, n: number) =>
    waitFor(async () => {
      const r = await h1.api('GET', `/v1/accounts/${a}/deliveries?status=failed`);
      return r.body.data.length === n ? r.body.data.map((d: { id: string }) => d.id) as string[] : null;
    });

  it('queues the failed deliveries created in the window; the receiver gets them again with the same ids and attempt 2', async () => {
    down = true;
    const a = await createAccount(h1);
    const { key: k } = await createApiKey(h1, a);
    const wh = (await h1.api('POST', `/v1/accounts/${a}/webhooks`, { url: flaky.url, events: ['*'] })).body.id;
    await h1.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: { before: true } });
    const [early] = await failedDeliveries(a, 1);
    await new Promise((r) => setTimeout(r, 5));
    const since = new Date().toISOString();
    for (let i = 0; i < 2; i++) await h1.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: { i } });
    const failed = await failedDeliveries(a, 3);
    const inWindow = failed.filter((id) => id !== early);

    down = false;
    const r = await h1.api('POST', `/v1/accounts/${a}/webhooks/${wh}/recover`, { since }, { token: k });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ queued: 2, next_cursor: null, until: expect.any(String) });
    // The window ended at the server's now, which the answer gives for going on.
    expect(Date.parse(r.body.until)).toBeGreaterThan(Date.parse(since));
    expect(Date.parse(r.body.until)).toBeLessThanOrEqual(Date.now());
    for (const id of inWindow) {
      const d = await waitFor(async () => {
        const x = await h1.api('GET', `/v1/accounts/${a}/deliveries/${id}`);
        return x.body.status === 'succeeded' ? x.body : null;
      });
      expect(d.attempts.map((x: { attempt: number; status_code: number }) => [x.attempt, x.status_code])).toEqual([[1, 503], [2, 200]]);
      const sent = flaky.received.filter((x) => x.headers['x-herald-delivery'] === id);
      expect(sent.map((x) => x.headers['x-herald-attempt'])).toEqual(['1', '2']);
      expect(sent[1]!.body.equals(sent[0]!.body)).toBe(true);
    }
    // The one created before `since` was left as it was.
    expect((await h1.api('GET', `/v1/accounts/${a}/deliveries/${early}`)).body).toMatchObject({ status: 'failed', attempts: [{ attempt: 1 }] });
    // Nothing failed is left in the window: a second call queues nothing.
    const until = new Date().toISOString();
    expect((await h1.api('POST', `/v1/accounts/${a}/webhooks/${wh}/recover`, { since, until })).body).toEqual({ queued: 0, next_cursor: null, until });
    // Operators see recoveries in the metrics.
    const metrics = await (await fetch(`${h1.url}/metrics`)).text();
    expect(metrics).toMatch(/^herald_recovered_deliveries_total 2$/m);
  });

  it('refuses bad windows, disabled webhooks, free plans and other tenants, queuing nothing', async () => {
    down = true;
    const a = await createAccount(h1);
    const wh = (await h1.api('POST', `/v1/accounts/${a}/webhooks`, { url: flaky.url, events: ['*'] })).body.id;
    await h1.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: {} });
    const [id] = await failedDeliveries(a, 1);
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const recover = (body: unknown, o: { token?: string; account?: string; webhook?: string } = {}) =>
      h1.api('POST', `/v1/accounts/${o.account ?? a}/webhooks/${o.webhook ?? wh}/recover`, body, o.token ? { token: o.token } : undefined);

    expectError(await recover({}), 400, 'invalid_request');
    expectError(await recover({ since: 'yesterday' }), 400, 'invalid_request');
    expectError(await recover({ since: '2024-05-20T14:30:00' }), 400, 'invalid_request'); // no time zone
    expectError(await recover({ since: '1969-12-31T00:00:00Z' }), 400, 'invalid_request'); // before any id could be made
    expectError(await recover({ since: '2024-02-30T00:00:00Z' }), 400, 'invalid_request'); // Date.parse would read 1 March
    expectError(await recover({ since, until: '2023-02-29T12:00:00Z' }), 400, 'invalid_request'); // not a leap year
    expectError(await recover({ since, until: since }), 400, 'invalid_request');
    expectError(await recover({ since, cursor: 'nonsense' }), 400, 'invalid_request');
    expectError(await recover({ since, extra: 1 }), 400, 'invalid_request');
    expectError(await recover({ since }, { webhook: 'wh_00000000000000000000000000' }), 404, 'webhook_not_found');
    const other = await createAccount(h1);
    const { key: otherKey } = await createApiKey(h1, other);
    expectError(await recover({ since }, { token: otherKey }), 404, 'account_not_found');
    expectError(await recover({ since }, { account: other, token: otherKey }), 404, 'webhook_not_found');
    await h1.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, { enabled: false });
    expectError(await recover({ since }), 422, 'validation_failed');
    await h1.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, { enabled: true });
    await h1.api('PATCH', `/v1/accounts/${a}`, { plan: 'free' });
    expectError(await recover({ since }), 403, 'plan_required');

    await new Promise((r) => setTimeout(r, 100));
    expect((await h1.api('GET', `/v1/accounts/${a}/deliveries/${id}`)).body).toMatchObject({ status: 'failed', attempts: [{ attempt: 1 }] });
    expect(flaky.received.filter((x) => x.headers['x-herald-delivery'] === id)).toHaveLength(1);
  });
});
