import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { createError } from '../core/errors.js';
import { scanJson } from '../core/json-scan.js';
import type { EventType } from '../core/types.js';
import { access } from './auth.js';
import type { AppContext } from './context.js';
import { MAX_DATA_DEPTH } from './events.js';
import * as S from './schemas.js';

const out = (t: EventType) => ({ name: t.name, description: t.description, schema: t.schema, builtin: t.builtin, created_at: S.iso(t.createdAt) });

/** The event catalog: anyone signed in reads it (the dashboard's checkboxes); the operator adds to it. */
export function registerEventTypeRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['Event types'];
  const security = [{ bearer: [] }];

  app.get('/v1/event-types', {
    ...access(ctx, 'any'),
    schema: { tags, security, summary: 'List event types', response: { 200: Type.Object({ data: Type.Array(S.EventType) }), ...S.errors(401) } },
  }, async () => {
    return { data: (await ctx.store.listEventTypes()).map(out) };
  });

  app.get('/v1/event-types/:name', {
    ...access(ctx, 'any'),
    schema: { tags, security, summary: 'Read an event type', params: Type.Object({ name: Type.String() }), response: { 200: S.EventType, ...S.errors(401, 404) } },
  }, async (req) => {
    const { name } = req.params as { name: string };
    const t = await ctx.store.getEventType(name);
    if (!t) throw createError('event_type_not_found', name);
    return out(t);
  });

  app.post('/v1/event-types', {
    ...access(ctx, 'admin'),
    schema: { tags, security, summary: 'Register an event type', body: S.EventTypeIn, response: { 201: S.EventType, ...S.errors(400, 401, 403, 409, 422) } },
  }, async (req, reply) => {
    const b = req.body as Static<typeof S.EventTypeIn>;
    // The schema is stored and served as JSON text, and serialising a value nested a few
    // thousand levels deep overflows the stack: the same bound as an event's data.
    if (b.schema && scanJson(req.rawBody ?? '').maxDepth - 1 > MAX_DATA_DEPTH) {
      throw createError('validation_failed', `schema is nested deeper than ${MAX_DATA_DEPTH} levels`);
    }
    const now = Date.now();
    if (!(await ctx.store.createEventType({ name: b.name, description: b.description ?? '', schema: b.schema ?? null }, now))) {
      throw createError('event_type_exists', b.name);
    }
    await ctx.eventTypes.refresh();
    return reply.status(201).send({ name: b.name, description: b.description ?? '', schema: b.schema ?? null, builtin: false, created_at: S.iso(now) });
  });
}
