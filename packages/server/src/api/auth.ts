import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { createError } from '../core/errors.js';
import { WEBHOOK_PLANS, type Account } from '../core/types.js';
import type { AppContext } from './context.js';

/**
 * Who is calling: the operator (admin token) or one account (API key or dashboard session);
 * `actor` names the credential for the audit log (see AuditEvent.actor).
 */
export type Principal = ({ kind: 'admin' } | { kind: 'account'; accountId: string }) & { actor: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();
export const API_KEY_PREFIX = 'hk_';

/**
 * Which admin token an operator's dashboard session was opened with. Keyed by the secret key,
 * so the stored value says nothing about the token to someone holding only the database.
 */
export const adminSessionTag = (secretKey: Buffer, adminTokenHash: Buffer): string =>
  createHmac('sha256', secretKey).update('herald admin session\0').update(adminTokenHash).digest('hex');

/** Resolves a principal from `Authorization: Bearer …`, or from another source (sessions) registered by the dashboard. */
export type PrincipalSource = (request: FastifyRequest, ctx: AppContext) => Promise<Principal | null>;

export async function bearerPrincipal(request: FastifyRequest, ctx: AppContext): Promise<Principal | null> {
  const h = request.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw createError('unauthorized');
  const token = m[1]!;
  const hash = sha256(token);
  if (timingSafeEqual(hash, ctx.adminTokenHash)) return { kind: 'admin', actor: 'admin_token' };
  if (token.startsWith(API_KEY_PREFIX)) {
    const key = await ctx.store.findApiKey(hash.toString('hex'));
    if (key) return { kind: 'account', accountId: key.accountId, actor: `api_key:${key.id}` };
  }
  throw createError('unauthorized');
}

export async function authenticate(request: FastifyRequest, ctx: AppContext): Promise<Principal> {
  if (request.principal) return request.principal;
  for (const source of ctx.principalSources) {
    const p = await source(request, ctx);
    if (p) return (request.principal = p);
  }
  throw createError('unauthorized');
}

/**
 * The account named in the path, if the caller may see it. Any other account answers 404
 * exactly like a missing one, so ids of other tenants cannot be probed.
 */
export async function accountFor(request: FastifyRequest, ctx: AppContext, accountId: string): Promise<Account> {
  const p = await authenticate(request, ctx);
  if (p.kind === 'account' && p.accountId !== accountId) throw createError('account_not_found', accountId);
  const account = await ctx.store.getAccount(accountId);
  if (!account) throw createError('account_not_found', accountId);
  return account;
}

export function requireWebhookPlan(account: Account): void {
  if (!WEBHOOK_PLANS.has(account.plan)) throw createError('plan_required', account.plan);
}

/**
 * Who may call a route, checked in `onRequest`, before the body is even read: a caller without
 * credentials can make Herald receive and parse no body (up to 5 MB each on publishing), and
 * learns nothing from validation messages (401 comes first); an account key on another
 * account's path gets the same 404 whatever it sends:
 * - `any`: any valid credential;
 * - `account`: the admin token, or a key of the account named in the path;
 * - `admin`: the admin token; an account key gets 404 on other accounts and 403 on its own.
 * Handlers still load the account (a missing one is 404 for the admin too).
 */
export function access(ctx: AppContext, who: 'any' | 'account' | 'admin'): { onRequest: (request: FastifyRequest) => Promise<void> } {
  return {
    async onRequest(request) {
      const p = await authenticate(request, ctx);
      ctx.rateLimiter.check(p);
      const account = (request.params as { account?: string } | undefined)?.account;
      if (who !== 'any' && p.kind === 'account' && account !== undefined && account !== p.accountId) {
        throw createError('account_not_found', account);
      }
      if (who === 'admin' && p.kind !== 'admin') throw createError('forbidden', 'this call needs the admin token');
    },
  };
}
