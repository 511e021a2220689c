import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { payloadTooLarge, resolveMaxBodyBytes } from '../body-limit.js';
import { errorBody, isWebhookVerificationError } from '../errors.js';
import type { ReceiveOptions } from '../receive-options.js';
import type { HeraldEvent, WebhookEvent } from '../types.js';
import { createVerifier } from '../verify.js';

export interface HeraldFastifyOptions<E> extends ReceiveOptions {
  /** Route path inside the plugin; combine with `register(…, { prefix })`. Default `/`. */
  url?: string;
  /** Handles a verified event. Its return value is the response body (default `{ ok: true }`) unless it uses `reply` itself. */
  onEvent: (event: E, request: FastifyRequest, reply: FastifyReply) => unknown;
}

/**
 * A Fastify plugin with one POST route that verifies deliveries. Register it as is (not
 * through fastify-plugin): its raw-body content-type parser then stays encapsulated to this
 * route, and the rest of the app keeps Fastify's JSON parser.
 *
 *   app.register(heraldFastify({ secret, onEvent: async (event) => { … } }), { prefix: '/webhooks' });
 *
 * fastify is imported for its types only.
 */
export function heraldFastify<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  options: HeraldFastifyOptions<E>,
): (instance: FastifyInstance) => Promise<void> {
  const verifier = createVerifier(options);
  const limit = resolveMaxBodyBytes(options);

  return async (instance) => {
    // Every content type arrives as the untouched bytes; the signature decides what is valid.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_request, body, done) => done(null, body));
    instance.setErrorHandler((err: { code?: string }, _request, reply) => {
      // Fastify's own 413, answered in this package's error shape like every other failure.
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(errorBody(payloadTooLarge(limit)));
      throw err; // the parent scope's error handler takes it from here
    });

    instance.post(options.url ?? '/', async (request, reply) => {
      let event: E;
      try {
        event = await verifier.verify<E>((request.body as Uint8Array | undefined) ?? new Uint8Array(0), request.headers);
      } catch (err) {
        if (isWebhookVerificationError(err)) return reply.code(err.status).send(errorBody(err));
        throw err;
      }
      const result = await options.onEvent(event, request, reply);
      return reply.sent ? reply : (result ?? { ok: true });
    });
  };
}
