import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { createError, HeraldError } from '../core/errors.js';
import { scanJson } from '../core/json-scan.js';
import { envelopeBytes } from '../core/signing.js';
import { WEBHOOK_PLANS } from '../core/types.js';
import { isDatabaseUnavailable } from '../store/executor.js';
import { access } from './auth.js';
import type { AppContext } from './context.js';
import * as S from './schemas.js';

/** `data` may nest this deep; deeper values break anything that re-serialises them. */
export const MAX_DATA_DEPTH = 128;
const MAX_IDEMPOTENCY_KEY = 255;

export function registerEventRoutes(app: FastifyInstance, ctx: AppContext): void {
  const maxBytes = ctx.config.maxPayloadBytes;
  app.post('/v1/accounts/:account/events', {
    ...access(ctx, 'admin'),
    // The request may be a little larger than the delivered body (whitespace, `type`), never much.
    bodyLimit: maxBytes + 64 * 1024,
    schema: {
      tags: ['Events'], security: [{ bearer: [] }], summary: 'Publish an event to every subscribed webhook of the account',
      description: `Answers 202 once the event and all its deliveries are committed. Honours \`Idempotency-Key\` for 24 h. The delivered body may be at most ${maxBytes} bytes (413 payload_too_large).`,
      params: S.AccountParams, body: S.PublishIn,
      response: { 202: S.Published, ...S.errors(400, 401, 403, 404, 413, 422, 503) },
    },
  }, async (req, reply) => {
    const { account } = req.params as { account: string };
    const body = req.body as Static<typeof S.PublishIn>;
    // The account first: a missing one is 404 whatever the body says.
    const acc = await ctx.accounts.get(account);
    if (!acc) throw createError('account_not_found', account);
    if (!(await ctx.eventTypes.has(body.type))) throw createError('unknown_event_type', body.type);
    if (body.type === 'ping') throw createError('validation_failed', 'ping is sent by Test Connection only');

    const keyHeader = req.headers['idempotency-key'];
    const key = typeof keyHeader === 'string' && keyHeader !== '' ? keyHeader : null;
    if (key !== null && key.length > MAX_IDEMPOTENCY_KEY) throw createError('invalid_request', `Idempotency-Key is longer than ${MAX_IDEMPOTENCY_KEY} characters`);

    const raw = req.rawBody ?? JSON.stringify(body);
    const scan = scanJson(raw);
    const span = scan.members.get('data');
    if (!span || body.data === undefined) throw createError('invalid_request', 'body must have a data member');
    // Depth of `data` itself: the envelope object is one level.
    if (scan.maxDepth - 1 > MAX_DATA_DEPTH) throw createError('payload_too_deep', MAX_DATA_DEPTH);
    const data = raw.slice(span[0], span[1]);
    const size = envelopeBytes(body.type) + Buffer.byteLength(data);
    if (size > maxBytes) {
      throw createError('payload_too_large', `the delivered body would be ${size} bytes; the limit is ${maxBytes}`);
    }

    const r = await ctx.publisher
      .publish({
        accountId: acc.id, type: body.type, data, idempotencyKey: key, now: Date.now(),
        // Plans gate delivery: a free account's events are kept but delivered nowhere.
        ...(WEBHOOK_PLANS.has(acc.plan) ? {} : { noDeliveries: true }),
      })
      .catch(async (e: unknown) => {
        // Refused (too much waits already) or the database is out of reach: say so at once,
        // without asking the database about the account as well.
        if (e instanceof HeraldError || isDatabaseUnavailable(e)) throw e;
        // The cached account may have been deleted by another process since (its event then
        // breaks the foreign key): that is a 404, as it would have been a second later.
        ctx.accounts.invalidate(acc.id);
        const gone = await ctx.store.getAccount(acc.id).then((a) => a === null, () => false);
        if (gone) throw createError('account_not_found', account);
        throw e;
      });
    if (r.replayed) void reply.header('idempotent-replayed', 'true');
    return reply.status(202).send({
      id: r.event.id, type: r.event.type, created_at: S.iso(r.event.createdAt),
      deliveries: r.deliveries.map((d) => ({ id: d.id, webhook_id: d.webhookId })),
    });
  });
}
