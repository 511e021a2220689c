import type { FastifyRequest } from 'fastify';
import type { AuditEvent } from '../store/store.js';

/**
 * One entry of the account's audit log for a change the request makes: who (the credential's
 * `actor`), what, to which object, and plain details (field names, URLs, counts; never a
 * secret or a custom header value). The store writes it in the change's own transaction (see
 * Store's AuditOf), so the log has an entry exactly when the change committed.
 */
export function auditEntry(
  req: FastifyRequest, accountId: string, action: string, target: string | null = null, details: Record<string, unknown> | null = null,
): Omit<AuditEvent, 'id'> {
  return { accountId, at: Date.now(), actor: req.principal?.actor ?? 'unknown', action, target, details };
}
