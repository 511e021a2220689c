import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { schedule } from '../core/retry-policy.js';
import { VERSION } from '../core/version.js';
import type { AppContext } from './context.js';
import * as S from './schemas.js';

/** Operational endpoints (no credentials) and public facts about this Herald. */
export function registerMetaRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/v1/meta', {
    schema: { tags: ['Meta'], summary: 'Version, egress IP ranges to allow-list, and delivery limits', response: { 200: S.Meta } },
  }, async () => ({
    version: VERSION,
    egress_ip_ranges: ctx.config.egressIps,
    retry_schedule_ms: schedule({ baseMs: ctx.config.retryBaseMs, factor: ctx.config.retryFactor, maxAttempts: ctx.config.maxAttempts, jitter: 0.2 }),
    max_attempts: ctx.config.maxAttempts,
    timeout_ms: ctx.config.deliveryTimeoutMs,
    max_payload_bytes: ctx.config.maxPayloadBytes,
  }));
  registerHealthRoutes(app, ctx);
}

/** Also served alone on a worker process's port. */
export function registerHealthRoutes(app: FastifyInstance, ctx: Pick<AppContext, 'store' | 'metrics'>): void {
  const hide = { hide: true };
  app.get('/healthz', { schema: { ...hide, response: { 200: Type.Object({ status: Type.String() }) } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: hide }, async (_req, reply) => {
    try {
      await ctx.store.ping();
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ error: { code: 'unavailable', message: 'database unreachable' } });
    }
  });
  app.get('/metrics', { schema: hide }, async (_req, reply) => {
    void reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
