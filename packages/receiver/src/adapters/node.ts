import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkDeclaredLength, payloadTooLarge, resolveMaxBodyBytes, type BodyLimitOptions } from '../body-limit.js';
import { errorBody, isWebhookVerificationError, WebhookVerificationError } from '../errors.js';
import type { ReceiveOptions } from '../receive-options.js';
import type { HeraldEvent, WebhookEvent } from '../types.js';
import { createVerifier, toVerifier } from '../verify.js';
import { utf8 } from '../bytes.js';

/** Fields that body parsers leave on the request (express, body-parser, NestJS `rawBody`). */
type ParsedRequest = IncomingMessage & { body?: unknown; rawBody?: unknown; _body?: unknown };

/**
 * The raw body of a node request. Reads the stream with a size cap, or takes bytes that a
 * framework already buffered (`express.raw()`, NestJS `rawBody: true`). Refuses a body that a
 * JSON parser already consumed, instead of waiting forever for a stream that has ended.
 */
export async function readRawBody(req: IncomingMessage, options?: BodyLimitOptions): Promise<Uint8Array> {
  const limit = resolveMaxBodyBytes(options);
  const parsed = req as ParsedRequest;
  for (const buffered of [parsed.rawBody, parsed.body]) {
    const bytes = buffered instanceof Uint8Array ? buffered : typeof buffered === 'string' ? utf8(buffered) : undefined;
    if (bytes) {
      if (bytes.length > limit) throw payloadTooLarge(limit);
      return bytes;
    }
  }
  if (parsed._body === true || req.readableEnded) {
    throw new WebhookVerificationError(
      'invalid_body',
      'The request body was already consumed by another parser (e.g. express.json()). Mount the Herald receiver before it, or on a route without it.',
    );
  }
  checkDeclaredLength(req.headers['content-length'], limit);

  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (fn: () => void) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      fn();
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) {
        // Stop reading; the caller answers 413 and closes the connection (sendVerificationError).
        req.pause();
        settle(() => reject(payloadTooLarge(limit)));
        return;
      }
      chunks.push(bytes);
    };
    const onEnd = () => settle(() => resolve(Buffer.concat(chunks, size)));
    const onError = (err: Error) => settle(() => reject(err));
    const onClose = () => settle(() => reject(new Error('The request was aborted before its body arrived.')));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/** Reads and verifies a node request; resolves with the event or rejects with `WebhookVerificationError`. */
export async function verifyNodeRequest<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  req: IncomingMessage,
  options: ReceiveOptions,
): Promise<E> {
  return toVerifier(options).verify<E>(await readRawBody(req, options), req.headers);
}

/** Answers a failed verification as `{error:{code,message}}` with the error's status. */
export function sendVerificationError(res: ServerResponse, err: WebhookVerificationError): void {
  if (res.headersSent) return void res.end();
  // After a 413 the rest of the body is still on the wire; closing beats reading it to discard.
  if (err.code === 'payload_too_large') res.setHeader('connection', 'close');
  sendJson(res, err.status, errorBody(err));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

export interface NodeHandlerOptions extends ReceiveOptions {
  /** Called for each request refused with a 4xx, after answering it: for logs and metrics. */
  onRejected?: (err: WebhookVerificationError, req: IncomingMessage) => void;
  /** Called with errors other than verification failures (a throwing `onEvent`, a broken connection). Default `console.error`. */
  onError?: (err: unknown, req: IncomingMessage) => void;
}

/**
 * A `(req, res)` listener for `http.createServer`: verifies, then calls `onEvent`. When
 * `onEvent` does not answer itself, the listener answers `200 {"ok":true}`. Verification
 * failures get their 4xx; a throwing `onEvent` gets 500, so Herald retries the delivery.
 */
export function createNodeHandler<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  options: NodeHandlerOptions,
  onEvent: (event: E, req: IncomingMessage, res: ServerResponse) => unknown,
): (req: IncomingMessage, res: ServerResponse) => void {
  const verifier = createVerifier(options);
  const limits = { maxBodyBytes: resolveMaxBodyBytes(options) };
  const onError = options.onError ?? ((err: unknown) => console.error('@herald/receiver:', err));

  const fail = (err: unknown, req: IncomingMessage, res: ServerResponse) => {
    if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal_error', message: 'The receiver failed to process the delivery.' } });
    else res.destroy();
    onError(err, req);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let event: E;
    try {
      event = await verifier.verify<E>(await readRawBody(req, limits), req.headers);
    } catch (err) {
      if (!isWebhookVerificationError(err)) return fail(err, req, res);
      sendVerificationError(res, err);
      return options.onRejected?.(err, req);
    }
    await onEvent(event, req, res);
    if (!res.headersSent) sendJson(res, 200, { ok: true });
  };

  // Nothing may escape as an unhandled rejection: it would take the whole process down.
  return (req, res) => void handle(req, res).catch((err: unknown) => fail(err, req, res));
}
