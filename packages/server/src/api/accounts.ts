import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { createError } from '../core/errors.js';
import type { Account as AccountRow } from '../core/types.js';
import { isId } from '../core/ids.js';
import { auditEntry } from './audit.js';
import { access, accountFor, API_KEY_PREFIX, sha256 } from './auth.js';
import type { AppContext } from './context.js';
import * as S from './schemas.js';

export const accountOut = (a: AccountRow): Static<typeof S.Account> => ({
  id: a.id, name: a.name, plan: a.plan, created_at: S.iso(a.createdAt), updated_at: S.iso(a.updatedAt),
});

/** Accounts and their API keys: operator (admin token) calls. */
export function registerAccountRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['Accounts'];
  const security = [{ bearer: [] }];
  const admin = access(ctx, 'admin');

  app.post('/v1/accounts', {
    ...admin,
    schema: { tags, security, summary: 'Create an account', body: S.AccountIn, response: { 201: S.Account, ...S.errors(400, 401, 403) } },
  }, async (req, reply) => {
    const body = req.body as Static<typeof S.AccountIn>;
    const a = await ctx.store.createAccount(body.name, body.plan, Date.now(), (c) => auditEntry(req, c.id, 'account.created', null, { name: c.name, plan: c.plan }));
    return reply.status(201).send(accountOut(a));
  });

  app.get('/v1/accounts', {
    ...admin,
    schema: {
      tags, security, summary: 'List accounts',
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })), cursor: Type.Optional(Type.String()) }, { additionalProperties: false }),
      response: { 200: Type.Object({ data: Type.Array(S.Account), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...S.errors(401, 403) },
    },
  }, async (req) => {
    const q = req.query as { limit?: number; cursor?: string };
    if (q.cursor !== undefined && !isId('acc', q.cursor)) throw createError('invalid_request', 'cursor is not valid');
    const limit = q.limit ?? 50;
    const rows = await ctx.store.listAccounts(limit + 1, q.cursor ?? null);
    return S.pageOf(rows, limit, accountOut);
  });

  app.get('/v1/accounts/:account', {
    ...access(ctx, 'account'),
    schema: { tags, security, summary: 'Read an account', params: S.AccountParams, response: { 200: S.Account, ...S.errors(401, 404) } },
  }, async (req) => {
    const { account } = req.params as { account: string };
    return accountOut(await accountFor(req, ctx, account));
  });

  app.patch('/v1/accounts/:account', {
    ...admin,
    schema: { tags, security, summary: 'Change an account’s name or plan', params: S.AccountParams, body: S.AccountPatch, response: { 200: S.Account, ...S.errors(400, 401, 403, 404) } },
  }, async (req) => {
    const { account } = req.params as { account: string };
    const patch = req.body as Static<typeof S.AccountPatch>;
    const a = await ctx.store.updateAccount(account, patch, Date.now(), (u) => (u ? auditEntry(req, account, 'account.updated', null, { ...patch }) : null));
    ctx.accounts.invalidate(account);
    if (!a) throw createError('account_not_found', account);
    // This process's worker sees a plan change at its next attempt; other processes' within
    // their webhook cache's two seconds.
    if (patch.plan !== undefined) for (const w of await ctx.store.listWebhooks(account)) ctx.webhooks.invalidate(w.id);
    return accountOut(a);
  });

  app.delete('/v1/accounts/:account', {
    ...admin,
    schema: { tags, security, summary: 'Delete an account and everything it owns', params: S.AccountParams, response: { 204: Type.Null(), ...S.errors(401, 403, 404) } },
  }, async (req, reply) => {
    const { account } = req.params as { account: string };
    const deleted = await ctx.store.deleteAccount(account);
    ctx.accounts.invalidate(account);
    if (!deleted) throw createError('account_not_found', account);
    return reply.status(204).send();
  });

  app.get('/v1/accounts/:account/audit-events', {
    ...access(ctx, 'account'),
    schema: {
      tags, security, summary: 'The account’s audit log, newest first: who changed what',
      params: S.AccountParams, querystring: S.AuditQuery, response: { 200: S.AuditEventList, ...S.errors(400, 401, 404) },
    },
  }, async (req) => {
    const acc = await accountFor(req, ctx, (req.params as { account: string }).account);
    const q = req.query as Static<typeof S.AuditQuery>;
    if (q.cursor !== undefined && !isId('aud', q.cursor)) throw createError('invalid_request', 'cursor is not valid');
    const limit = q.limit ?? 50;
    const rows = await ctx.store.listAudit(acc.id, { beforeId: q.cursor, limit: limit + 1 });
    return S.pageOf(rows, limit, (e) => ({ id: e.id, at: S.iso(e.at), actor: e.actor, action: e.action, target: e.target, details: e.details }));
  });

  app.post('/v1/accounts/:account/api-keys', {
    ...admin,
    schema: { tags, security, summary: 'Create an account API key (shown once)', params: S.AccountParams, response: { 201: S.ApiKeyCreated, ...S.errors(401, 403, 404) } },
  }, async (req, reply) => {
    const { account } = req.params as { account: string };
    if (!(await ctx.store.getAccount(account))) throw createError('account_not_found', account);
    // 32 random bytes; only the SHA-256 is stored, so a database leak reveals no usable key.
    const key = API_KEY_PREFIX + randomBytes(32).toString('base64url');
    const prefix = key.slice(0, 10);
    const now = Date.now();
    const { id } = await ctx.store.createApiKey(account, sha256(key).toString('hex'), prefix, now, (k) => auditEntry(req, account, 'api_key.created', k.id, { prefix }));
    return reply.status(201).send({ id, key, prefix, created_at: S.iso(now) });
  });

  app.get('/v1/accounts/:account/api-keys', {
    ...admin,
    schema: { tags, security, summary: 'List an account’s API keys (prefixes only)', params: S.AccountParams, response: { 200: Type.Object({ data: Type.Array(S.ApiKey) }), ...S.errors(401, 403, 404) } },
  }, async (req) => {
    const { account } = req.params as { account: string };
    if (!(await ctx.store.getAccount(account))) throw createError('account_not_found', account);
    const keys = await ctx.store.listApiKeys(account);
    return { data: keys.map((k) => ({ id: k.id, prefix: k.prefix, created_at: S.iso(k.createdAt) })) };
  });

  app.delete('/v1/accounts/:account/api-keys/:key', {
    ...admin,
    schema: { tags, security, summary: 'Revoke an API key (takes effect at once)', params: Type.Object({ account: Type.String(), key: Type.String() }), response: { 204: Type.Null(), ...S.errors(401, 403, 404) } },
  }, async (req, reply) => {
    const { account, key } = req.params as { account: string; key: string };
    if (!(await ctx.store.deleteApiKey(account, key, (gone) => (gone ? auditEntry(req, account, 'api_key.revoked', key) : null)))) throw createError('not_found', `API key ${key}`);
    return reply.status(204).send();
  });
}

