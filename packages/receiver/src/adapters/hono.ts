import type { MiddlewareHandler } from 'hono';
import { payloadTooLarge, resolveMaxBodyBytes } from '../body-limit.js';
import { errorBody, isWebhookVerificationError, WebhookVerificationError } from '../errors.js';
import type { ReceiveOptions } from '../receive-options.js';
import type { HeraldEvent, WebhookEvent } from '../types.js';
import { createVerifier } from '../verify.js';
import { readRequestBody } from './request.js';

export type HeraldHonoEnv<E = HeraldEvent> = { Variables: { heraldEvent: E } };

/**
 * Hono middleware (any runtime Hono runs on). On success `c.get('heraldEvent')` is the verified
 * event and the body can still be read downstream; on failure it answers 4xx with
 * `{error:{code,message}}`.
 *
 *   app.post('/webhooks', heraldHono({ secret }), (c) => { const event = c.get('heraldEvent'); … });
 *
 * hono is imported for its types only.
 */
export function heraldHono<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  options: ReceiveOptions,
): MiddlewareHandler<HeraldHonoEnv<E>> {
  const verifier = createVerifier(options);
  const limits = { maxBodyBytes: resolveMaxBodyBytes(options) };

  return async (c, next) => {
    try {
      const raw = c.req.raw;
      let body: Uint8Array = new Uint8Array(0);
      if (raw.bodyUsed) {
        // An earlier middleware read it through c.req, which caches the bytes; read straight
        // from c.req.raw, nothing is left to verify (as verifyRequest answers too).
        try {
          body = new Uint8Array(await c.req.arrayBuffer());
        } catch {
          throw new WebhookVerificationError('invalid_body', 'The request body was already read by an earlier middleware, directly from c.req.raw; read it through c.req (which keeps the bytes) or mount heraldHono first.');
        }
        if (body.length > limits.maxBodyBytes) throw payloadTooLarge(limits.maxBodyBytes);
      } else if (raw.body) {
        body = await readRequestBody(raw, limits);
        // Give later handlers a readable body again, as hono's own bodyLimit middleware does.
        c.req.raw = new Request(raw, { body });
      }
      c.set('heraldEvent', await verifier.verify<E>(body, c.req.raw.headers));
    } catch (err) {
      if (isWebhookVerificationError(err)) return c.json(errorBody(err), err.status as 400 | 401 | 413);
      throw err;
    }
    await next();
  };
}
