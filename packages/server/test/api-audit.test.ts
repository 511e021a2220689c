import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardPlugin } from '../src/dashboard/index.js';
import { createAccount, startHerald, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { createApiKey, expectError, query } from './helpers/api-kit.js';

/**
 * The audit log: every change to an account's webhooks, keys, plan and sign-in links leaves an
 * entry naming the credential that made it, readable by the account and the operator, and no
 * entry holds a secret or a custom header value. The worker is off: nothing is delivered.
 */
let h: TestHerald;
let rx: Receiver;
beforeAll(async () => {
  // With the dashboard, whose sign-in links are audited too.
  h = await startHerald({ HERALD_DEV: 'true' }, { worker: false, plugins: [dashboardPlugin()] });
  rx = await startReceiver();
});
afterAll(async () => {
  await h.close();
  await rx.close();
});

type Entry = { id: string; at: string; actor: string; action: string; target: string | null; details: Record<string, unknown> | null };
const log = async (account: string, token?: string): Promise<Entry[]> => {
  const out: Entry[] = [];
  let cursor: string | null = null;
  do {
    const r = await h.api('GET', `/v1/accounts/${account}/audit-events?limit=3${cursor ? `&cursor=${cursor}` : ''}`, undefined, token ? { token } : undefined);
    expect(r.status).toBe(200);
    out.push(...r.body.data);
    cursor = r.body.next_cursor;
  } while (cursor);
  return out;
};

describe('audit log', () => {
  it('records who changed what, newest first, without secrets or header values', async () => {
    const a = await createAccount(h, 'pro', 'Audited');
    const { key, id: keyId } = await createApiKey(h, a);
    const secret = 'whsec_audit-secret-value-1234';
    const headerValue = 'Bearer audit-header-value-5678';
    const wh = (await h.api('POST', `/v1/accounts/${a}/webhooks`, { url: `${rx.url}/a?token=url-token-abc&v=2`, events: ['content.generated'], secret, headers: { Authorization: headerValue } }, { token: key })).body.id as string;
    await h.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, { url: `${rx.url}/b`, enabled: false, headers: { Authorization: headerValue + '-2' } }, { token: key });
    await h.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, {}, { token: key }); // changes nothing: no entry
    const newSecret = 'whsec_audit-new-secret-value-9876';
    await h.api('PATCH', `/v1/accounts/${a}/webhooks/${wh}`, { secret: newSecret, enabled: true, rate_limit: 50 }, { token: key });
    const dlv = (await h.api('POST', `/v1/accounts/${a}/events`, { type: 'content.generated', data: {} })).body.deliveries[0].id as string;
    expect((await h.api('POST', `/v1/accounts/${a}/deliveries/${dlv}/redeliver`, undefined, { token: key })).status).toBe(202);
    expect((await h.api('HEAD', `/v1/accounts/${a}/webhooks/${wh}/secret`)).status).toBe(404); // no HEAD: it would log a reveal
    await h.api('GET', `/v1/accounts/${a}/webhooks/${wh}/secret`);
    const rotated = (await h.api('POST', `/v1/accounts/${a}/webhooks/${wh}/secret/rotate`, { previous_secret_valid_for: 60 }, { token: key })).body.secret as string;
    await h.api('PATCH', `/v1/accounts/${a}`, { plan: 'enterprise' });
    const link = (await h.api('POST', `/v1/accounts/${a}/portal-sessions`)).body.url as string;
    // As its page does: a post from Herald's own origin spends it.
    const opened = await fetch(link, { method: 'POST', redirect: 'manual', headers: { origin: new URL(link).origin } });
    expect(opened.status).toBe(303);
    await h.api('DELETE', `/v1/accounts/${a}/webhooks/${wh}`, undefined, { token: key });
    await h.api('DELETE', `/v1/accounts/${a}/api-keys/${keyId}`);

    const entries = await log(a);
    expect(entries.map((e) => [e.action, e.actor, e.target])).toEqual([
      ['api_key.revoked', 'admin_token', keyId],
      ['webhook.deleted', `api_key:${keyId}`, wh],
      ['portal_session.opened', 'portal_link', null],
      ['portal_link.created', 'admin_token', null],
      ['account.updated', 'admin_token', null],
      ['webhook.secret_rotated', `api_key:${keyId}`, wh],
      ['webhook.secret_revealed', 'admin_token', wh],
      ['delivery.redelivered', `api_key:${keyId}`, dlv],
      ['webhook.updated', `api_key:${keyId}`, wh],
      ['webhook.updated', `api_key:${keyId}`, wh],
      ['webhook.created', `api_key:${keyId}`, wh],
      ['api_key.created', 'admin_token', keyId],
      ['account.created', 'admin_token', null],
    ]);
    const by = (action: string) => entries.find((e) => e.action === action)!;
    // The URL's query values are blanked: a receiver's token may sit there.
    expect(by('webhook.created').details).toEqual({ url: `${rx.url}/a?token=…&v=…`, events: ['content.generated'], enabled: true, has_secret: true, headers: ['Authorization'] });
    const updates = entries.filter((e) => e.action === 'webhook.updated').reverse();
    expect(updates.map((e) => e.details)).toEqual([
      { fields: ['enabled', 'headers', 'url'], url: { from: `${rx.url}/a?token=…&v=…`, to: `${rx.url}/b` }, enabled: { from: true, to: false } },
      { fields: ['enabled', 'rate_limit', 'secret'], enabled: { from: false, to: true }, rate_limit: { from: null, to: 50 } },
    ]);
    expect(by('delivery.redelivered').details).toEqual({ webhook_id: wh });
    expect(by('webhook.secret_rotated').details).toEqual({ previous_secret_valid_for: 60, secret_given: false });
    expect(by('account.updated').details).toEqual({ plan: 'enterprise' });
    expect(by('webhook.deleted').details).toEqual({ url: `${rx.url}/b` });
    // Newest first, in time order.
    const times = entries.map((e) => Date.parse(e.at));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    // No secret and no header value, in the answer or in the table.
    const text = JSON.stringify(entries) + JSON.stringify(await query(h, 'SELECT * FROM audit_events'));
    for (const s of [secret, newSecret, rotated, headerValue, 'audit-header-value', 'url-token-abc']) expect(text).not.toContain(s);
  });

  it('an account reads only its own log; the cursor is checked', async () => {
    const a = await createAccount(h, 'pro', 'Mine');
    const b = await createAccount(h, 'pro', 'Theirs');
    const { key: keyA } = await createApiKey(h, a);
    await h.api('POST', `/v1/accounts/${b}/webhooks`, { url: `${rx.url}/b`, events: ['*'] });
    expect((await log(a, keyA)).map((e) => e.action)).toEqual(['api_key.created', 'account.created']);
    expectError(await h.api('GET', `/v1/accounts/${b}/audit-events`, undefined, { token: keyA }), 404, 'account_not_found');
    expectError(await h.api('GET', `/v1/accounts/${a}/audit-events?cursor=nonsense`, undefined, { token: keyA }), 400, 'invalid_request');
  });

  it('a change is made only together with its entry: when the entry cannot be written, nothing changes', async () => {
    const a = await createAccount(h, 'pro', 'All or nothing');
    const w = (await h.api('POST', `/v1/accounts/${a}/webhooks`, { url: `${rx.url}/whole`, events: ['*'], description: 'before' })).body;
    const before = await log(a);
    // The database refuses every new audit entry from here on, as a full disk or a broken table would.
    const q = h.herald.ctx.store.q;
    const postgres = q.dialect.name === 'postgres';
    await q.exec(postgres
      ? `CREATE FUNCTION audit_refused() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER audit_refused BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_refused();`
      : "CREATE TRIGGER audit_refused BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit refused'); END;");
    try {
      expect((await h.api('PATCH', `/v1/accounts/${a}/webhooks/${w.id}`, { description: 'after' })).status).toBe(500);
      expect((await h.api('DELETE', `/v1/accounts/${a}/webhooks/${w.id}`)).status).toBe(500);
      expect((await h.api('POST', `/v1/accounts/${a}/api-keys`)).status).toBe(500);
      expect((await h.api('POST', `/v1/accounts/${a}/webhooks`, { url: `${rx.url}/more`, events: ['*'] })).status).toBe(500);
      expect((await h.api('GET', `/v1/accounts/${a}/webhooks/${w.id}/secret`)).status).toBe(500); // not shown unlogged
      const hooks = (await h.api('GET', `/v1/accounts/${a}/webhooks`)).body.data;
      expect(hooks).toEqual([expect.objectContaining({ id: w.id, description: 'before' })]);
      expect((await h.api('GET', `/v1/accounts/${a}/api-keys`)).body.data).toEqual([]);
    } finally {
      await q.exec(postgres ? 'DROP TRIGGER audit_refused ON audit_events; DROP FUNCTION audit_refused();' : 'DROP TRIGGER audit_refused;');
    }
    expect(await log(a)).toEqual(before);
  });
});
