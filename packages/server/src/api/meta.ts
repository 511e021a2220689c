import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { HeraldError } from '../core/errors.js';
import { retryPolicyOf, schedule } from '../core/retry-policy.js';
import { VERSION } from '../core/version.js';
import { access } from './auth.js';
import type { AppContext } from './context.js';
import * as S from './schemas.js';

/** Operational endpoints (no credentials) and public facts about this Herald. */
export function registerMetaRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/v1/meta', {
    // SPEC §3: "any" credential (admin token or account key), unlike the health routes.
    ...access(ctx, 'any'),
    schema: { tags: ['Meta'], security: [{ bearer: [] }], summary: 'Version, egress IP ranges to allow-list, and delivery limits', response: { 200: S.Meta, ...S.errors(401) } },
  }, async () => ({
    version: VERSION,
    egress_ip_ranges: ctx.config.egressIps,
    retry_schedule_ms: schedule(retryPolicyOf(ctx.config)),
    max_attempts: ctx.config.maxAttempts,
    timeout_ms: ctx.config.deliveryTimeoutMs,
    max_payload_bytes: ctx.config.maxPayloadBytes,
    max_webhooks_per_account: ctx.config.maxWebhooksPerAccount,
  }));
  registerHealthRoutes(app, ctx);
}

/** Also served alone on a worker process's port. No credentials: load balancers and Prometheus call them. */
export function registerHealthRoutes(app: FastifyInstance, ctx: Pick<AppContext, 'store' | 'metrics'>): void {
  const tags = ['Operations'];
  app.get('/healthz', {
    schema: { tags, summary: 'Liveness: the process answers', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));
  app.get('/readyz', {
    schema: { tags, summary: 'Readiness: the database answers', response: { 200: Type.Object({ status: Type.Literal('ready') }), ...S.errors(503) } },
  }, async () => {
    try {
      await ctx.store.ping();
    } catch (e) {
      throw new HeraldError('unavailable', 'Service unavailable: database unreachable', { cause: e });
    }
    return { status: 'ready' as const };
  });
  app.get('/metrics', {
    schema: { tags, summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] },
  }, async (_req, reply) => {
    void reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
