import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolveMaxBodyBytes } from '../body-limit.js';
import { isWebhookVerificationError } from '../errors.js';
import type { ReceiveOptions } from '../receive-options.js';
import type { HeraldEvent, WebhookEvent } from '../types.js';
import { createVerifier } from '../verify.js';
import { readRawBody, sendVerificationError } from './node.js';

/** The request after the middleware: `body` and `heraldEvent` hold the verified event, `rawBody` the bytes. */
export type HeraldExpressRequest<E = HeraldEvent> = IncomingMessage & { body: E; heraldEvent: E; rawBody: Uint8Array };

/**
 * Express (4 and 5) middleware. Mount it on the webhook route *before* `express.json()` (or on
 * a route that has no JSON parser): it needs the raw body. It also works after
 * `express.raw({ type: 'application/json' })`. On success `req.body` is the verified event;
 * on failure it answers 4xx with `{error:{code,message}}` and does not call `next`.
 *
 * Typed structurally on node's request and response, so express is not a dependency.
 */
export function heraldExpress<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  options: ReceiveOptions,
): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const verifier = createVerifier(options);
  const limits = { maxBodyBytes: resolveMaxBodyBytes(options) };

  return (req, res, next) => {
    void (async () => {
      let event: E;
      let raw: Uint8Array;
      try {
        raw = await readRawBody(req, limits);
        event = await verifier.verify<E>(raw, req.headers);
      } catch (err) {
        if (isWebhookVerificationError(err)) sendVerificationError(res, err);
        else next(err);
        return;
      }
      const verified = req as HeraldExpressRequest<E> & { _body?: boolean };
      verified.rawBody = raw;
      verified.body = event;
      verified.heraldEvent = event;
      // body-parser's "already parsed" flag: a JSON parser mounted after us leaves the body alone.
      verified._body = true;
      next();
    })();
  };
}
