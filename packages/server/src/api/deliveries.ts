import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { createError } from '../core/errors.js';
import { isId } from '../core/ids.js';
import { buildBody } from '../core/signing.js';
import type { AttemptRow, DeliveryRow } from '../core/types.js';
import { access, accountFor, requireWebhookPlan } from './auth.js';
import { auditEntry } from './audit.js';
import type { AppContext } from './context.js';
import * as S from './schemas.js';

export const deliveryOut = (d: DeliveryRow): Static<typeof S.Delivery> => ({
  id: d.id, event_id: d.eventId, webhook_id: d.webhookId, event_type: d.eventType, status: d.status, attempts: d.attempts,
  next_attempt_at: d.status === 'pending' ? S.isoOrNull(d.nextAttemptAt) : null, last_attempt_at: S.isoOrNull(d.lastAttemptAt),
  response_status: d.lastStatusCode, last_error: d.lastError, duration_ms: d.lastDurationMs,
  created_at: S.iso(d.createdAt), updated_at: S.iso(d.updatedAt),
});

const attemptOut = (a: AttemptRow): Static<typeof S.Attempt> => ({
  id: a.id, attempt: a.attemptNo, started_at: S.iso(a.startedAt), duration_ms: a.durationMs, status_code: a.statusCode,
  success: a.success, error_kind: a.errorKind, error: a.errorMessage, request_headers: a.requestHeaders,
  response_headers: a.responseHeaders, response_body: a.responseBody, response_truncated: a.responseTruncated,
});

export function registerDeliveryRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['Deliveries'];
  const security = [{ bearer: [] }];
  const acct = access(ctx, 'account');

  app.get('/v1/accounts/:account/deliveries', {
    ...acct,
    schema: {
      tags, security, summary: 'Delivery history, newest first', params: S.AccountParams, querystring: S.DeliveryQuery,
      response: { 200: S.DeliveryList, ...S.errors(400, 401, 404) },
    },
  }, async (req) => {
    const acc = await accountFor(req, ctx, (req.params as { account: string }).account);
    const q = req.query as Static<typeof S.DeliveryQuery>;
    if (q.cursor !== undefined && !isId('dlv', q.cursor)) throw createError('invalid_request', 'cursor is not valid');
    const limit = q.limit ?? 50;
    const rows = await ctx.store.listDeliveries({
      accountId: acc.id, webhookId: q.webhook_id, eventType: q.event_type, status: q.status, beforeId: q.cursor, limit: limit + 1,
    });
    // A webhook that is not the account's (deleted, say) has no history rather than an empty
    // one: a page left open on it can stop asking. Rows mean it exists, so only an empty page
    // costs the look-up.
    if (!rows.length && q.webhook_id !== undefined && !(isId('wh', q.webhook_id) && (await ctx.store.getWebhook(acc.id, q.webhook_id)))) {
      throw createError('webhook_not_found', q.webhook_id);
    }
    return S.pageOf(rows, limit, deliveryOut);
  });

  /** The caller's account and the delivery in the path, read with `read`; 404 for anything else. */
  async function load<T>(req: FastifyRequest, read: (accountId: string, id: string) => Promise<T | null>) {
    const { account, delivery } = req.params as { account: string; delivery: string };
    const acc = await accountFor(req, ctx, account);
    const found = isId('dlv', delivery) ? await read(acc.id, delivery) : null;
    if (!found) throw createError('delivery_not_found', delivery);
    return { acc, found };
  }

  app.get('/v1/accounts/:account/deliveries/:delivery', {
    ...acct,
    schema: { tags, security, summary: 'One delivery: the exact request body and its latest 50 attempts', params: S.DeliveryParams, response: { 200: S.DeliveryDetail, ...S.errors(401, 404) } },
  }, async (req) => {
    const { acc, found: { delivery, event, attempts } } = await load(req, (a, id) => ctx.store.getDelivery(a, id));
    const webhook = await ctx.store.getWebhook(acc.id, delivery.webhookId);
    const body = buildBody({ eventType: event.type, createdAt: event.createdAt, deliveryId: delivery.id, data: event.data });
    return {
      ...deliveryOut(delivery),
      request: { url: webhook?.url ?? null, body: body.toString('utf8') },
      attempts: attempts.map(attemptOut),
      earlier_attempts: Math.max(0, delivery.attempts - attempts.length),
    };
  });

  app.post('/v1/accounts/:account/deliveries/:delivery/redeliver', {
    ...acct,
    schema: { tags, security, summary: 'Queue the delivery again now, with the same delivery_id', params: S.DeliveryParams, response: { 202: S.Delivery, ...S.errors(401, 403, 404, 409, 422) } },
  }, async (req, reply) => {
    // The row alone: redelivery needs neither the payload nor the attempts.
    const { acc, found: delivery } = await load(req, (a, id) => ctx.store.getDeliveryRow(a, id));
    // Redelivering sends a webhook request, so the plan rule of the webhook routes applies.
    requireWebhookPlan(acc);
    // The worker would finish it at once as failed ("webhook disabled"), rewriting the history of
    // a delivery that may have succeeded; say so instead.
    const webhook = await ctx.store.getWebhook(acc.id, delivery.webhookId);
    if (!webhook?.enabled) throw createError('validation_failed', 'the webhook is disabled; enable it before redelivering');
    const entry = (queued: boolean) => (queued ? auditEntry(req, acc.id, 'delivery.redelivered', delivery.id, { webhook_id: delivery.webhookId }) : null);
    if (!(await ctx.store.redeliver(acc.id, delivery.id, Date.now(), entry))) {
      // Gone since it was read (retention, or its webhook deleted meanwhile).
      if (!(await ctx.store.getDeliveryRow(acc.id, delivery.id))) throw createError('delivery_not_found', delivery.id);
      // An attempt is in flight: its outcome would overwrite this request. Say so.
      throw createError('conflict', 'an attempt of this delivery is in progress; redeliver it again once it has finished');
    }
    ctx.worker?.notify([delivery.webhookId], 'retry');
    const again = await ctx.store.getDeliveryRow(acc.id, delivery.id);
    return reply.status(202).send(deliveryOut(again!));
  });
}
