import type { FastifyRequest } from 'fastify';
import type { AppContext } from './context.js';

/**
 * Writes one entry of the account's audit log for a change the request has just made: who
 * (the credential's `actor`), what, to which object, and plain details (field names, URLs,
 * counts; never a secret or a custom header value). It runs after the change committed, so a
 * failure here is logged loudly and does not turn a done change into an error answer.
 */
export async function audit(
  req: FastifyRequest, ctx: AppContext, accountId: string, action: string, target: string | null = null, details: Record<string, unknown> | null = null,
): Promise<void> {
  try {
    await ctx.store.recordAudit({ accountId, at: Date.now(), actor: req.principal?.actor ?? 'unknown', action, target, details });
  } catch (err) {
    req.log.error({ err, accountId, action, target }, 'audit event not recorded');
  }
}
