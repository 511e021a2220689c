import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isId, newId } from '../src/core/ids.js';
import type { AttemptRow, DeliveryStatus, Plan, WebhookRow } from '../src/core/types.js';
import { migrate } from '../src/store/migrate.js';
import type { AttemptRecord, ClaimedDelivery, ClaimOptions, PublishInput, Store } from '../src/store/store.js';
import type { TestDatabase } from './helpers/db.js';

/**
 * The behaviour every Store backend must have (STYLE habit 6). The suite migrates one fresh
 * database from `makeDb` and empties it before each test. `multiProcess` backends are also raced from several Store
 * instances with their own pools, the way separate Herald processes share one PostgreSQL.
 * SQLite is one process per file (its single connection serialises everything), so there the
 * "concurrent" callers share one Store.
 */
export function runStoreConformance(name: string, makeDb: () => Promise<TestDatabase>, opts: { multiProcess: boolean }): void {
  describe(`Store conformance: ${name}`, () => {
    const T0 = Date.UTC(2024, 4, 20, 14, 30); // fixed clock for everything that takes `now`
    const DAY = 24 * 60 * 60 * 1000;
    let db: TestDatabase;
    let store: Store;
    const extra: Store[] = []; // peers opened by one test, closed after it

    beforeAll(async () => {
      db = await makeDb();
      store = await db.open();
      await migrate(store.q);
    });
    afterAll(async () => {
      await db?.drop();
    });
    beforeEach(async () => {
      await db.reset();
    });
    afterEach(async () => {
      await Promise.all(extra.splice(0).map((s) => s.close()));
    });
    const openPeer = async (poolSize = 2) => {
      const s = await db.open({ poolSize });
      extra.push(s);
      return s;
    };

    // ---------- fixtures ----------
    const acct = (plan: Plan = 'pro', now = T0) => store.createAccount('Acme', plan, now);
    /** A webhook by id alone, as the worker reads it (with its account's plan). */
    const webhookById = async (id: string) => (await store.getWebhookWithPlan(id))?.webhook ?? null;
    const hook = (accountId: string, o: Partial<WebhookRow> = {}, now = T0) =>
      store.createWebhook(
        { accountId, url: 'https://example.com/hook', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true, ...o },
        now,
      );
    const input = (accountId: string, o: Partial<PublishInput> = {}): PublishInput => ({
      accountId, type: 'content.generated', data: '{"n":1}', idempotencyKey: null, now: T0, ...o,
    });
    const publish = async (accountId: string, o: Partial<PublishInput> = {}) => (await store.publishMany([input(accountId, o)]))[0]!;
    const claim = (o: Partial<ClaimOptions> = {}, s = store) =>
      s.claimDue({ owner: 'A', now: T0, leaseMs: 30_000, limit: 10, lane: 'first', endpointLimit: 10, ...o });
    const attempt = (deliveryId: string, attemptNo: number, o: Partial<AttemptRow> = {}): AttemptRow => ({
      id: newId('att', T0), deliveryId, attemptNo, startedAt: T0 + attemptNo, durationMs: 12, statusCode: 500, success: false,
      errorKind: 'http_status', errorMessage: 'HTTP 500', requestHeaders: { 'content-type': 'application/json' },
      responseHeaders: { 'x-a': '1' }, responseBody: 'oops', responseTruncated: false, ...o,
    });
    const record = (
      c: Pick<ClaimedDelivery, 'id' | 'webhookId' | 'attempts'>, owner: string, status: DeliveryStatus,
      o: Partial<AttemptRecord> & { att?: Partial<AttemptRow> } = {},
    ): AttemptRecord => {
      const { att, ...rest } = o;
      const ok = status === 'succeeded';
      return {
        attempt: attempt(c.id, c.attempts + 1, ok ? { statusCode: 200, success: true, errorKind: null, errorMessage: null, ...att } : att),
        owner, status, nextAttemptAt: status === 'pending' ? T0 + 60_000 : null, error: ok ? null : 'HTTP 500',
        disableWebhook: null, webhookId: c.webhookId, ...rest,
      };
    };
    const count = async (table: string) => Number((await store.q.all<{ c: unknown }>(`SELECT COUNT(*) AS c FROM ${table}`))[0]!.c);
    const delivery = async (accountId: string, id: string) => (await store.getDelivery(accountId, id))!.delivery;
    /** k callers that may race: separate Stores (pools) where the backend has several processes. */
    const peers = async (k: number): Promise<Store[]> =>
      opts.multiProcess ? Promise.all(Array.from({ length: k }, () => openPeer())) : Array<Store>(k).fill(store);

    it('names its dialect and answers ping', async () => {
      expect(store.dialect).toBe(db.kind);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('the executor port', () => {
      it('numbers `?` placeholders, but not a `?` inside a string literal', async () => {
        const [r] = await store.q.all<Record<string, unknown>>("SELECT ? AS a, 'what''s this?' AS b, ? AS c", ['1', '2']);
        expect(r).toEqual({ a: '1', b: "what's this?", c: '2' });
      });

      it('binds lists as one parameter, booleans as 0/1, and reads BIGINT back as numbers', async () => {
        const d = store.q.dialect;
        const names = (list: string[]) => store.q.all<{ name: string }>(`SELECT name FROM event_types WHERE ${d.inList('name')} ORDER BY name`, [d.listParam(list)]);
        expect(await names(['ping', 'nope', 'content.generated'])).toEqual([{ name: 'content.generated' }, { name: 'ping' }]);
        expect(await names([])).toEqual([]);
        const big = Number.MAX_SAFE_INTEGER; // epoch ms are far below; this is the edge of exactness
        await store.q.run('INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES (?, ?, NULL, ?, ?)', ['x.flag', '', true, big]);
        const [r] = await store.q.all<{ builtin: unknown; created_at: unknown; c: unknown }>(
          'SELECT builtin, created_at, (SELECT COUNT(*) FROM event_types) AS c FROM event_types WHERE name = ?',
          ['x.flag'],
        );
        expect(r).toEqual({ builtin: 1, created_at: big, c: 5 });
        await store.q.run('DELETE FROM event_types WHERE name = ?', ['x.flag']); // a "built-in" outlives the reset
      });

      it('run counts changed rows; tx commits, rolls back on a throw, and nested tx joins the outer one', async () => {
        const a = await acct();
        expect(await store.q.run('UPDATE accounts SET name = ? WHERE id = ?', ['B', a.id])).toEqual({ changes: 1 });
        expect(await store.q.run('UPDATE accounts SET name = ? WHERE id = ?', ['B', 'acc_none'])).toEqual({ changes: 0 });
        const boom = store.q.tx(async (t) => {
          await t.run('UPDATE accounts SET name = ? WHERE id = ?', ['rolled back', a.id]);
          await t.tx(async (inner) => inner.run('UPDATE accounts SET plan = ? WHERE id = ?', ['free', a.id]));
          throw new Error('boom');
        });
        await expect(boom).rejects.toThrow('boom');
        expect(await store.getAccount(a.id)).toMatchObject({ name: 'B', plan: 'pro' });
        const out = await store.q.tx(async (t) => {
          await t.tx(async (inner) => inner.run('UPDATE accounts SET plan = ? WHERE id = ?', ['free', a.id]), { lock: 'claim' });
          return 42;
        });
        expect(out).toBe(42);
        expect((await store.getAccount(a.id))!.plan).toBe('free');
      });
    });

    describe('accounts and API keys', () => {
      it('creates, reads, pages, updates and deletes accounts', async () => {
        const a = await acct('pro', T0);
        expect(isId('acc', a.id)).toBe(true);
        expect(a).toMatchObject({ name: 'Acme', plan: 'pro', createdAt: T0, updatedAt: T0 });
        expect(await store.getAccount(a.id)).toEqual(a);
        const b = await acct('free', T0 + 1);
        expect((await store.listAccounts(10, null)).map((x) => x.id)).toEqual([a.id, b.id]);
        expect(await store.listAccounts(1, a.id)).toEqual([b]);
        const u = await store.updateAccount(a.id, { plan: 'enterprise' }, T0 + 5);
        expect(u).toEqual({ ...a, plan: 'enterprise', updatedAt: T0 + 5 });
        expect(await store.getAccount(a.id)).toEqual(u);
        expect(await store.updateAccount(newId('acc'), { name: 'x' })).toBeNull();
        expect(await store.deleteAccount(a.id)).toBe(true);
        expect(await store.getAccount(a.id)).toBeNull();
        expect(await store.deleteAccount(a.id)).toBe(false);
        expect(await store.getAccount(b.id)).toEqual(b);
      });

      it('deleting an account removes everything it owns, and nothing of others', async () => {
        const seed = async (a: string, tag: string) => {
          await store.createApiKey(a, `hash-${tag}`, `hk_${tag}`);
          const w = await hook(a);
          const p = await publish(a);
          const [c] = await claim({ owner: tag });
          await store.recordAttempts([record(c!, tag, 'succeeded')]);
          await store.createPortalLink(`link-${tag}`, a, T0 + DAY);
          await store.createSession({ tokenHash: `sess-${tag}`, accountId: a, csrfToken: 'c', expiresAt: T0 + DAY }, T0);
          return { w, p };
        };
        const a = await acct();
        const other = await acct();
        const mine = await seed(a.id, 'a');
        const theirs = await seed(other.id, 'o');
        expect(await store.deleteAccount(a.id)).toBe(true);
        expect(await store.findApiKey('hash-a')).toBeNull();
        expect(await webhookById(mine.w.id)).toBeNull();
        expect(await store.getDelivery(a.id, mine.p.deliveries[0]!.id)).toBeNull();
        expect(await store.peekPortalLink('link-a', T0)).toBeNull();
        expect(await store.getSession('sess-a', T0)).toBeNull();
        expect([await count('events'), await count('deliveries'), await count('attempts')]).toEqual([1, 1, 1]);
        expect(await store.findApiKey('hash-o')).toEqual({ id: expect.any(String), accountId: other.id });
        expect((await store.getDelivery(other.id, theirs.p.deliveries[0]!.id))!.attempts).toHaveLength(1);
        expect(await store.getSession('sess-o', T0)).not.toBeNull();
      });

      it('finds API keys by hash only, lists them without the hash, deletes within the account', async () => {
        const a = await acct();
        const b = await acct();
        const k = await store.createApiKey(a.id, 'h1', 'hk_1', T0);
        expect(isId('key', k.id)).toBe(true);
        expect(await store.findApiKey('h1')).toEqual({ id: k.id, accountId: a.id });
        expect(await store.findApiKey('h2')).toBeNull();
        expect(await store.listApiKeys(a.id)).toEqual([{ id: k.id, prefix: 'hk_1', createdAt: T0 }]);
        expect(await store.listApiKeys(b.id)).toEqual([]);
        await expect(store.createApiKey(b.id, 'h1', 'hk_x')).rejects.toThrow(); // hashes are unique
        expect(await store.deleteApiKey(b.id, k.id)).toBe(false);
        expect(await store.deleteApiKey(a.id, k.id)).toBe(true);
        expect(await store.findApiKey('h1')).toBeNull();
      });
    });

    describe('event types', () => {
      const BUILTIN = ['analysis.completed', 'content.generated', 'ping', 'publishing.failed'];

      it('seeds the four built-ins', async () => {
        const types = await store.listEventTypes();
        expect(types.map((t) => t.name)).toEqual(BUILTIN);
        for (const t of types) expect(t).toMatchObject({ builtin: true, schema: null, description: expect.stringMatching(/\w/) });
        expect(await store.eventTypeNames()).toEqual(new Set(BUILTIN));
      });

      it('creates new types once; a duplicate (even of a built-in) answers false and changes nothing', async () => {
        const schema = { type: 'object', properties: { id: { type: 'string' } } };
        expect(await store.createEventType({ name: 'invoice.paid', description: 'Paid', schema }, T0)).toBe(true);
        expect(await store.getEventType('invoice.paid')).toEqual({ name: 'invoice.paid', description: 'Paid', schema, builtin: false, createdAt: T0 });
        expect(await store.createEventType({ name: 'invoice.paid', description: 'again', schema: null })).toBe(false);
        expect(await store.createEventType({ name: 'ping', description: 'mine', schema: null })).toBe(false);
        expect((await store.getEventType('invoice.paid'))!.description).toBe('Paid');
        expect((await store.getEventType('ping'))!.builtin).toBe(true);
        expect(await store.getEventType('nope')).toBeNull();
        expect((await store.eventTypeNames()).has('invoice.paid')).toBe(true);
      });

      it('concurrent creates of one name: exactly one true, no error', async () => {
        const ss = await peers(4);
        const won = await Promise.all(ss.map((s) => s.createEventType({ name: 'race.won', description: '', schema: null })));
        expect(won.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('webhooks', () => {
      it('creates, reads, lists, updates and deletes within one account', async () => {
        const a = await acct();
        const w = await hook(a.id, { events: ['content.generated'], description: 'Main', headersEnc: 'enc-h', secretEnc: 'enc-s' });
        expect(isId('wh', w.id)).toBe(true);
        expect(w).toMatchObject({ enabled: true, disabledReason: null, createdAt: T0, updatedAt: T0 });
        expect(await store.getWebhook(a.id, w.id)).toEqual(w);
        expect(await webhookById(w.id)).toEqual(w);
        expect(await store.getWebhookWithPlan(w.id)).toEqual({ webhook: w, plan: a.plan });
        const w2 = await hook(a.id, {}, T0 + 1);
        expect((await store.listWebhooks(a.id)).map((x) => x.id)).toEqual([w.id, w2.id]);
        const changed = await store.updateWebhook(a.id, w.id, { url: 'https://example.org/new', events: ['*'], headersEnc: null, secretEnc: 'enc-2', enabled: false }, T0 + 9);
        expect(changed!.updatedAt).toBe(T0 + 9);
        expect(changed!.secretEnc).toBe('enc-2');
        expect(await store.getWebhook(a.id, w.id)).toEqual(changed);
        expect(await store.deleteWebhook(a.id, w.id)).toBe(true);
        expect(await webhookById(w.id)).toBeNull();
        expect(await store.deleteWebhook(a.id, w.id)).toBe(false);
        expect(await store.listWebhooks(a.id)).toEqual([w2]);
      });

      it('with a maximum, creates webhooks up to it per account, even when many ask at once', async () => {
        const a = await acct();
        const b = await acct();
        const spec = (accountId: string) => ({ accountId, url: 'https://example.com/hook', description: '', events: ['*'], headersEnc: null, secretEnc: null, enabled: true });
        // Eight creates at once from several processes (PostgreSQL) for 3 places.
        const ss = await peers(4);
        const made = await Promise.all(Array.from({ length: 8 }, (_, i) => ss[i % ss.length]!.createWebhook(spec(a.id), T0 + i, 3)));
        expect(made.filter((w) => w !== null)).toHaveLength(3);
        expect(await store.listWebhooks(a.id)).toHaveLength(3);
        // Another account's count is its own; a deleted webhook frees its place.
        expect(await store.createWebhook(spec(b.id), T0, 3)).not.toBeNull();
        await store.deleteWebhook(a.id, made.find((w) => w !== null)!.id);
        expect(await store.createWebhook(spec(a.id), T0, 3)).not.toBeNull();
        expect(await store.createWebhook(spec(a.id), T0, 3)).toBeNull();
        expect(await store.createWebhook(spec('acc_gone'), T0, 3)).toBeNull();
      });

      it('rotates a secret: the replaced one is kept until the given time, read in the same statement', async () => {
        const a = await acct();
        const w = await hook(a.id, { secretEnc: 'enc-one' });
        expect(w).toMatchObject({ previousSecretEnc: null, previousSecretUntil: null });
        const r1 = await store.rotateWebhookSecret(a.id, w.id, 'enc-two', T0 + 1000, T0 + 1);
        expect(r1).toMatchObject({ secretEnc: 'enc-two', previousSecretEnc: 'enc-one', previousSecretUntil: T0 + 1000, updatedAt: T0 + 1 });
        expect(await webhookById(w.id)).toEqual(r1);
        // Again: the one replaced now is kept, the one before is gone.
        expect(await store.rotateWebhookSecret(a.id, w.id, 'enc-three', T0 + 2000, T0 + 2)).toMatchObject({ secretEnc: 'enc-three', previousSecretEnc: 'enc-two', previousSecretUntil: T0 + 2000 });
        // Without a time, nothing is kept.
        expect(await store.rotateWebhookSecret(a.id, w.id, 'enc-four', null, T0 + 3)).toMatchObject({ secretEnc: 'enc-four', previousSecretEnc: null, previousSecretUntil: null });
        // A webhook without a secret has nothing to keep.
        const bare = await hook(a.id);
        expect(await store.rotateWebhookSecret(a.id, bare.id, 'enc-first', T0 + 1000, T0 + 4)).toMatchObject({ secretEnc: 'enc-first', previousSecretEnc: null, previousSecretUntil: null });
        // Concurrent rotations from several processes (PostgreSQL): each keeps the secret it replaced, so
        // the last one's previous secret is another rotation's new one, never the same secret twice.
        const ss = await peers(4);
        await Promise.all(Array.from({ length: 8 }, (_, i) => ss[i % ss.length]!.rotateWebhookSecret(a.id, w.id, `enc-c${i}`, T0 + 5000, T0 + 10 + i)));
        const end = (await webhookById(w.id))!;
        expect(end.secretEnc).toMatch(/^enc-c\d$/);
        // Read apart from the write, two rotations could both keep enc-four, the secret before them all.
        expect(end.previousSecretEnc).toMatch(/^enc-c\d$/);
        expect(end.previousSecretEnc).not.toBe(end.secretEnc);
        // Another account's id: nothing happens.
        const b = await acct();
        expect(await store.rotateWebhookSecret(b.id, w.id, 'enc-evil', T0 + 1000, T0 + 99)).toBeNull();
        expect(await webhookById(w.id)).toEqual(end);
      });

      it('an update that does not set the secret leaves the secret columns as stored: it cannot undo a rotation made since its read', async () => {
        const a = await acct();
        const w = await hook(a.id, { secretEnc: 'enc-read' });
        await store.rotateWebhookSecret(a.id, w.id, 'enc-rotated', T0 + 1000, T0 + 1);
        const saved = await store.updateWebhook(a.id, w.id, { description: 'changed from the old read' }, T0 + 2);
        expect(saved).toMatchObject({ description: 'changed from the old read', secretEnc: 'enc-rotated', previousSecretEnc: 'enc-read', previousSecretUntil: T0 + 1000 });
        expect(await webhookById(w.id)).toEqual(saved);
        // Setting the secret sets it, and the previous one ends.
        expect(await store.updateWebhook(a.id, w.id, { secretEnc: 'enc-set' }, T0 + 3)).toMatchObject({ secretEnc: 'enc-set', previousSecretEnc: null, previousSecretUntil: null });
      });

      it("another account's webhook id is not found, not changed, not deleted", async () => {
        const a = await acct();
        const b = await acct();
        const w = await hook(a.id);
        expect(await store.getWebhook(b.id, w.id)).toBeNull();
        expect(await store.listWebhooks(b.id)).toEqual([]);
        expect(await store.updateWebhook(b.id, w.id, { url: 'https://evil.example/' })).toBeNull();
        expect(await store.deleteWebhook(b.id, w.id)).toBe(false);
        expect(await store.getWebhook(a.id, w.id)).toEqual(w);
      });

      it('deleting a webhook removes its deliveries and attempts, keeps the events and other webhooks', async () => {
        const a = await acct();
        const w1 = await hook(a.id);
        const w2 = await hook(a.id);
        const p = await publish(a.id);
        const cs = await claim();
        await store.recordAttempts(cs.map((c) => record(c, 'A', 'pending')));
        expect(await store.deleteWebhook(a.id, w1.id)).toBe(true);
        const left = await store.listDeliveries({ accountId: a.id, limit: 10 });
        expect(left.map((d) => d.webhookId)).toEqual([w2.id]);
        expect([await count('events'), await count('attempts')]).toEqual([1, 1]);
        expect((await store.getDelivery(a.id, left[0]!.id))!.event.id).toBe(p.event.id);
      });
    });

    describe('publishMany', () => {
      it('stores the event once, with one delivery per enabled subscribed webhook', async () => {
        const a = await acct();
        const other = await acct();
        const all = await hook(a.id, { events: ['*'] });
        const exact = await hook(a.id, { events: ['content.generated', 'analysis.completed'] });
        await hook(a.id, { events: ['analysis.completed'] });
        await hook(a.id, { events: ['*'], enabled: false });
        await hook(other.id, { events: ['*'] });
        const data = '{"b": 1,  "a": "é\\u00e9", "n": 1.50}'; // raw text, delivered byte for byte
        const r = await publish(a.id, { data });
        expect(r.replayed).toBe(false);
        expect(isId('evt', r.event.id)).toBe(true);
        expect(r.event).toEqual({ id: r.event.id, accountId: a.id, type: 'content.generated', createdAt: T0, data });
        expect(r.deliveries.map((d) => d.webhookId).sort()).toEqual([all.id, exact.id].sort());
        expect([await count('events'), await count('deliveries')]).toEqual([1, 2]);
        for (const d of r.deliveries) {
          const got = (await store.getDelivery(a.id, d.id))!;
          expect(got.delivery).toEqual({
            id: d.id, accountId: a.id, eventId: r.event.id, webhookId: d.webhookId, eventType: 'content.generated', status: 'pending',
            attempts: 0, nextAttemptAt: T0, lastAttemptAt: null, lastStatusCode: null, lastError: null, lastDurationMs: null, createdAt: T0, updatedAt: T0,
          });
          expect(got.event).toEqual(r.event);
          expect(got.attempts).toEqual([]);
        }
      });

      it('an event no webhook wants is stored with no deliveries', async () => {
        const a = await acct();
        await hook(a.id, { events: ['ping'] });
        const r = await publish(a.id);
        expect(r.deliveries).toEqual([]);
        expect([await count('events'), await count('deliveries')]).toEqual([1, 0]);
      });

      it('publishes a batch of events for several accounts in one call, answering in input order', async () => {
        const a = await acct();
        const b = await acct();
        const wa1 = await hook(a.id, { events: ['*'] });
        const wa2 = await hook(a.id, { events: ['content.generated'] });
        const wb = await hook(b.id, { events: ['*'] });
        const rs = await store.publishMany([
          input(a.id, { data: '{"i":1}' }),
          input(b.id, { type: 'analysis.completed', data: '{"i":2}', idempotencyKey: 'k' }),
          input(a.id, { type: 'publishing.failed', data: '{"i":3}' }),
        ]);
        expect(rs.map((r) => [r.event.accountId, r.event.type, r.event.data])).toEqual([
          [a.id, 'content.generated', '{"i":1}'],
          [b.id, 'analysis.completed', '{"i":2}'],
          [a.id, 'publishing.failed', '{"i":3}'],
        ]);
        expect(rs.map((r) => r.deliveries.map((d) => d.webhookId).sort())).toEqual([[wa1.id, wa2.id].sort(), [wb.id], [wa1.id]]);
        expect(new Set(rs.map((r) => r.event.id)).size).toBe(3);
        expect([await count('events'), await count('deliveries')]).toEqual([3, 4]);
      });

      it('the same Idempotency-Key within 24 h answers with the first event and creates nothing', async () => {
        const a = await acct();
        await hook(a.id);
        await hook(a.id);
        const first = await publish(a.id, { idempotencyKey: 'order-1', data: '{"v":1}' });
        await hook(a.id); // added meanwhile: a replay must not deliver to it
        const again = await publish(a.id, { idempotencyKey: 'order-1', data: '{"v":2}', now: T0 + DAY - 1 });
        expect(again).toEqual({ ...first, replayed: true });
        expect([await count('events'), await count('deliveries')]).toEqual([1, 2]);
        // Keys belong to one account.
        const b = await acct();
        const theirs = await publish(b.id, { idempotencyKey: 'order-1' });
        expect(theirs.replayed).toBe(false);
        expect(theirs.event.id).not.toBe(first.event.id);
      });

      it('after 24 h the key publishes a new event, which later calls then replay', async () => {
        const a = await acct();
        await hook(a.id);
        const first = await publish(a.id, { idempotencyKey: 'k' });
        const later = await publish(a.id, { idempotencyKey: 'k', now: T0 + DAY + 1 });
        expect(later.replayed).toBe(false);
        expect(later.event.id).not.toBe(first.event.id);
        expect(later.deliveries).toHaveLength(1);
        expect(later.deliveries[0]!.id).not.toBe(first.deliveries[0]!.id);
        expect(await publish(a.id, { idempotencyKey: 'k', now: T0 + DAY + 2 })).toEqual({ ...later, replayed: true });
        expect([await count('events'), await count('deliveries')]).toEqual([2, 2]);
      });

      it('two identical keys in one batch: the second replays the first', async () => {
        const a = await acct();
        await hook(a.id);
        const [x, y, z] = await store.publishMany([
          input(a.id, { idempotencyKey: 'k1', data: '{"n":1}' }),
          input(a.id, { idempotencyKey: 'k1', data: '{"n":2}' }),
          input(a.id, { idempotencyKey: 'k2' }),
        ]);
        expect(x!.replayed).toBe(false);
        expect(y).toEqual({ ...x, replayed: true });
        expect(z!.event.id).not.toBe(x!.event.id);
        expect([await count('events'), await count('deliveries')]).toEqual([2, 2]);
      });

      it('concurrent publishes of one new key: one event, everyone gets it', async () => {
        const a = await acct();
        await hook(a.id);
        const ss = await peers(4);
        const rs = await Promise.all(ss.map((s, i) => s.publishMany([input(a.id, { idempotencyKey: 'race', data: `{"i":${i}}` })])));
        expect(new Set(rs.map((r) => r[0]!.event.id)).size).toBe(1);
        expect(rs.filter((r) => !r[0]!.replayed)).toHaveLength(1);
        expect([await count('events'), await count('deliveries')]).toEqual([1, 1]);
      });
    });

    describe('delivery history', () => {
      /** 12 events on two webhooks (18 deliveries), 3 of them succeeded; another account has 1. */
      async function history() {
        const a = await acct();
        const w1 = await hook(a.id, { events: ['*'] });
        const w2 = await hook(a.id, { events: ['content.generated'] });
        for (let i = 0; i < 12; i++) await publish(a.id, { type: i % 2 ? 'analysis.completed' : 'content.generated', now: T0 + i });
        const b = await acct();
        await hook(b.id);
        await publish(b.id, { now: T0 + 50 });
        const cs = await claim({ limit: 3, now: T0 + 100 });
        await store.recordAttempts(cs.map((c) => record(c, 'A', 'succeeded')));
        return { a, b, w1, w2 };
      }

      it('filters by webhook, event type and status, within the account', async () => {
        const { a, b, w1, w2 } = await history();
        const list = (f: object) => store.listDeliveries({ accountId: a.id, limit: 100, ...f });
        const all = await list({});
        expect(all).toHaveLength(18);
        expect(all.every((d) => d.accountId === a.id)).toBe(true);
        expect((await list({ webhookId: w2.id })).map((d) => d.webhookId)).toEqual(Array(6).fill(w2.id));
        expect((await list({ eventType: 'analysis.completed' })).map((d) => d.webhookId)).toEqual(Array(6).fill(w1.id));
        expect(await list({ status: 'succeeded' })).toHaveLength(3);
        expect(await list({ status: 'pending' })).toHaveLength(15);
        expect(await list({ status: 'failed' })).toHaveLength(0);
        expect(await list({ webhookId: w1.id, eventType: 'content.generated' })).toHaveLength(6);
        expect(await store.listDeliveries({ accountId: b.id, limit: 100 })).toHaveLength(1);
        expect(await store.listDeliveries({ accountId: b.id, webhookId: w1.id, limit: 100 })).toEqual([]);
      });

      it('pages newest first with the last id as the cursor, with and without filters', async () => {
        const { a, w1 } = await history();
        const pages = async (f: object, limit: number) => {
          const out: string[][] = [];
          let beforeId: string | undefined;
          for (;;) {
            const page = await store.listDeliveries({ accountId: a.id, limit, beforeId, ...f });
            out.push(page.map((d) => d.id));
            if (page.length < limit) return out;
            beforeId = page.at(-1)!.id;
          }
        };
        const all = await store.listDeliveries({ accountId: a.id, limit: 100 });
        const ids = all.map((d) => d.id);
        expect(ids).toEqual([...ids].sort().reverse()); // byte order of ids, descending
        for (let i = 1; i < all.length; i++) expect(all[i]!.createdAt).toBeLessThanOrEqual(all[i - 1]!.createdAt);
        const p = await pages({}, 5);
        expect(p.map((x) => x.length)).toEqual([5, 5, 5, 3]);
        expect(p.flat()).toEqual(ids);
        const f = await pages({ webhookId: w1.id }, 4);
        expect(f.map((x) => x.length)).toEqual([4, 4, 4, 0]);
        expect(f.flat()).toEqual(all.filter((d) => d.webhookId === w1.id).map((d) => d.id));
      });

      it('getDelivery returns the delivery, its event and every attempt in order; only in its account', async () => {
        const a = await acct();
        await hook(a.id);
        const p = await publish(a.id, { data: '{"x":[1,2]}' });
        const [c1] = await claim();
        const r1 = record(c1!, 'A', 'pending', { att: { responseHeaders: null, responseBody: null, errorKind: 'timeout', statusCode: null, responseTruncated: true } });
        await store.recordAttempts([r1]);
        const [c2] = await claim({ lane: 'retry', now: T0 + 60_000 });
        const r2 = record(c2!, 'A', 'succeeded');
        await store.recordAttempts([r2]);
        const got = (await store.getDelivery(a.id, p.deliveries[0]!.id))!;
        expect(got.event).toEqual(p.event);
        expect(got.delivery).toMatchObject({ status: 'succeeded', attempts: 2, nextAttemptAt: null, lastStatusCode: 200, lastError: null });
        expect(got.attempts).toEqual([r1.attempt, r2.attempt]);
        expect(await store.getDelivery((await acct()).id, p.deliveries[0]!.id)).toBeNull();
        expect(await store.getDelivery(a.id, newId('dlv'))).toBeNull();
      });

      it('redeliver queues it again now, same id, attempts keep counting', async () => {
        const a = await acct();
        await hook(a.id);
        const p = await publish(a.id);
        const id = p.deliveries[0]!.id;
        const [c] = await claim();
        await store.recordAttempts([record(c!, 'A', 'failed')]);
        expect(await claim({ lane: 'retry', now: T0 + DAY })).toEqual([]);
        expect(await store.redeliver((await acct()).id, id, T0 + 500)).toBe(false);
        expect(await store.redeliver(a.id, newId('dlv'), T0 + 500)).toBe(false);
        expect(await store.redeliver(a.id, id, T0 + 500)).toBe(true);
        expect(await delivery(a.id, id)).toMatchObject({ status: 'pending', attempts: 1, nextAttemptAt: T0 + 500, updatedAt: T0 + 500 });
        expect(await claim({ lane: 'first', now: T0 + 500 })).toEqual([]);
        expect(await claim({ lane: 'retry', now: T0 + 500 })).toMatchObject([{ id, attempts: 1 }]);
      });

      it('a delivery queued again keeps its latest 100 attempts (the next included); attempts keeps counting them all', async () => {
        const a = await acct();
        const w = await hook(a.id);
        const id = (await publish(a.id)).deliveries[0]!.id;
        const [c] = await claim();
        await store.recordAttempts([record(c!, 'A', 'failed')]);
        // As if it had been redelivered 103 more times: attempts 2…104 in its log.
        for (let no = 2; no <= 104; no++) {
          await store.q.run(
            `INSERT INTO attempts (id, delivery_id, attempt_no, started_at, duration_ms, status_code, success, error_kind, error_message, request_headers, response_headers, response_body, response_truncated)
             VALUES (?, ?, ?, ?, 5, 500, 0, 'http_status', 'HTTP 500', '{}', '{}', 'no', 0)`,
            [newId('att', T0 + no), id, no, T0 + no],
          );
        }
        await store.q.run(`UPDATE deliveries SET attempts = 104, status = 'failed' WHERE id = ?`, [id]);
        const kept = async () => (await store.q.all<{ no: number | string }>('SELECT attempt_no AS no FROM attempts WHERE delivery_id = ? ORDER BY attempt_no', [id])).map((r) => Number(r.no));
        expect(await kept()).toHaveLength(104);
        expect(await store.redeliver(a.id, id, T0 + 500)).toBe(true);
        expect(await kept()).toEqual(Array.from({ length: 99 }, (_, i) => i + 6)); // 6…104, and the next makes 100
        expect(await delivery(a.id, id)).toMatchObject({ attempts: 104 });
        // Recovering failed deliveries prunes the same way.
        await store.q.run(`UPDATE deliveries SET attempts = 110, status = 'failed', lease_until = NULL WHERE id = ?`, [id]);
        expect((await store.recoverFailed(a.id, w.id, { since: T0 - DAY, until: T0 + DAY }, T0 + 600)).queued).toBe(1);
        expect((await kept())[0]).toBe(12);
      });

      it('recoverFailed queues the failed deliveries of one webhook created in a window, and goes on from a cursor', async () => {
        const HOUR = 3_600_000;
        const a = await acct();
        const w = await hook(a.id);
        const other = await hook(a.id); // same account, another webhook: never touched
        const ids: string[] = []; // w's deliveries, created an hour apart
        for (let i = 0; i < 5; i++) ids.push((await publish(a.id, { now: T0 + i * HOUR })).deliveries.find((d) => d.webhookId === w.id)!.id);
        const leased = await claim({ now: T0 + DAY, limit: 20, endpointLimit: 20 });
        expect(leased).toHaveLength(10);
        // All failed but w's third, which succeeded.
        await store.recordAttempts(leased.map((c) => record(c, 'A', c.id === ids[2] ? 'succeeded' : 'failed')), T0 + DAY);
        // A failed Test Connection of w, inside the window: pings are not sent again.
        const pingId = newId('dlv', T0 + HOUR + 1);
        await store.recordPing({ accountId: a.id, webhookId: w.id, data: '{}', deliveryId: pingId, now: T0 + HOUR + 1, attempt: attempt(pingId, 1), succeeded: false, error: 'HTTP 500' });
        const now = T0 + DAY + 1000;
        const window = { since: T0 + HOUR, until: T0 + 4 * HOUR };

        expect(await store.recoverFailed((await acct()).id, w.id, window, now)).toEqual({ queued: 0, lastId: null, retry: false }); // another account's webhook id
        expect(await store.recoverFailed(a.id, w.id, window, now)).toEqual({ queued: 2, lastId: null, retry: true });
        const status = async (id: string) => (await delivery(a.id, id)).status;
        expect(await Promise.all(ids.map(status))).toEqual(['failed', 'pending', 'succeeded', 'pending', 'failed']);
        expect(await delivery(a.id, ids[1]!)).toMatchObject({ attempts: 1, nextAttemptAt: now, updatedAt: now });
        expect(await status(pingId)).toBe('failed');
        expect((await store.listDeliveries({ accountId: a.id, webhookId: other.id, status: 'failed', limit: 10 }))).toHaveLength(5);
        expect((await claim({ lane: 'retry', now, limit: 20, endpointLimit: 20 })).map((c) => c.id).sort()).toEqual([ids[1], ids[3]].sort());
        // Queued ones are no longer failed: a second call over the same window queues nothing.
        expect(await store.recoverFailed(a.id, w.id, window, now)).toEqual({ queued: 0, lastId: null, retry: false });

        // Bounded calls: two rows looked at per call, then go on from the cursor.
        const whole = { since: T0, until: T0 + DAY, chunk: 2, scan: 2 };
        const first = await store.recoverFailed(a.id, other.id, whole, now);
        expect(first.queued).toBe(2);
        expect(first.lastId).not.toBeNull();
        const second = await store.recoverFailed(a.id, other.id, { ...whole, afterId: first.lastId }, now);
        const third = await store.recoverFailed(a.id, other.id, { ...whole, afterId: second.lastId }, now);
        expect([second.queued, third.queued, third.lastId]).toEqual([2, 1, null]);
        expect(await store.listDeliveries({ accountId: a.id, webhookId: other.id, status: 'failed', limit: 10 })).toEqual([]);
      });

      it('recoverFailed counts rows of every status toward its bound, leaves leased and succeeded ones alone, and sends never-attempted ones as first attempts', async () => {
        const a = await acct();
        const w = await hook(a.id);
        for (let i = 0; i < 3; i++) await publish(a.id, { now: T0 + i });
        const [ok1, ok2, ok3] = await claim({ now: T0 + 10, limit: 3 });
        await store.recordAttempts([ok1!, ok2!, ok3!].map((c) => record(c, 'A', 'succeeded')), T0 + 20);
        // Three succeeded rows: a call looking at two of them stops with a cursor, queuing nothing.
        const whole = { since: T0, until: T0 + DAY, chunk: 2, scan: 2 };
        const first = await store.recoverFailed(a.id, w.id, whole, T0 + 30);
        expect(first).toEqual({ queued: 0, lastId: ok2!.id, retry: false });
        expect(await store.recoverFailed(a.id, w.id, { ...whole, afterId: first.lastId }, T0 + 30)).toEqual({ queued: 0, lastId: null, retry: false });

        // One leased right now, one that failed without ever being sent (its webhook was off).
        const leasedId = (await publish(a.id, { now: T0 + 40 })).deliveries[0]!.id;
        const neverSentId = (await publish(a.id, { now: T0 + 41 })).deliveries[0]!.id;
        const [leased, neverSent] = await claim({ owner: 'W', now: T0 + 50, limit: 2 });
        expect([leased!.id, neverSent!.id]).toEqual([leasedId, neverSentId]);
        await store.failWithoutAttempt([neverSentId], 'W', 'webhook disabled', T0 + 60);
        expect(await store.recoverFailed(a.id, w.id, { since: T0, until: T0 + DAY }, T0 + 70)).toEqual({ queued: 1, lastId: null, retry: false });
        expect(await delivery(a.id, leasedId)).toMatchObject({ status: 'pending', attempts: 0 }); // still W's: V's claim below does not get it
        expect(await Promise.all([ok1!.id, ok2!.id, ok3!.id].map(async (id) => (await delivery(a.id, id)).status))).toEqual(['succeeded', 'succeeded', 'succeeded']);
        expect(await claim({ lane: 'first', owner: 'V', now: T0 + 70 })).toMatchObject([{ id: neverSentId, attempts: 0 }]);
      });

      it('the audit log keeps entries per account, newest first, pages by id, goes with retention and with its account', async () => {
        const a = await acct();
        const b = await acct();
        const e1 = await store.recordAudit({ accountId: a.id, at: T0, actor: 'admin_token', action: 'webhook.created', target: 'wh_1', details: { url: 'https://example.com/h', events: ['*'] } });
        const e2 = await store.recordAudit({ accountId: a.id, at: T0 + DAY, actor: 'api_key:key_1', action: 'webhook.updated', target: 'wh_1', details: null });
        await store.recordAudit({ accountId: b.id, at: T0 + DAY, actor: 'admin_token', action: 'account.updated', target: null, details: { plan: 'free' } });
        expect(await store.listAudit(a.id, { limit: 10 })).toEqual([e2, e1]);
        expect(await store.listAudit(a.id, { limit: 1, beforeId: e2.id })).toEqual([e1]);
        expect(e1.details).toEqual({ url: 'https://example.com/h', events: ['*'] });
        // Retention: entries older than the cutoff go, with the delivery history.
        await store.purgeOlderThan(T0 + DAY / 2);
        expect((await store.listAudit(a.id, { limit: 10 })).map((e) => e.id)).toEqual([e2.id]);
        // Deleting the account deletes its log, and only its own.
        await store.deleteAccount(a.id);
        expect(await store.listAudit(a.id, { limit: 10 })).toEqual([]);
        expect(await store.listAudit(b.id, { limit: 10 })).toHaveLength(1);
      });

      it('recordPing keeps a Test Connection in the history, never queued', async () => {
        const a = await acct();
        const w = await hook(a.id, { events: ['content.generated'] });
        const ping = async (ok: boolean, now: number) => {
          const deliveryId = newId('dlv', now);
          const att = attempt(deliveryId, 1, ok ? { statusCode: 200, success: true, errorKind: null, errorMessage: null } : { statusCode: null, errorKind: 'timeout', errorMessage: 'timed out' });
          await store.recordPing({ accountId: a.id, webhookId: w.id, data: '{"ping":true}', deliveryId, now, attempt: att, succeeded: ok, error: ok ? null : 'timed out' });
          return { deliveryId, att };
        };
        const ok = await ping(true, T0);
        const got = (await store.getDelivery(a.id, ok.deliveryId))!;
        expect(got.delivery).toMatchObject({
          webhookId: w.id, eventType: 'ping', status: 'succeeded', attempts: 1, nextAttemptAt: null,
          lastAttemptAt: ok.att.startedAt, lastStatusCode: 200, lastError: null, lastDurationMs: ok.att.durationMs,
        });
        expect(got.event).toMatchObject({ type: 'ping', data: '{"ping":true}', createdAt: T0 });
        expect(got.attempts).toEqual([ok.att]);
        const bad = await ping(false, T0 + 1);
        expect(await delivery(a.id, bad.deliveryId)).toMatchObject({ status: 'failed', lastError: 'timed out', lastStatusCode: null });
        expect(await store.listDeliveries({ accountId: a.id, eventType: 'ping', limit: 10 })).toHaveLength(2);
        expect([...(await claim({ now: T0 + DAY })), ...(await claim({ lane: 'retry', now: T0 + DAY }))]).toEqual([]);
      });
    });

    describe('the delivery queue', () => {
      it('claims first attempts and retries in separate lanes, each when due, with what the sender needs', async () => {
        const a = await acct();
        const w = await hook(a.id);
        const p = await publish(a.id, { data: '{"x":1}', now: T0 });
        expect(await claim({ lane: 'retry' })).toEqual([]);
        expect(await claim({ now: T0 - 1 })).toEqual([]);
        const [c] = await claim();
        expect(c).toEqual({
          id: p.deliveries[0]!.id, accountId: a.id, webhookId: w.id, eventId: p.event.id, eventType: 'content.generated',
          attempts: 0, eventCreatedAt: T0, data: '{"x":1}',
        });
        await store.recordAttempts([record(c!, 'A', 'pending', { nextAttemptAt: T0 + 60_000 })]);
        expect(await claim({ now: T0 + 60_000 })).toEqual([]);
        expect(await claim({ lane: 'retry', now: T0 + 59_999 })).toEqual([]);
        expect(await claim({ lane: 'retry', now: T0 + 60_000 })).toMatchObject([{ id: c!.id, attempts: 1 }]);
      });

      it('hands out the oldest due first, at most `limit`', async () => {
        const a = await acct();
        await hook(a.id);
        const ps = [];
        for (let i = 0; i < 5; i++) ps.push(await publish(a.id, { now: T0 + 10 - i })); // newest published first
        const order = ps.map((p) => p.deliveries[0]!.id).reverse();
        expect((await claim({ limit: 2, now: T0 + 10 })).map((c) => c.id)).toEqual(order.slice(0, 2));
        expect((await claim({ owner: 'B', limit: 2, now: T0 + 10 })).map((c) => c.id)).toEqual(order.slice(2, 4));
      });

      it('a lease keeps others out until it runs out, then anyone may claim', async () => {
        const a = await acct();
        await hook(a.id);
        await publish(a.id);
        const [c] = await claim({ owner: 'A', leaseMs: 30_000 });
        expect(await claim({ owner: 'B', now: T0 + 29_999 })).toEqual([]);
        expect(await claim({ owner: 'A', now: T0 + 1 })).toEqual([]);
        expect(await claim({ owner: 'B', now: T0 + 30_000 })).toMatchObject([{ id: c!.id }]);
      });

      it('endpointLimit counts live leases of every owner', async () => {
        const a = await acct();
        await hook(a.id);
        for (let i = 0; i < 5; i++) await publish(a.id, { now: T0 + i });
        const mine = await claim({ owner: 'A', endpointLimit: 2, now: T0 + 10 });
        expect(mine).toHaveLength(2);
        expect(await claim({ owner: 'B', endpointLimit: 2, now: T0 + 10 })).toEqual([]);
        await store.recordAttempts([record(mine[0]!, 'A', 'succeeded')]);
        expect(await claim({ owner: 'B', endpointLimit: 2, now: T0 + 10 })).toHaveLength(1);
        // Expired leases hold no capacity: at T0 + 10 + 30 s all four pending ones can be taken.
        expect(await claim({ owner: 'C', endpointLimit: 5, now: T0 + 10 + 30_000 })).toHaveLength(4);
      });

      it('a saturated webhook does not stop others from being claimed', async () => {
        const slowAcct = await acct();
        const fastAcct = await acct();
        await hook(slowAcct.id);
        const fast = await hook(fastAcct.id);
        for (let i = 0; i < 10; i++) await publish(slowAcct.id, { now: T0 + i });
        const f = await publish(fastAcct.id, { now: T0 + 100 });
        expect(await claim({ owner: 'A', limit: 1, endpointLimit: 1, now: T0 + 200 })).toHaveLength(1);
        expect(await claim({ owner: 'B', limit: 5, endpointLimit: 1, now: T0 + 200 })).toMatchObject([{ id: f.deliveries[0]!.id, webhookId: fast.id }]);
      });

      it('a webhook that fills up within one claim does not crowd the rest of the batch out', async () => {
        const slowAcct = await acct();
        const fastAcct = await acct();
        const slow = await hook(slowAcct.id);
        const fast = await hook(fastAcct.id);
        for (let i = 0; i < 10; i++) await publish(slowAcct.id, { now: T0 + i }); // older than fast's
        await publish(fastAcct.id, { now: T0 + 100 });
        const got = await claim({ limit: 5, endpointLimit: 2, now: T0 + 200 });
        expect(got.map((c) => c.webhookId)).toEqual([slow.id, slow.id, fast.id]);
      });

      // onlyWebhooks: a refill of named webhooks, one statement on PostgreSQL; the rules are the same.
      for (const onlyWebhooks of [false, true])
      it(`reports which webhooks may still have due deliveries after the claim (backlogged)${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        const [a, b, c] = [await acct(), await acct(), await acct()];
        const [ha, hb, hc] = [await hook(a.id), await hook(b.id), await hook(c.id)];
        for (let i = 0; i < 2; i++) await publish(a.id, { now: T0 + i }); // fits its room: drained
        for (let i = 0; i < 5; i++) await publish(b.id, { now: T0 + 10 + i }); // more than its room
        await publish(c.id, { now: T0 + 20 });
        // c is at its limit before the claim: whether it has more due is unknown, so it counts.
        await claim({ owner: 'X', limit: 1, endpointLimit: 3, webhooks: [hc.id], now: T0 + 100, onlyWebhooks });
        await publish(c.id, { now: T0 + 21 });
        const backlogged = new Set<string>();
        const got = await claim({ owner: 'A', limit: 20, endpointLimit: 3, webhooks: [ha.id, hb.id, hc.id], now: T0 + 100, backlogged, onlyWebhooks });
        expect(got.filter((x) => x.webhookId === ha.id)).toHaveLength(2);
        expect(got.filter((x) => x.webhookId === hb.id)).toHaveLength(3);
        expect(backlogged.has(ha.id)).toBe(false);
        expect(backlogged.has(hb.id)).toBe(true);
        // c had 1 of 3 slots taken, so the claim took the second one and found nothing more.
        expect(got.filter((x) => x.webhookId === hc.id)).toHaveLength(1);
        expect(backlogged.has(hc.id)).toBe(false);
        // Now a is drained and b has 2 left but is full: a stays out, b is in.
        const again = new Set<string>();
        expect(await claim({ owner: 'A', limit: 20, endpointLimit: 3, webhooks: [ha.id, hb.id], now: T0 + 100, backlogged: again, onlyWebhooks })).toEqual([]);
        expect([...again]).toEqual([hb.id]);
      });


      it('a refill of named webhooks: other owners\' leases count, this owner\'s ended attempts do not, the batch limit holds', async () => {
        const a = await acct();
        const w = await hook(a.id);
        const other = await hook(a.id, { url: 'https://example.com/other' });
        for (let i = 0; i < 6; i++) await publish(a.id, { now: T0 + i }); // 6 deliveries each for w and other
        const [b1] = await claim({ owner: 'B', limit: 1, endpointLimit: 4, webhooks: [w.id], onlyWebhooks: true, now: T0 + 100 });
        const [a1] = await claim({ owner: 'A', limit: 1, endpointLimit: 4, webhooks: [w.id], onlyWebhooks: true, now: T0 + 100 });
        expect(b1!.webhookId).toBe(w.id);
        expect(a1!.webhookId).toBe(w.id);
        // w: 2 live leases of 4, but A's own attempt has ended (finished): 3 slots; other: 4.
        // The batch limit of 5 cuts across both and flags both as backlogged. (Which rows it takes
        // differs: PostgreSQL the oldest across both, SQLite each named webhook in turn.)
        const backlogged = new Set<string>();
        const got = await claim({ owner: 'A', limit: 5, endpointLimit: 4, webhooks: [w.id, other.id], finished: [a1!.id], onlyWebhooks: true, now: T0 + 100, backlogged });
        expect(got).toHaveLength(5);
        expect(got.filter((c) => c.webhookId === w.id).length).toBeLessThanOrEqual(3);
        expect(new Set(got.map((c) => c.id)).size).toBe(5);
        expect(got.some((c) => c.id === a1!.id || c.id === b1!.id)).toBe(false);
        expect(got.map((c) => c.data)).toEqual(Array(5).fill('{"n":1}'));
        expect(backlogged).toEqual(new Set([w.id, other.id]));
        // Only the named webhooks are looked at.
        expect(await claim({ owner: 'C', limit: 10, endpointLimit: 10, webhooks: [newId('wh')], onlyWebhooks: true, now: T0 + 100 })).toEqual([]);
      });

      // A webhook's rate limit: a token bucket holding one second of the limit, refilled at the
      // limit and spent by every claim of every owner; the same on both claim paths.
      for (const onlyWebhooks of [false, true])
      it(`leases a rate-limited webhook no more than its bucket holds, refilled at its limit${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        const a = await acct();
        const slow = await hook(a.id, { rateLimit: 3 });
        const free = await hook(a.id, { url: 'https://example.com/free' });
        for (let i = 0; i < 10; i++) await publish(a.id, { now: T0 + i }); // 10 deliveries each
        const both = [slow.id, free.id];
        const o = { limit: 20, endpointLimit: 16, webhooks: both, onlyWebhooks, prefetch: { extra: 8, webhooks: new Set(both) } };
        const ofSlow = (got: ClaimedDelivery[]) => got.filter((x) => x.webhookId === slow.id).length;
        const backlogged = new Set<string>();
        const throttled = new Map<string, number>();
        const first = await claim({ ...o, owner: 'A', now: T0 + 100, backlogged, throttled });
        expect(ofSlow(first)).toBe(3); // a full bucket: one second of the limit, nothing ahead
        expect(first.length - ofSlow(first)).toBe(10); // the other webhook is not held back
        expect(backlogged.has(slow.id)).toBe(true);
        // The bucket is empty: it holds one delivery again a third of a second later.
        expect([...throttled]).toEqual([[slow.id, T0 + 100 + 334]]);
        // Another owner at the same moment finds the bucket empty.
        expect(ofSlow(await claim({ ...o, owner: 'B', now: T0 + 100 }))).toBe(0);
        // 500 ms on it holds 1.5 deliveries: one goes, half of one is kept…
        expect(ofSlow(await claim({ ...o, owner: 'B', now: T0 + 600 }))).toBe(1);
        // …and 0.5 + 0.9 after 300 ms more is one again.
        expect(ofSlow(await claim({ ...o, owner: 'A', now: T0 + 900 }))).toBe(1);
        expect(ofSlow(await claim({ ...o, owner: 'C', now: T0 + 900 }))).toBe(0);
        // However long it rests, it holds one second of the limit at most.
        expect(ofSlow(await claim({ ...o, owner: 'C', now: T0 + 60_000 }))).toBe(3);
      });

      for (const onlyWebhooks of [false, true])
      it(`a rate-limited webhook's retries and first attempts spend one bucket, and a disabled webhook's limit holds nothing back${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        const a = await acct();
        const w = await hook(a.id, { rateLimit: 4 });
        for (let i = 0; i < 6; i++) await publish(a.id, { now: T0 + i });
        // Two of them failed once and are due again.
        const tried = await claim({ owner: 'A', webhooks: [w.id], onlyWebhooks, now: T0 + 100, limit: 2 });
        await store.recordAttempts(tried.map((d) => ({
          attempt: attempt(d.id, 1), owner: 'A', status: 'pending' as const, nextAttemptAt: T0 + 200, error: 'HTTP 500', disableWebhook: null, webhookId: w.id,
        })), T0 + 150);
        // 2 spent at T0+100; 0.4 refilled by T0+200: 2 whole ones, shared by both lanes.
        const first = await claim({ owner: 'B', webhooks: [w.id], onlyWebhooks, now: T0 + 200 });
        const retries = await claim({ owner: 'B', webhooks: [w.id], onlyWebhooks, now: T0 + 200, lane: 'retry' });
        expect(first).toHaveLength(2);
        expect(retries).toEqual([]);
        expect(await claim({ owner: 'C', webhooks: [w.id], onlyWebhooks, now: T0 + 450, lane: 'retry' })).toHaveLength(1);
        // Disabled: its deliveries are claimed to be failed without an attempt, at once.
        await store.updateWebhook(a.id, w.id, { enabled: false }, T0 + 450);
        expect(await claim({ owner: 'D', webhooks: [w.id], onlyWebhooks, now: T0 + 450 })).toHaveLength(2);
        expect(await claim({ owner: 'D', webhooks: [w.id], onlyWebhooks, now: T0 + 450, lane: 'retry' })).toHaveLength(1);
      });

      for (const onlyWebhooks of [false, true])
      it(`a clock stepped back does not stop a rate-limited webhook; one a little behind adds nothing${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        const a = await acct();
        const w = await hook(a.id, { rateLimit: 2 });
        for (let i = 0; i < 12; i++) await publish(a.id, { now: T0 + i });
        const at = (now: number, owner: string) => claim({ owner, webhooks: [w.id], onlyWebhooks, now, leaseMs: 10 * DAY });
        expect(await at(T0 + 3_600_000, 'A')).toHaveLength(2); // a clock an hour ahead spends the bucket
        expect(await at(T0 + 3_600_500, 'B')).toHaveLength(1); // half a second later: one more
        // The clock is put right: the last spend counts as now, and the bucket refills from then.
        expect(await at(T0 + 1000, 'C')).toHaveLength(0);
        expect(await at(T0 + 2000, 'D')).toHaveLength(2);
        // Up to a second behind the last spend adds nothing, and the later time is kept.
        expect(await at(T0 + 1500, 'E')).toHaveLength(0);
        expect(await at(T0 + 2500, 'F')).toHaveLength(1);
      });

      it('a new rate limit starts with a full bucket; other changes to the webhook keep what is left', async () => {
        const a = await acct();
        const w = await hook(a.id, { rateLimit: 2 });
        for (let i = 0; i < 8; i++) await publish(a.id, { now: T0 + i });
        const at = { webhooks: [w.id], now: T0 + 100 };
        expect(await claim({ ...at, owner: 'A' })).toHaveLength(2);
        await store.updateWebhook(a.id, w.id, { description: 'renamed' }, T0 + 100);
        expect(await claim({ ...at, owner: 'B' })).toHaveLength(0);
        await store.updateWebhook(a.id, w.id, { rateLimit: 1 }, T0 + 100);
        expect(await claim({ ...at, owner: 'B' })).toHaveLength(1);
        await store.updateWebhook(a.id, w.id, { rateLimit: null }, T0 + 100);
        expect((await store.getWebhook(a.id, w.id))!.rateLimit).toBeNull();
        expect(await claim({ ...at, owner: 'C' })).toHaveLength(5);
      });

      it('owners claiming at once share one bucket', async () => {
        const a = await acct();
        const w = await hook(a.id, { rateLimit: 5 });
        for (let i = 0; i < 30; i++) await publish(a.id, { now: T0 + i });
        const stores = opts.multiProcess ? [store, await openPeer(), await openPeer(), await openPeer()] : [store, store, store, store];
        const got = await Promise.all(stores.map((s, i) => claim({ owner: `O${i}`, webhooks: [w.id], onlyWebhooks: i % 2 === 0, now: T0 + 100, limit: 20, endpointLimit: 20 }, s)));
        expect(got.flat()).toHaveLength(5);
        expect(new Set(got.flat().map((x) => x.id)).size).toBe(5);
      });

      it('a refill of named webhooks counts the slots exactly: live leases of every owner, minus this owner\'s ended attempts', async () => {
        const a = await acct();
        const w = await hook(a.id);
        for (let i = 0; i < 8; i++) await publish(a.id, { now: T0 + i });
        const named = { limit: 10, endpointLimit: 4, webhooks: [w.id], onlyWebhooks: true, now: T0 + 100 } as const;
        const [b1] = await claim({ ...named, owner: 'B', limit: 1 });
        const [a1] = await claim({ ...named, owner: 'A', limit: 1 });
        // 4 slots, 2 taken: C gets 2 (A's attempt counts for C, whatever A knows).
        expect(await claim({ ...named, owner: 'C' })).toHaveLength(2);
        // Full for everyone, except that A's own attempt has ended: A gets exactly that slot.
        expect(await claim({ ...named, owner: 'D' })).toEqual([]);
        const again = await claim({ ...named, owner: 'A', finished: [a1!.id] });
        expect(again).toHaveLength(1);
        expect([a1!.id, b1!.id]).not.toContain(again[0]!.id);
      });

      // Prefetch on a database several processes share: leasing ahead is what one owner may do
      // alone on a webhook; the requests open over the cluster must never exceed endpointLimit.
      for (const onlyWebhooks of [false, true])
      it(`prefetch leases ahead only a webhook no other owner holds leases of${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        const a = await acct();
        const w = await hook(a.id);
        const other = await hook(a.id, { url: 'https://example.com/other' });
        for (let i = 0; i < 14; i++) await publish(a.id, { now: T0 + i }); // 14 deliveries each for w and other
        const fast = (owner: string) => ({
          owner, limit: 20, endpointLimit: 2, webhooks: [w.id], onlyWebhooks, now: T0 + 100, prefetch: { extra: 4, webhooks: new Set([w.id]) },
        });
        const ofW = (cs: ClaimedDelivery[]) => cs.filter((c) => c.webhookId === w.id);
        // Alone on w, A gets its 2 slots and 4 ahead; `other` is not fast: its 2 slots only.
        const mine = await claim(fast('A'));
        expect(ofW(mine)).toHaveLength(6);
        if (!onlyWebhooks) expect(mine.filter((c) => c.webhookId === other.id)).toHaveLength(2);
        // B sees 6 live leases on w against a limit of 2: nothing, prefetch or not.
        expect(ofW(await claim(fast('B')))).toEqual([]);
        // Five of A's attempts are written: one lease of A's is left, so B may send 1, not 1 + 4.
        await store.recordAttempts(ofW(mine).slice(0, 5).map((c) => record(c, 'A', 'succeeded')));
        const theirs = ofW(await claim(fast('B')));
        expect(theirs).toHaveLength(1);
        // Now w is shared: A gets no room beyond the limit either (1 + 1 of 2 are live).
        expect(ofW(await claim(fast('A')))).toEqual([]);
        // A's last attempt is written: B holds 1, so A may lease 1 more, and nothing ahead.
        await store.recordAttempts([record(ofW(mine)[5]!, 'A', 'succeeded')]);
        expect(ofW(await claim(fast('A')))).toHaveLength(1);
        // Once B's lease is written too and A's is the only one, A leases ahead again.
        await store.recordAttempts([record(theirs[0]!, 'B', 'succeeded')]);
        expect(ofW(await claim(fast('A')))).toHaveLength(5); // 6 allowed, 1 of A's own live (6 of 14 left)
      });

      for (const onlyWebhooks of [false, true])
      it(`prefetch: rows leased ahead come after what every named webhook may send now${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        // w is fast (2 + 4 ahead) and its deliveries are the oldest; v is not. A batch of 4
        // gives each its 2 sendable rows before any of w's rows ahead.
        const [a, b] = [await acct(), await acct()];
        const w = await hook(a.id);
        const v = await hook(b.id);
        for (let i = 0; i < 8; i++) await publish(a.id, { now: T0 + i });
        for (let i = 0; i < 8; i++) await publish(b.id, { now: T0 + 50 + i });
        const got = await claim({
          limit: 4, endpointLimit: 2, webhooks: [w.id, v.id], onlyWebhooks, now: T0 + 100, prefetch: { extra: 4, webhooks: new Set([w.id]) },
        });
        expect(got.filter((c) => c.webhookId === w.id)).toHaveLength(2);
        expect(got.filter((c) => c.webhookId === v.id)).toHaveLength(2);
      });

      for (const onlyWebhooks of [false, true])
      it(`prefetch.max caps the rows leased ahead over all webhooks, not the rows sent now${onlyWebhooks ? ', named webhooks only' : ''}`, async () => {
        // w and v are both fast (2 + 4 ahead each): without the cap a batch of 20 takes 12.
        const [a, b] = [await acct(), await acct()];
        const w = await hook(a.id);
        const v = await hook(b.id);
        for (let i = 0; i < 8; i++) await publish(a.id, { now: T0 + i });
        for (let i = 0; i < 8; i++) await publish(b.id, { now: T0 + 50 + i });
        const fastBoth = new Set([w.id, v.id]);
        const backlogged = new Set<string>();
        const got = await claim({
          limit: 20, endpointLimit: 2, webhooks: [w.id, v.id], onlyWebhooks, now: T0 + 100, prefetch: { extra: 4, webhooks: fastBoth, max: 3 }, backlogged,
        });
        // 2 + 2 sendable, then the 3 oldest rows ahead (w's).
        expect(got.filter((c) => c.webhookId === w.id)).toHaveLength(5);
        expect(got.filter((c) => c.webhookId === v.id)).toHaveLength(2);
        // Rows the cap left behind are reported, or the worker would not come back for them.
        expect([...backlogged].sort()).toEqual([w.id, v.id].sort());
        const none = await claim({ limit: 20, endpointLimit: 2, webhooks: [w.id, v.id], onlyWebhooks, now: T0 + 100, prefetch: { extra: 4, webhooks: fastBoth, max: 0 } });
        expect(none).toHaveLength(0); // both at their 2 requests: nothing to send, nothing ahead
      });

      it('recordAttempts writes status, attempts, next time and the attempt; frees the lease', async () => {
        const a = await acct();
        await hook(a.id);
        await publish(a.id);
        await publish(a.id, { now: T0 + 1 });
        const [c1, c2] = await claim({ now: T0 + 1 });
        const r1 = record(c1!, 'A', 'pending', { nextAttemptAt: T0 + 60_000, error: 'HTTP 503', att: { startedAt: T0 + 5, durationMs: 321, statusCode: 503 } });
        const r2 = record(c2!, 'A', 'failed', { error: 'connection refused', att: { statusCode: null, errorKind: 'refused' } });
        await store.recordAttempts([r1, r2], T0 + 400);
        expect(await delivery(a.id, c1!.id)).toMatchObject({
          status: 'pending', attempts: 1, nextAttemptAt: T0 + 60_000, lastAttemptAt: T0 + 5, lastStatusCode: 503, lastError: 'HTTP 503', lastDurationMs: 321, updatedAt: T0 + 400,
        });
        expect(await delivery(a.id, c2!.id)).toMatchObject({ status: 'failed', attempts: 1, nextAttemptAt: null, lastStatusCode: null, lastError: 'connection refused' });
        expect((await store.getDelivery(a.id, c1!.id))!.attempts).toEqual([r1.attempt]);
        expect((await store.queueStats(T0 + 400)).leased).toBe(0);
        await expect(store.recordAttempts([])).resolves.toBe(0);
      });

      it('an outcome batch written again (its commit answer was lost) goes through and adds nothing', async () => {
        const a = await acct();
        await hook(a.id);
        await publish(a.id);
        const [c] = await claim({ owner: 'A' });
        const r = record(c!, 'A', 'succeeded');
        await store.recordAttempts([r], T0 + 400);
        await expect(store.recordAttempts([r], T0 + 500)).resolves.toBe(1); // not applied again
        expect((await store.getDelivery(a.id, c!.id))!.attempts).toEqual([r.attempt]);
        expect(await delivery(a.id, c!.id)).toMatchObject({ status: 'succeeded', attempts: 1, updatedAt: T0 + 400 });
      });

      it('a record from an owner that lost its lease does not overwrite the delivery', async () => {
        const a = await acct();
        await hook(a.id);
        await publish(a.id);
        const [c] = await claim({ owner: 'A', leaseMs: 1000 });
        expect(await claim({ owner: 'B', now: T0 + 1000 })).toMatchObject([{ id: c!.id }]);
        await store.recordAttempts([record(c!, 'A', 'succeeded')]);
        expect(await delivery(a.id, c!.id)).toMatchObject({ status: 'pending', attempts: 0, lastStatusCode: null });
        expect((await store.queueStats(T0 + 1001)).leased).toBe(1); // B still holds it
        await store.recordAttempts([record(c!, 'B', 'failed', { error: 'HTTP 500' })]);
        expect(await delivery(a.id, c!.id)).toMatchObject({ status: 'failed', attempts: 1, lastError: 'HTTP 500' });
        // Both requests really happened, so both stay in the history.
        expect((await store.getDelivery(a.id, c!.id))!.attempts).toHaveLength(2);
      });

      it('a redelivery after a lease ran out is not undone by that owner\'s late outcome', async () => {
        const a = await acct();
        await hook(a.id);
        await publish(a.id);
        const [c] = await claim({ owner: 'W', leaseMs: 1000 });
        expect(await store.redeliver(a.id, c!.id, T0 + 1000)).toBe(true);
        await store.recordAttempts([record(c!, 'W', 'failed', { error: 'HTTP 500' })], T0 + 1500);
        // W's attempt happened, so the history keeps it; the delivery stays queued.
        expect(await delivery(a.id, c!.id)).toMatchObject({ status: 'pending', attempts: 0 });
        expect((await store.getDelivery(a.id, c!.id))!.attempts).toHaveLength(1);
        expect(await claim({ owner: 'V', now: T0 + 1500 })).toMatchObject([{ id: c!.id }]);
      });

      it('a 410 record disables the webhook with the reason', async () => {
        const a = await acct();
        const w = await hook(a.id);
        await publish(a.id);
        const [c] = await claim();
        await store.recordAttempts([record(c!, 'A', 'failed', { error: 'HTTP 410', disableWebhook: { reason: 'The endpoint answered 410 Gone', url: w.url }, att: { statusCode: 410 } })], T0 + 9);
        expect(await store.getWebhook(a.id, w.id)).toMatchObject({ enabled: false, disabledReason: 'The endpoint answered 410 Gone', updatedAt: T0 + 9 });
        expect((await publish(a.id)).deliveries).toEqual([]);
      });

      it('a 410 from a URL the webhook has left, or from an outcome that came too late, disables nothing', async () => {
        const a = await acct();
        const w = await hook(a.id);
        await publish(a.id);
        await publish(a.id, { now: T0 + 1 });
        const [c1, c2] = await claim({ leaseMs: 1000, now: T0 + 1 });
        const gone = (c: ClaimedDelivery, owner = 'A') => record(c, owner, 'failed', { error: 'HTTP 410', disableWebhook: { reason: 'Gone', url: w.url }, att: { statusCode: 410 } });
        // Moved to a new URL while the request to the old one was out.
        await store.updateWebhook(a.id, w.id, { url: 'https://example.org/moved' }, T0 + 5);
        await store.recordAttempts([gone(c1!)], T0 + 9);
        expect(await store.getWebhook(a.id, w.id)).toMatchObject({ enabled: true, disabledReason: null, url: 'https://example.org/moved' });
        expect(await delivery(a.id, c1!.id)).toMatchObject({ status: 'failed', attempts: 1 });
        // Same URL again, but the lease ran out and another worker took the delivery over.
        await store.updateWebhook(a.id, w.id, { url: w.url }, T0 + 10);
        expect(await claim({ owner: 'B', now: T0 + 1001 })).toMatchObject([{ id: c2!.id }]);
        expect(await store.recordAttempts([gone(c2!)], T0 + 1002)).toBe(1);
        expect(await store.getWebhook(a.id, w.id)).toMatchObject({ enabled: true });
      });

      it('a late outcome of the owner holding the lease again leaves the newer attempt\'s state', async () => {
        const a = await acct();
        await hook(a.id);
        await publish(a.id);
        const [c] = await claim({ owner: 'A', leaseMs: 1000 });
        // A's request outlives its lease; B sends attempt 1 and schedules the retry.
        const [b] = await claim({ owner: 'B', now: T0 + 1000 });
        await store.recordAttempts([record(b!, 'B', 'pending', { nextAttemptAt: T0 + 2000 })], T0 + 1500);
        // A claims the retry before its own attempt 1's outcome is written.
        expect(await claim({ owner: 'A', now: T0 + 2000, lane: 'retry' })).toMatchObject([{ id: c!.id, attempts: 1 }]);
        expect(await store.recordAttempts([record(c!, 'A', 'succeeded')], T0 + 2001)).toBe(1);
        expect(await delivery(a.id, c!.id)).toMatchObject({ status: 'pending', attempts: 1, updatedAt: T0 + 1500 });
        expect((await store.queueStats(T0 + 2001)).leased).toBe(1); // A still holds the retry
        // Both requests happened: both are in the history.
        expect((await store.getDelivery(a.id, c!.id))!.attempts.map((x) => x.attemptNo)).toEqual([1, 1]);
      });

      it('an outcome of a delivery deleted while its request was out is dropped, and the rest of the batch written', async () => {
        const a = await acct();
        const w1 = await hook(a.id);
        await publish(a.id);
        const [c] = await claim();
        const w2 = await hook(a.id, {}, T0 + 1);
        await publish(a.id, { now: T0 + 2 });
        const [d] = (await claim({ now: T0 + 2 })).filter((x) => x.webhookId === w2.id);
        expect(await store.deleteWebhook(a.id, w1.id)).toBe(true);
        expect(await store.recordAttempts([record(c!, 'A', 'succeeded'), record(d!, 'A', 'succeeded')], T0 + 3)).toBe(1);
        expect(await delivery(a.id, d!.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
        expect(await count('attempts')).toBe(1);
      });

      it('failWithoutAttempt fails only the caller\'s leased deliveries, with the reason and no attempt', async () => {
        const a = await acct();
        await hook(a.id);
        for (let i = 0; i < 3; i++) await publish(a.id, { now: T0 + i });
        const mine = await claim({ owner: 'A', limit: 2, now: T0 + 5 });
        const [theirs] = await claim({ owner: 'B', now: T0 + 5 });
        await store.failWithoutAttempt([...mine.map((c) => c.id), theirs!.id], 'A', 'webhook disabled', T0 + 50);
        for (const c of mine) {
          expect(await delivery(a.id, c.id)).toMatchObject({ status: 'failed', attempts: 0, nextAttemptAt: null, lastError: 'webhook disabled', updatedAt: T0 + 50 });
        }
        expect(await delivery(a.id, theirs!.id)).toMatchObject({ status: 'pending', lastError: null });
        expect(await count('attempts')).toBe(0);
        expect((await store.queueStats(T0 + 50)).leased).toBe(1);
        await expect(store.failWithoutAttempt([], 'A', 'x')).resolves.toBeUndefined();
      });

      it("releaseLeases gives back only the caller's leases, due again at once", async () => {
        const a = await acct();
        await hook(a.id);
        for (let i = 0; i < 3; i++) await publish(a.id, { now: T0 + i });
        const mine = await claim({ owner: 'A', limit: 2, now: T0 + 5 });
        const [theirs] = await claim({ owner: 'B', now: T0 + 5 });
        await store.releaseLeases([...mine.map((c) => c.id), theirs!.id], 'A');
        expect((await claim({ owner: 'C', now: T0 + 5 })).map((c) => c.id)).toEqual(mine.map((c) => c.id));
        await expect(store.releaseLeases([], 'A')).resolves.toBeUndefined();
      });

      it('queueStats and countByStatus', async () => {
        const zero = { pendingFirst: 0, pendingRetry: 0, dueNow: 0, oldestDueAgeMs: 0, leased: 0 };
        expect(await store.queueStats(T0)).toEqual(zero);
        expect(await store.countByStatus()).toEqual({ pending: 0, succeeded: 0, failed: 0 });
        const a = await acct();
        await hook(a.id);
        for (const t of [T0, T0 + 10, T0 + 20_000, T0 + 30_000]) await publish(a.id, { now: t });
        const [d0] = await claim({ limit: 1, now: T0 + 1000 });
        await store.recordAttempts([record(d0!, 'A', 'pending', { nextAttemptAt: T0 + 5000 })]);
        await claim({ limit: 1, now: T0 + 1000 }); // d1 leased
        expect(await store.queueStats(T0 + 1000)).toEqual({ pendingFirst: 3, pendingRetry: 1, dueNow: 1, oldestDueAgeMs: 990, leased: 1 });
        const [d2, d3] = await claim({ owner: 'B', now: T0 + 30_000 });
        await store.recordAttempts([record(d2!, 'B', 'succeeded'), record(d3!, 'B', 'failed')]);
        expect(await store.countByStatus()).toEqual({ pending: 2, succeeded: 1, failed: 1 });
      });

      it.runIf(opts.multiProcess)('several processes never claim one delivery twice and share the endpoint limit', async () => {
        const a = await acct();
        const hooks = [await hook(a.id), await hook(a.id), await hook(a.id)];
        await store.publishMany(Array.from({ length: 20 }, (_, i) => input(a.id, { now: T0 + i })));
        const workers = await Promise.all(Array.from({ length: 4 }, () => openPeer()));

        // All at once, nobody finishing: 3 webhooks × endpointLimit 3 is all there is to take.
        const first = (await Promise.all(workers.map((s, i) => claim({ owner: `w${i}`, now: T0 + 100, leaseMs: 60_000, endpointLimit: 3 }, s)))).flat();
        expect(new Set(first.map((c) => c.id)).size).toBe(first.length);
        expect(first).toHaveLength(9);
        for (const h of hooks) expect(first.filter((c) => c.webhookId === h.id)).toHaveLength(3);

        // Drain after those leases ran out: claim and record concurrently until nothing is pending.
        const now = T0 + 100 + 60_000;
        const claimed = new Map<string, number>();
        const inflight = new Map<string, number>();
        let maxInflight = 0;
        const work = async (s: Store, owner: string) => {
          for (let idle = 0; idle < 500; ) {
            const batch = await claim({ owner, now, leaseMs: DAY, limit: 4, endpointLimit: 2 }, s);
            if (!batch.length) {
              if ((await s.countByStatus()).pending === 0) return;
              idle++;
              await new Promise((r) => setTimeout(r, 2));
              continue;
            }
            for (const c of batch) {
              claimed.set(c.id, (claimed.get(c.id) ?? 0) + 1);
              inflight.set(c.webhookId, (inflight.get(c.webhookId) ?? 0) + 1);
              maxInflight = Math.max(maxInflight, inflight.get(c.webhookId)!);
            }
            await new Promise((r) => setTimeout(r, 1)); // "sending"
            // Count down before recording: the database frees capacity only at commit, so this
            // count never exceeds the database's, and exceeding the limit here is a real breach.
            for (const c of batch) inflight.set(c.webhookId, inflight.get(c.webhookId)! - 1);
            await s.recordAttempts(batch.map((c) => record(c, owner, 'succeeded')));
          }
          throw new Error(`${owner} starved`);
        };
        await Promise.all(workers.map((s, i) => work(s, `d${i}`)));
        expect(claimed.size).toBe(60);
        expect([...claimed.values()].every((n) => n === 1)).toBe(true);
        expect(maxInflight).toBeLessThanOrEqual(2);
        expect(await store.countByStatus()).toEqual({ pending: 0, succeeded: 60, failed: 0 });
      });
    });

    describe('cluster jobs and retention', () => {
      it('claimJob: once per period, per name', async () => {
        expect(await store.claimJob('purge', 'A', 60_000, T0)).toBe(true);
        expect(await store.claimJob('purge', 'B', 60_000, T0 + 59_999)).toBe(false);
        expect(await store.claimJob('other', 'B', 60_000, T0)).toBe(true);
        expect(await store.claimJob('purge', 'B', 60_000, T0 + 60_000)).toBe(true);
      });

      it('renewJob keeps a running job claimed past its period, for its owner only', async () => {
        expect(await store.claimJob('long', 'A', 1000, T0)).toBe(true);
        await store.renewJob('long', 'A', 1000, T0 + 900); // now claimed until T0 + 1900
        expect(await store.claimJob('long', 'B', 1000, T0 + 1500)).toBe(false);
        await store.renewJob('long', 'B', 1000, T0 + 1600); // not B's to renew: no effect
        expect(await store.claimJob('long', 'B', 1000, T0 + 1900)).toBe(true);
      });

      it('claimJob: exactly one winner per period among concurrent callers', async () => {
        const ss = await peers(5);
        for (let k = 0; k < 4; k++) {
          const won = await Promise.all(ss.map((s, i) => s.claimJob('race', `p${i}`, 60_000, T0 + k * 60_000)));
          expect(won.filter(Boolean)).toHaveLength(1);
        }
      });

      it('purgeOlderThan finds deliveries by the creation time in their ids: made 1 ms before the cutoff goes, at the cutoff stays', async () => {
        const a = await acct();
        await hook(a.id);
        const cutoff = T0 + 30 * DAY;
        const before = await publish(a.id, { now: cutoff - 1 });
        const at = await publish(a.id, { now: cutoff });
        const got = await claim({ now: cutoff + 1 });
        await store.recordAttempts(got.map((c) => record(c, 'A', 'succeeded')));
        expect(await store.purgeOlderThan(cutoff)).toMatchObject({ deliveries: 1 });
        expect((await store.listDeliveries({ accountId: a.id, limit: 10 })).map((d) => d.id)).toEqual([at.deliveries[0]!.id]);
        expect(before.deliveries[0]!.id < at.deliveries[0]!.id).toBe(true);
      });

      it('purgeOlderThan deletes finished deliveries, their attempts and orphan events before the cutoff', async () => {
        const a = await acct();
        await hook(a.id);
        const b = await acct(); // no webhooks: its event has no deliveries
        for (let i = 0; i < 3; i++) await publish(a.id, { now: T0 + i });
        await publish(b.id, { now: T0 });
        const fresh = await publish(a.id, { now: T0 + 40 * DAY });
        const old = await claim({ now: T0 + 10, leaseMs: 100 * DAY });
        await store.recordAttempts([record(old[0]!, 'A', 'succeeded'), record(old[1]!, 'A', 'failed')]);
        const [f] = await claim({ now: T0 + 40 * DAY });
        expect(f!.id).toBe(fresh.deliveries[0]!.id);
        await store.recordAttempts([record(f!, 'A', 'succeeded')]);
        await store.releaseLeases([old[2]!.id], 'A'); // still pending: kept however old
        const now = Date.now(); // links and sessions expire against the real clock
        await store.createPortalLink('gone', a.id, now - 1000);
        await store.createPortalLink('live', a.id, now + 60_000);
        await store.createSession({ tokenHash: 'gone', accountId: a.id, csrfToken: 'c', expiresAt: now - 1000 });
        await store.createSession({ tokenHash: 'live', accountId: null, csrfToken: 'c', expiresAt: now + 60_000 });
        // Rotated-out secrets: one that no longer signs goes, one that still does stays.
        const spent = await hook(a.id, { secretEnc: 'enc-1' });
        await store.rotateWebhookSecret(a.id, spent.id, 'enc-2', now - 1000);
        const signing = await hook(a.id, { secretEnc: 'enc-3' });
        await store.rotateWebhookSecret(a.id, signing.id, 'enc-4', now + 60_000);

        expect(await store.purgeOlderThan(T0 + 30 * DAY, 1)).toEqual({ deliveries: 2, events: 3 });
        expect((await store.listDeliveries({ accountId: a.id, limit: 10 })).map((d) => d.id).sort()).toEqual([old[2]!.id, fresh.deliveries[0]!.id].sort());
        expect([await count('events'), await count('attempts')]).toEqual([2, 1]);
        expect([await count('portal_links'), await count('sessions')]).toEqual([1, 1]);
        expect(await webhookById(spent.id)).toMatchObject({ secretEnc: 'enc-2', previousSecretEnc: null, previousSecretUntil: null });
        expect(await webhookById(signing.id)).toMatchObject({ secretEnc: 'enc-4', previousSecretEnc: 'enc-3', previousSecretUntil: now + 60_000 });
        expect(await store.purgeOlderThan(T0 + 30 * DAY)).toEqual({ deliveries: 0, events: 0 });
      });
    });

    describe('dashboard sign-in', () => {
      /** Uses a link as the dashboard does: the session it opens is named after the link. */
      const use = (s: Store, link: string, now: number, replace: string | null = null) =>
        s.usePortalLink(link, { replace, session: (accountId) => ({ tokenHash: `sess-of-${link}`, accountId, csrfToken: 'c', expiresAt: now + 1000 }) }, now);

      it('a portal link works once, and not after it expires; peeking spends nothing', async () => {
        const a = await acct();
        await store.createPortalLink('tok-1', a.id, T0 + 60_000);
        expect(await store.peekPortalLink('tok-1', T0)).toBe(a.id);
        expect(await store.peekPortalLink('tok-1', T0)).toBe(a.id);
        expect(await use(store, 'tok-1', T0)).toBe(a.id);
        expect(await store.getSession('sess-of-tok-1', T0)).toMatchObject({ accountId: a.id });
        expect(await store.peekPortalLink('tok-1', T0 + 1)).toBeNull();
        expect(await use(store, 'tok-1', T0 + 1)).toBeNull();
        await store.createPortalLink('tok-2', a.id, T0 + 60_000);
        expect(await store.peekPortalLink('tok-2', T0 + 60_000)).toBeNull();
        expect(await use(store, 'tok-2', T0 + 60_000)).toBeNull();
        expect(await store.getSession('sess-of-tok-2', T0)).toBeNull();
        expect(await use(store, 'unknown', T0)).toBeNull();
      });

      it('using a link ends the session it replaces, and with a refused audit entry changes nothing', async () => {
        const a = await acct();
        await store.createSession({ tokenHash: 'old', accountId: a.id, csrfToken: 'c0', expiresAt: T0 + 1000 }, T0);
        await store.createPortalLink('tok-r', a.id, T0 + 60_000);
        const refused = store.usePortalLink('tok-r', {
          replace: 'old',
          session: (accountId) => ({ tokenHash: 'new', accountId, csrfToken: 'c', expiresAt: T0 + 1000 }),
          audit: (accountId) => ({ accountId: `${accountId}-gone`, at: T0, actor: 'portal_link', action: 'portal_session.opened', target: null, details: null }),
        }, T0);
        await expect(refused).rejects.toThrow(); // the entry names no account: its foreign key refuses it
        expect(await store.getSession('old', T0)).not.toBeNull();
        expect(await store.getSession('new', T0)).toBeNull();
        expect(await store.peekPortalLink('tok-r', T0)).toBe(a.id);
        expect(await use(store, 'tok-r', T0, 'old')).toBe(a.id);
        expect(await store.getSession('old', T0)).toBeNull();
      });

      it('concurrent uses of one portal link: exactly one succeeds', async () => {
        const a = await acct();
        await store.createPortalLink('tok', a.id, T0 + 60_000);
        const got = await Promise.all((await peers(4)).map((s) => use(s, 'tok', T0)));
        expect(got.filter((x) => x !== null)).toEqual([a.id]);
      });

      it('sessions: read until they expire, deleted on sign-out; admin sessions have no account and keep their token tag', async () => {
        const a = await acct();
        await store.createSession({ tokenHash: 's1', accountId: a.id, csrfToken: 'c1', expiresAt: T0 + 1000 }, T0);
        await store.createSession({ tokenHash: 's2', accountId: null, csrfToken: 'c2', expiresAt: T0 + 1000, adminTag: 'tag-of-the-token' }, T0);
        expect(await store.getSession('s1', T0)).toEqual({ accountId: a.id, csrfToken: 'c1', expiresAt: T0 + 1000, adminTag: null });
        expect(await store.getSession('s2', T0 + 999)).toEqual({ accountId: null, csrfToken: 'c2', expiresAt: T0 + 1000, adminTag: 'tag-of-the-token' });
        expect(await store.getSession('s1', T0 + 1000)).toBeNull();
        await store.deleteSession('s1');
        expect(await store.getSession('s1', T0)).toBeNull();
        expect(await store.getSession('s2', T0)).not.toBeNull();
      });
    });

    it('text with NUL characters is stored the same way on every backend', async () => {
      const a = await store.createAccount('A\u0000B', 'pro', T0);
      expect((await store.getAccount(a.id))!.name).toBe('A\uFFFDB');
      await hook(a.id);
      await publish(a.id);
      const [c] = await claim();
      await store.recordAttempts([record(c!, 'A', 'pending', { error: 'x\u0000y', att: { responseBody: 'a\u0000b', errorMessage: 'bad\u0000' } })]);
      const got = (await store.getDelivery(a.id, c!.id))!;
      expect(got.delivery.lastError).toBe('x\uFFFDy');
      expect(got.attempts[0]).toMatchObject({ responseBody: 'a\uFFFDb', errorMessage: 'bad\uFFFD' });
    });
  });
}
