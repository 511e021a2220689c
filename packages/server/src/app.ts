import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { Ajv } from 'ajv';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { Config } from './config/load.js';
import { retryPolicyOf } from './core/retry-policy.js';
import { SecretBox } from './core/secret-box.js';
import { VERSION } from './core/version.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { Store } from './store/store.js';
import { createResolver } from './delivery/resolver.js';
import { Sender } from './delivery/sender.js';
import { WebhookCache } from './delivery/webhook-cache.js';
import { DeliveryWorker, prefetchDepth } from './delivery/worker.js';
import { adminSessionTag, bearerPrincipal } from './api/auth.js';
import type { AppContext } from './api/context.js';
import { clientErrors, frameworkErrors, installErrorHandling, notFound } from './api/error-handler.js';
import { createError } from './core/errors.js';
import { installNulGuard } from './api/nul-guard.js';
import { within } from './core/within.js';
import { BODY_OPTIONAL, installJsonParser } from './api/json-body.js';
import { AccountCache } from './api/account-cache.js';
import { EventTypeCache } from './api/event-type-cache.js';
import { DEFAULT_PUBLISH_BUDGET, Publisher } from './api/publisher.js';
import { ApiRateLimiter } from './api/rate-limit.js';
import { registerAccountRoutes } from './api/accounts.js';
import { registerEventTypeRoutes } from './api/event-types.js';
import { registerWebhookRoutes } from './api/webhooks.js';
import { registerEventRoutes } from './api/events.js';
import { registerDeliveryRoutes } from './api/deliveries.js';
import { registerHealthRoutes, registerMetaRoutes } from './api/meta.js';

export interface BuildDeps {
  config: Config;
  store: Store;
  /** SHA-256 of the admin token. */
  adminTokenHash: Buffer;
  secretKey: Buffer;
  logger?: Logger;
  /** Extra route plugins (the dashboard) registered after the API. */
  plugins?: Array<(app: FastifyInstance, ctx: AppContext) => Promise<void> | void>;
}

export interface Herald {
  app: FastifyInstance;
  ctx: AppContext;
  /** Starts the delivery worker (roles worker and all). */
  startWorker(): void;
  /** Graceful: stop taking requests and claims, finish in-flight work, close everything. */
  close(): Promise<void>;
}

/** Secrets and credentials never reach the logs. */
const REDACT = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'res.headers["set-cookie"]'];

/**
 * Query strings and path parameters arrive as text, so their numbers and booleans are coerced;
 * JSON bodies are validated as sent (`{"type": 42}` is an error, not the string "42").
 */
function installValidators(app: FastifyInstance): void {
  const options = { removeAdditional: false, useDefaults: true, strict: false, allErrors: false } as const;
  const body = new Ajv({ ...options, coerceTypes: false });
  const text = new Ajv({ ...options, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema));
}

/**
 * Request ids for correlating logs: unique, not secret. A random prefix per process and a
 * counter, instead of a randomBytes call per request (2 % of the CPU of a busy publisher).
 */
function requestIds(): () => string {
  const prefix = `req_${randomBytes(6).toString('hex')}`;
  let n = 0;
  return () => `${prefix}${(++n).toString(36).padStart(6, '0')}`;
}

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'herald' } });
}

/** Wires everything; does not listen (the CLI does), so tests build it freely. */
export async function buildHerald(deps: BuildDeps): Promise<Herald> {
  const { config, store } = deps;
  const log = deps.logger ?? createLogger(config.logLevel);
  const metrics: Metrics = createMetrics(store);
  const box = new SecretBox(deps.secretKey);
  // HERALD_DNS_SERVERS: those servers alone resolve webhook hosts, for deliveries and for the
  // checks at creation alike; otherwise the process-wide default (safe-lookup.ts).
  const resolve = config.dnsServers.length ? createResolver({ servers: config.dnsServers, fallback: 'none' }) : undefined;
  const sender = new Sender({
    timeoutMs: config.deliveryTimeoutMs,
    policy: { allowPrivate: config.dev, allowedCidrs: config.allowedCidrs, resolve },
    proxyUrl: config.egressProxy || undefined,
  });
  const webhooks = new WebhookCache(store, box);
  const worker =
    config.role === 'api'
      ? null
      : new DeliveryWorker(store, sender, webhooks, {
          concurrency: config.workerConcurrency,
          endpointConcurrency: config.endpointConcurrency,
          leaseMs: config.leaseMs,
          pollIntervalMs: config.pollIntervalMs,
          retry: retryPolicyOf(config),
          // The worker may lease a fast webhook a few rounds of requests ahead, so one claim
          // serves several rounds; on PostgreSQL only while no other process holds leases of
          // that webhook, which keeps the cluster-wide per-webhook limit (see Prefetch).
          prefetch: prefetchDepth(config.workerConcurrency, config.endpointConcurrency),
          payloadBudget: config.workerPayloadMemory,
          maxPayload: config.maxPayloadBytes,
        }, log.child({ component: 'worker' }), metrics);
  const ctx: AppContext = {
    config, store, box, metrics, sender, resolve, webhooks, worker, log,
    // One process on SQLite: new deliveries are leased to this worker in the publish
    // transaction itself. On PostgreSQL claims take a cluster-wide lock that publishing must
    // not wait for, so there the worker claims them as usual.
    publisher: new Publisher(
      store, (webhookIds) => worker?.notify(webhookIds, 'first'), worker && store.dialect === 'sqlite' ? worker : null,
      // Room for a few of the largest events allowed, whatever HERALD_MAX_PAYLOAD_BYTES says.
      { ...DEFAULT_PUBLISH_BUDGET, chars: Math.max(DEFAULT_PUBLISH_BUDGET.chars, 4 * config.maxPayloadBytes) },
      () => metrics.publishRefused.inc(),
    ),
    eventTypes: new EventTypeCache(store),
    accounts: new AccountCache(store),
    adminTokenHash: deps.adminTokenHash,
    adminSessionTag: adminSessionTag(deps.secretKey, deps.adminTokenHash),
    principalSources: [bearerPrincipal],
    rateLimiter: new ApiRateLimiter(config.apiRateLimit, () => metrics.rateLimited.inc()),
  };

  const app: FastifyInstance = Fastify({
    loggerInstance: log as unknown as FastifyInstance['log'],
    bodyLimit: 1024 * 1024, // 1 MiB for everything but publishing, which sets its own
    genReqId: requestIds(),
    requestIdHeader: false,
    frameworkErrors,
    clientErrorHandler: clientErrors,
    // While closing, requests are refused by our own hook below, in the one error shape.
    return503OnClosing: false,
    // One line per request is written by our onResponse hook instead (with route and timing).
    logController: new LogController({ disableRequestLogging: true }),
  });
  // One hook for what every request needs first (a hook per concern costs each request a promise).
  let draining = false;
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
    // A request that arrives on a kept-alive connection once closing has begun goes elsewhere.
    if (draining) throw createError('unavailable', 'this Herald process is shutting down; try again');
    if (req.is404) return notFound(req, reply);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    req.log.info({ req_id: req.id, method: req.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });
  // While closing, answers end their connection. Fastify closes the connections that are idle
  // when close starts, but one busy then (a Test Connection, a publish) would stay open as
  // keep-alive afterwards, and the HTTP server would wait for the client to drop it: up to the
  // 72 s keep-alive timeout, long after any orchestrator's grace period.
  app.addHook('onSend', async (_req, reply) => {
    if (draining) void reply.header('connection', 'close');
  });
  installErrorHandling(app);
  installNulGuard(app);
  installValidators(app);
  installJsonParser(app);

  if (config.role === 'worker') {
    registerHealthRoutes(app, ctx);
  } else {
    await app.register(swagger, {
      // Components named after the schemas' $id (Webhook, Delivery, …) rather than def-0, def-1.
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      openapi: {
        openapi: '3.1.0',
        info: { title: 'Herald API', version: VERSION, description: 'Webhook delivery: accounts, webhooks, events, deliveries. Errors are `{error:{code,message}}`.' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The admin token or an account API key' } } },
      },
      // @fastify/swagger marks every request body required; a route whose body may be left out says so.
      transformObject: (doc) => {
        if (!('openapiObject' in doc)) return doc.swaggerObject;
        const { openapiObject } = doc;
        for (const ops of Object.values(openapiObject.paths ?? {})) {
          for (const op of Object.values(ops as Record<string, Record<string, unknown>>)) {
            if (typeof op !== 'object' || op === null) continue;
            // Every route that checks credentials may refuse a caller past HERALD_API_RATE_LIMIT.
            const responses = op.responses as Record<string, Record<string, unknown>> | undefined;
            if (op.security && responses?.['401'] && !responses['429']) {
              responses['429'] = {
                ...responses['401'],
                description: 'rate_limited: this API key (or account session) is past HERALD_API_RATE_LIMIT; Retry-After gives the seconds to wait',
                headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 } } },
              };
            }
            if (!(BODY_OPTIONAL in op)) continue;
            delete op[BODY_OPTIONAL];
            if (op.requestBody) (op.requestBody as { required?: boolean }).required = false;
          }
        }
        return openapiObject;
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { docExpansion: 'list', deepLinking: true } });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    registerMetaRoutes(app, ctx);
    registerAccountRoutes(app, ctx);
    registerEventTypeRoutes(app, ctx);
    registerWebhookRoutes(app, ctx);
    registerEventRoutes(app, ctx);
    registerDeliveryRoutes(app, ctx);
    for (const p of deps.plugins ?? []) await p(app, ctx);
  }
  await app.ready();

  let closed = false;
  let unlisten: (() => void) | null = null;
  return {
    app,
    ctx,
    startWorker: () => {
      if (!worker || closed || unlisten) return;
      // Deliveries queued by other processes (an `api` process, a peer's released leases)
      // wake this worker at once on PostgreSQL; polling stays the fallback when the listening
      // connection is down. On SQLite this subscribes to nothing: the Publisher wakes it.
      let quiet = false;
      unlisten = store.onDeliveriesQueued(
        (lane) => {
          quiet = false;
          worker.notify(null, lane);
        },
        (err) => {
          if (quiet) return; // one line per outage, not one per reconnect attempt
          quiet = true;
          log.warn({ err }, 'lost the database notification connection; reconnecting, and polling meanwhile');
        },
      );
      worker.start();
    },
    async close() {
      if (closed) return;
      closed = true;
      draining = true;
      unlisten?.();
      // The worker stops claiming at once, while the HTTP server finishes its requests (a Test
      // Connection may hold it for the whole timeout): both within the same grace. In-flight
      // attempts are bounded by the timeout; they get that long plus a second.
      const stopping = worker?.stop(config.deliveryTimeoutMs + 1000);
      // Requests waiting on an unresponsive database must not hold the shutdown: they end when
      // their statements time out, or with the process.
      await within(app.close(), config.deliveryTimeoutMs + 1000);
      await stopping;
      await sender.close();
    },
  };
}
