import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { createError } from '../core/errors.js';
import { checkCustomHeaders } from '../core/header-policy.js';
import { isId } from '../core/ids.js';
import { checkWebhookUrl, type UrlPolicyOptions } from '../core/url-policy.js';
import type { WebhookRow } from '../core/types.js';
import { isDatabaseUnavailable } from '../store/executor.js';
import type { WebhookChange } from '../store/store.js';
import { resolveAndCheck, type SafeLookupOptions } from '../delivery/safe-lookup.js';
import { sendPing } from '../delivery/test-connection.js';
import { openHeaders, openTarget, previousSecretAt, previousSecretLive } from '../delivery/webhook-cache.js';
import { access, accountFor, requireWebhookPlan } from './auth.js';
import type { AppContext } from './context.js';
import { auditEntry } from './audit.js';
import { BODY_OPTIONAL } from './json-body.js';
import * as S from './schemas.js';

/** How long Test Connection of an unsaved form waits for its early DNS check. */
const TEST_DNS_MS = 500;

export function urlPolicy(ctx: AppContext, listenPort: number | null): UrlPolicyOptions & SafeLookupOptions {
  const c = ctx.config;
  const selfHosts = [new URL(c.publicUrl).hostname.replace(/^\[|\]$/g, '')];
  if (c.host !== '0.0.0.0' && c.host !== '::') selfHosts.push(c.host);
  return {
    allowPrivate: c.dev,
    allowHttp: c.dev,
    allowedCidrs: c.allowedCidrs,
    selfHosts,
    selfPorts: c.dev ? [listenPort ?? c.port] : undefined,
    resolve: ctx.resolve,
  };
}

/**
 * The URL rules of SPEC §3, then DNS: a name that resolves to a forbidden address is refused
 * now. One that does not resolve within `dnsMs` is accepted: every attempt vets it again.
 */
async function validateUrl(ctx: AppContext, raw: unknown, listenPort: number | null, dnsMs?: number): Promise<string> {
  const opts = urlPolicy(ctx, listenPort);
  const r = checkWebhookUrl(raw, opts);
  if (!r.ok) throw createError(r.code, r.message);
  if (!r.ipLiteral) {
    const d = await resolveAndCheck(r.hostname, opts, dnsMs);
    if (d.ok === false) throw createError('url_not_allowed', d.message);
  }
  return r.href;
}

async function validateEvents(ctx: AppContext, events: string[]): Promise<string[]> {
  const out = [...new Set(events)];
  for (const e of out) {
    if (e === '*') continue;
    if (!(await ctx.eventTypes.has(e))) throw createError('unknown_event_type', e);
  }
  return out;
}

function validateHeaders(input: unknown): Record<string, string> {
  const r = checkCustomHeaders(input);
  if (!r.ok) throw createError('header_not_allowed', r.message);
  return r.headers;
}

/**
 * The custom headers as shown, or none when their stored value cannot be decrypted (damaged):
 * one such webhook must not fail the account's whole list, nor its own form, which is where
 * they are set again.
 */
function readableHeaders(ctx: AppContext, w: WebhookRow): { headers: Record<string, string>; unreadable: boolean } {
  try {
    return { headers: openHeaders(ctx.box, w.headersEnc), unreadable: false };
  } catch (e) {
    ctx.log.error({ err: e, webhook_id: w.id }, 'custom header values cannot be decrypted; shown as none until set again');
    return { headers: {}, unreadable: true };
  }
}

export function webhookOut(ctx: AppContext, w: WebhookRow, reveal?: string | null): Static<typeof S.Webhook> {
  const h = readableHeaders(ctx, w);
  const out: Static<typeof S.Webhook> = {
    id: w.id, account_id: w.accountId, url: w.url, description: w.description, events: w.events,
    headers: h.headers, headers_unreadable: h.unreadable,
    enabled: w.enabled, disabled_reason: w.disabledReason, rate_limit: w.rateLimit, has_secret: w.secretEnc !== null,
    previous_secret_expires_at: previousSecretExpiry(w),
    created_at: S.iso(w.createdAt), updated_at: S.iso(w.updatedAt),
  };
  if (reveal) out.secret = reveal;
  return out;
}

/** When the secret a rotation replaced stops signing; null when there is none (any more). */
function previousSecretExpiry(w: WebhookRow, now = Date.now()): string | null {
  return w.previousSecretEnc !== null && previousSecretLive(w.previousSecretUntil, now) ? S.iso(w.previousSecretUntil!) : null;
}

/**
 * A URL as the audit log keeps it: query values are blanked (`?token=…`), since a URL may carry
 * a receiver's credential there and the log outlives the webhook's current URL.
 */
function auditUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const [query, hash = ''] = url.slice(q + 1).split('#', 2) as [string, string?];
  const names = query.split('&').map((p) => (p.includes('=') ? `${p.slice(0, p.indexOf('='))}=…` : p));
  return `${url.slice(0, q)}?${names.join('&')}${hash ? '#…' : ''}`;
}

/**
 * What a PATCH changed, for the audit log: the names of the fields sent, the URL and the
 * on/off switch from and to, the event list as it is now. Secrets and custom header values
 * are named, never written.
 */
function webhookChanges(before: WebhookRow, after: WebhookRow, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { fields: Object.keys(patch).sort() };
  if (before.url !== after.url) out.url = { from: auditUrl(before.url), to: auditUrl(after.url) };
  if (before.enabled !== after.enabled) out.enabled = { from: before.enabled, to: after.enabled };
  if (before.rateLimit !== after.rateLimit) out.rate_limit = { from: before.rateLimit, to: after.rateLimit };
  if ('events' in patch) out.events = after.events;
  return out;
}

/** A new secret made on the server: 32 random bytes, written as Standard Webhooks suggests (`whsec_` + base64). */
const newSecret = (): string => 'whsec_' + randomBytes(32).toString('base64');

const sealHeaders = (ctx: AppContext, h: Record<string, string>): string | null => (Object.keys(h).length ? ctx.box.seal(JSON.stringify(h)) : null);

export function registerWebhookRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['Webhooks'];
  const security = [{ bearer: [] }];
  const acct = access(ctx, 'account');
  const listenPort = (): number | null => {
    const a = app.server.address();
    return a && typeof a === 'object' ? a.port : null;
  };

  async function load(req: FastifyRequest): Promise<{ accountId: string; webhook: WebhookRow }> {
    const { account, webhook } = req.params as { account: string; webhook: string };
    const acc = await accountFor(req, ctx, account);
    requireWebhookPlan(acc);
    const w = isId('wh', webhook) ? await ctx.store.getWebhook(acc.id, webhook) : null;
    if (!w) throw createError('webhook_not_found', webhook);
    return { accountId: acc.id, webhook: w };
  }

  app.get('/v1/accounts/:account/webhooks', {
    ...acct,
    schema: { tags, security, summary: 'List webhooks', params: S.AccountParams, response: { 200: Type.Object({ data: Type.Array(S.Webhook) }), ...S.errors(401, 403, 404) } },
  }, async (req) => {
    const acc = await accountFor(req, ctx, (req.params as { account: string }).account);
    requireWebhookPlan(acc);
    return { data: (await ctx.store.listWebhooks(acc.id)).map((w) => webhookOut(ctx, w)) };
  });

  app.post('/v1/accounts/:account/webhooks', {
    ...acct,
    schema: { tags, security, summary: 'Create a webhook', params: S.AccountParams, body: S.WebhookIn, response: { 201: S.Webhook, ...S.errors(400, 401, 403, 404, 422) } },
  }, async (req, reply) => {
    const acc = await accountFor(req, ctx, (req.params as { account: string }).account);
    requireWebhookPlan(acc);
    const b = req.body as Static<typeof S.WebhookIn>;
    const url = await validateUrl(ctx, b.url, listenPort());
    const events = await validateEvents(ctx, b.events);
    const headers = validateHeaders(b.headers);
    const secret = b.secret ?? null;
    const max = ctx.config.maxWebhooksPerAccount;
    const w = await ctx.store.createWebhook({
      accountId: acc.id, url, description: b.description ?? '', events,
      headersEnc: sealHeaders(ctx, headers), secretEnc: secret ? ctx.box.seal(secret) : null, enabled: b.enabled ?? true,
      rateLimit: b.rate_limit ?? null,
    }, Date.now(), max, (c) => c && auditEntry(req, acc.id, 'webhook.created', c.id, {
      url: auditUrl(c.url), events: c.events, enabled: c.enabled, has_secret: secret !== null, headers: Object.keys(headers), ...(c.rateLimit !== null ? { rate_limit: c.rateLimit } : {}),
    }));
    // Null also if the account was deleted meanwhile; then its 404 is the better answer.
    if (!w) {
      if (!(await ctx.store.getAccount(acc.id))) throw createError('account_not_found', acc.id);
      throw createError('validation_failed', `an account may have at most ${max} webhooks; delete one first`);
    }
    return reply.status(201).send(webhookOut(ctx, w, secret));
  });

  app.get('/v1/accounts/:account/webhooks/:webhook', {
    ...acct,
    schema: { tags, security, summary: 'Read a webhook', params: S.WebhookParams, response: { 200: S.Webhook, ...S.errors(401, 403, 404) } },
  }, async (req) => webhookOut(ctx, (await load(req)).webhook));

  app.patch('/v1/accounts/:account/webhooks/:webhook', {
    ...acct,
    schema: { tags, security, summary: 'Change a webhook', params: S.WebhookParams, body: S.WebhookPatch, response: { 200: S.Webhook, ...S.errors(400, 401, 403, 404, 422) } },
  }, async (req) => {
    const { webhook } = await load(req);
    const b = req.body as Static<typeof S.WebhookPatch>;
    const change: WebhookChange = {};
    if (b.url !== undefined) change.url = await validateUrl(ctx, b.url, listenPort());
    if (b.events !== undefined) change.events = await validateEvents(ctx, b.events);
    if (b.headers !== undefined) change.headersEnc = sealHeaders(ctx, validateHeaders(b.headers));
    // Setting the secret replaces it at once, a rotation's previous secret included (store).
    if (b.secret !== undefined) change.secretEnc = b.secret === null ? null : ctx.box.seal(b.secret);
    if (b.description !== undefined) change.description = b.description;
    if (b.rate_limit !== undefined) change.rateLimit = b.rate_limit;
    if (b.enabled !== undefined) change.enabled = b.enabled;
    // Applied to the row as it is when saved, not as read above: a 410 Gone or another change
    // that committed while the URL's DNS was checked is kept, and the audit entry compares
    // with that row.
    const saved = await ctx.store.updateWebhook(webhook.accountId, webhook.id, change, Date.now(), (s, before) =>
      // An empty PATCH changes nothing and leaves no entry.
      (s && before && Object.keys(b).length ? auditEntry(req, webhook.accountId, 'webhook.updated', webhook.id, webhookChanges(before, s, b)) : null));
    ctx.webhooks.invalidate(webhook.id);
    // Deleted since it was read (the URL's DNS check takes up to two seconds).
    if (!saved) throw createError('webhook_not_found', webhook.id);
    return webhookOut(ctx, saved);
  });

  app.delete('/v1/accounts/:account/webhooks/:webhook', {
    ...acct,
    schema: { tags, security, summary: 'Delete a webhook and its delivery history', params: S.WebhookParams, response: { 204: Type.Null(), ...S.errors(401, 403, 404) } },
  }, async (req, reply) => {
    const { accountId, webhook } = await load(req);
    // Two DELETEs at once: only the one that deleted it says so.
    await ctx.store.deleteWebhook(accountId, webhook.id, (deleted) => (deleted ? auditEntry(req, accountId, 'webhook.deleted', webhook.id, { url: auditUrl(webhook.url) }) : null));
    ctx.webhooks.invalidate(webhook.id);
    return reply.status(204).send();
  });

  app.get('/v1/accounts/:account/webhooks/:webhook/secret', {
    ...acct,
    // No automatic HEAD: it would run the handler, and log a reveal that revealed nothing.
    exposeHeadRoute: false,
    schema: { tags, security, summary: 'Reveal the signing secret', params: S.WebhookParams, response: { 200: S.WebhookSecret, ...S.errors(401, 403, 404) } },
  }, async (req, reply) => {
    const { accountId, webhook } = await load(req);
    void reply.header('cache-control', 'no-store');
    // Logged before it is shown: a reveal the log could not record is not made.
    await ctx.store.recordAudit(auditEntry(req, accountId, 'webhook.secret_revealed', webhook.id));
    return { secret: webhook.secretEnc ? ctx.box.open(webhook.secretEnc) : null };
  });

  app.post('/v1/accounts/:account/webhooks/:webhook/secret/rotate', {
    ...acct,
    schema: {
      tags, security, summary: 'Rotate the signing secret, keeping the previous one valid for a while',
      params: S.WebhookParams, body: S.RotateSecretIn, response: { 200: S.RotatedSecret, ...S.errors(400, 401, 403, 404) },
      [BODY_OPTIONAL]: true, // every field is optional: no body means `{}`
    },
  }, async (req, reply) => {
    const { accountId, webhook } = await load(req);
    const b = req.body as Static<typeof S.RotateSecretIn>;
    const secret = b.secret ?? newSecret();
    const validForS = b.previous_secret_valid_for ?? S.DEFAULT_PREVIOUS_SECRET_S; // the schema fills it in
    const now = Date.now();
    const saved = await ctx.store.rotateWebhookSecret(accountId, webhook.id, ctx.box.seal(secret), validForS > 0 ? now + validForS * 1000 : null, now, (s) =>
      s && auditEntry(req, accountId, 'webhook.secret_rotated', webhook.id, { previous_secret_valid_for: validForS, secret_given: b.secret !== undefined }));
    if (!saved) throw createError('webhook_not_found', webhook.id);
    ctx.webhooks.invalidate(saved.id);
    void reply.header('cache-control', 'no-store');
    return { secret, previous_secret_expires_at: previousSecretExpiry(saved, now) };
  });

  app.post('/v1/accounts/:account/webhooks/:webhook/recover', {
    ...acct,
    schema: {
      tags, security, summary: 'Send again every failed delivery of the webhook created in a time window',
      params: S.WebhookParams, body: S.RecoverIn, response: { 202: S.Recovered, ...S.errors(400, 401, 403, 404, 422) },
    },
  }, async (req, reply) => {
    const { accountId, webhook } = await load(req);
    const b = req.body as Static<typeof S.RecoverIn>;
    const now = Date.now();
    const instant = (field: string, text: string): number => {
      const ms = S.parseInstant(text);
      if (ms === null) throw createError('invalid_request', `${field} must be an ISO 8601 date-time with a time zone from 1970 on, e.g. 2024-05-20T14:30:00Z`);
      return ms;
    };
    const since = instant('since', b.since);
    const until = b.until === undefined ? now : instant('until', b.until);
    if (since >= until) throw createError('invalid_request', 'since must be before until');
    if (b.cursor !== undefined && !isId('dlv', b.cursor)) throw createError('invalid_request', 'cursor is not valid');
    // The worker would finish each one at once as failed again ("webhook disabled"); say so instead.
    if (!webhook.enabled) throw createError('validation_failed', 'the webhook is disabled; enable it before sending its failed deliveries again');
    // An entry for each transaction that queued something: a sweep's empty steps would only bury the entries.
    const r = await ctx.store.recoverFailed(accountId, webhook.id, { since, until, afterId: b.cursor ?? null }, now, (step) =>
      step.queued ? auditEntry(req, accountId, 'webhook.recovered', webhook.id, { since: S.iso(since), until: S.iso(until), queued: step.queued }) : null);
    if (r.queued) {
      ctx.metrics.recovered.inc(r.queued);
      ctx.worker?.notify([webhook.id], r.retry ? 'retry' : 'first');
    }
    return reply.status(202).send({ queued: r.queued, next_cursor: r.lastId, until: S.iso(until) });
  });

  app.post('/v1/accounts/:account/webhooks/test', {
    ...acct,
    schema: { tags, security, summary: 'Test Connection for an unsaved webhook form', params: S.AccountParams, body: S.TestConnectionIn, response: { 200: S.TestConnectionResult, ...S.errors(400, 401, 403, 404, 422) } },
  }, async (req) => {
    const acc = await accountFor(req, ctx, (req.params as { account: string }).account);
    requireWebhookPlan(acc);
    const b = req.body as Static<typeof S.TestConnectionIn>;
    // Test Connection answers within the timeout plus a second (SPEC §5): the early DNS check
    // gets half a second of it, and the ping's own connect vets the name again anyway.
    const url = await validateUrl(ctx, b.url, listenPort(), TEST_DNS_MS);
    const headers = validateHeaders(b.headers);
    // An edited form of a saved webhook keeps its stored secret: signed with it here, so the
    // browser never has to reveal it (a reveal is audited) just to test a changed URL.
    let secret: string | null = b.secret ?? null;
    let previousSecret: string | null = null;
    if (b.secret === undefined && b.webhook_id !== undefined) {
      const saved = isId('wh', b.webhook_id) ? await ctx.store.getWebhook(acc.id, b.webhook_id) : null;
      if (!saved) throw createError('webhook_not_found', b.webhook_id);
      const target = openTarget(ctx.box, saved, true);
      secret = target.secret;
      previousSecret = previousSecretAt(target, Date.now());
    }
    const ping = await sendPing(ctx.sender, { url, secret, previousSecret, headers, webhookId: null });
    return ping.result;
  });

  app.post('/v1/accounts/:account/webhooks/:webhook/test', {
    ...acct,
    schema: { tags, security, summary: 'Test Connection for a saved webhook (recorded in its history)', params: S.WebhookParams, response: { 200: S.TestConnectionResult, ...S.errors(401, 403, 404) } },
  }, async (req) => {
    const { accountId, webhook } = await load(req);
    const target = openTarget(ctx.box, webhook, true); // load() refused a plan without webhooks
    const ping = await sendPing(ctx.sender, {
      url: webhook.url, secret: target.secret, previousSecret: previousSecretAt(target, Date.now()), headers: target.headers, webhookId: webhook.id,
    });
    await ctx.store.recordPing({
      accountId, webhookId: webhook.id, data: ping.data, deliveryId: ping.deliveryId, now: ping.now,
      attempt: ping.attempt, succeeded: ping.result.ok, error: ping.result.error,
    }).catch(async (e: unknown) => {
      // Deleted while the ping was out (up to the timeout): its record has nowhere to go.
      if (!isDatabaseUnavailable(e) && !(await ctx.store.getWebhook(accountId, webhook.id).catch(() => webhook))) throw createError('webhook_not_found', webhook.id);
      throw e;
    });
    return { ...ping.result, delivery_id: ping.deliveryId };
  });
}
