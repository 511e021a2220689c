import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createError, HeraldError, isHeraldError, type ErrorCode } from '../core/errors.js';
import { isDatabaseUnavailable, isTransactionConflict } from '../store/executor.js';

/** Fastify's own error codes, mapped to the registry so every answer has the same shape. */
const FASTIFY_CODES: Record<string, (e: FastifyError) => HeraldError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => createError('payload_too_large', 'request body is too large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => createError('unsupported_media_type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => createError('invalid_request', 'Content-Length does not match the body'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => createError('invalid_json', 'the body is empty'),
  FST_ERR_CTP_INVALID_JSON_BODY: (e) => createError('invalid_json', e.message),
};

/**
 * Errors Fastify answers itself, before any route or error handler runs (its `frameworkErrors`
 * option): a path that is not valid percent-encoding, a path parameter past the router's
 * length limit. Answered in the one error shape too.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // No hook runs for these, so the request id the onRequest hook adds is set here.
  void reply.header('x-request-id', request.id);
  const herr =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? createError('invalid_request', 'a path segment is too long')
    : error.code === 'FST_ERR_BAD_URL' ? createError('invalid_request', 'the path is not valid percent-encoding')
    : createError('internal_error');
  void reply.status(herr.statusCode).send({ error: { code: herr.code, message: herr.message } });
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers too large, a malformed
 * request, a client too slow to send its headers), answered in the one error shape too, on
 * the raw socket, which is then closed, as Node does.
 */
export function clientErrors(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request took too long to arrive']
    : [400, 'Bad Request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code: 'invalid_request', message } });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let herr: HeraldError;
    if (isHeraldError(error)) {
      herr = error;
      // A 5xx raised on purpose (e.g. the database is down) still gets its cause logged.
      if (herr.statusCode >= 500) request.log.error({ err: error.cause instanceof Error ? error.cause : error, code: herr.code }, 'request failed');
    } else if (error.validation) {
      herr = createError('invalid_request', `${error.validationContext ?? 'request'}${error.message.replace(/^(body|querystring|params|headers)/, '')}`);
    } else if (error.code && FASTIFY_CODES[error.code]) herr = FASTIFY_CODES[error.code]!(error);
    else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      const code: ErrorCode = error.statusCode === 404 ? 'not_found' : error.statusCode === 429 ? 'rate_limited' : 'invalid_request';
      herr = new HeraldError(code, error.message);
      (herr as { statusCode: number }).statusCode = error.statusCode;
    } else {
      // A 5xx tells the caller nothing internal; the log has everything.
      request.log.error({ err: error }, 'request failed');
      herr = error.statusCode === 503 || isDatabaseUnavailable(error) || isTransactionConflict(error) ? createError('unavailable', 'try again shortly') : createError('internal_error');
    }
    if (herr.statusCode === 503 || herr.statusCode === 429) void reply.header('retry-after', String(herr.retryAfterS ?? 1));
    // RFC 9110 §11.6.1: a 401 names the scheme the client should use.
    if (herr.code === 'unauthorized') void reply.header('www-authenticate', 'Bearer');
    return reply.status(herr.statusCode).send({ error: { code: herr.code, message: herr.message } });
  });
  app.setNotFoundHandler(notFound);
}

/**
 * The 404 of a path no route matches. app.ts also answers it from onRequest, before the body
 * is read: Fastify would otherwise receive and parse up to the 1 MiB body limit for a 404 that
 * needs none of it.
 */
export const notFound = (request: FastifyRequest, reply: FastifyReply): FastifyReply =>
  reply.status(404).send({ error: { code: 'not_found', message: `Route ${request.method} ${request.url.split('?')[0]} not found` } });
