import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createError } from '../core/errors.js';

/**
 * A route schema key (`schema[BODY_OPTIONAL]: true`) for a body whose every field is optional:
 * a request without a body, or with an empty one, is validated as `{}`, and the OpenAPI
 * document says the body may be left out (app.ts).
 */
export const BODY_OPTIONAL = 'x-body-optional';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as text, exactly as received (publishing delivers `data` from it byte for byte). */
    rawBody?: string;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One JSON parser for the whole API: invalid UTF-8 and malformed JSON are `400 invalid_json`
 * (never a 500), and the raw text is kept for routes that must not re-serialise it.
 * JSON is the only body type: Fastify's default `text/plain` parser is removed, so a body of any
 * other type is `415 unsupported_media_type` rather than a confusing validation error.
 */
export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buf = body as Buffer;
    if (buf.length === 0) {
      // Many HTTP clients send `Content-Type: application/json` on every request, even a bodiless
      // POST such as redeliver. That is fine where the route takes no body.
      if (!request.routeOptions.schema?.body || bodyOptional(request)) return done(null, undefined);
      return done(createError('invalid_json', 'the body is empty'), undefined);
    }
    let text: string;
    try {
      text = utf8.decode(buf);
    } catch {
      return done(createError('invalid_json', 'the body is not valid UTF-8'), undefined);
    }
    try {
      const value: unknown = JSON.parse(text);
      // A route that takes no body accepts `{}` (some clients always send one) and nothing
      // else: a field sent to it would be ignored, where every other route refuses unknown ones.
      if (!request.routeOptions.schema?.body && !isEmptyObject(value)) {
        return done(createError('invalid_request', 'this request takes no body (send none, or {})'), undefined);
      }
      request.rawBody = text;
      done(null, value);
    } catch (e) {
      done(createError('invalid_json', (e as Error).message), undefined);
    }
  });
  // On the marked routes only (a hook for every request would cost every publish a promise):
  // a body left out is `{}`, before the routes' own preValidation hooks and the schema, whose
  // defaults then fill it in.
  app.addHook('onRoute', (route) => {
    if ((route.schema as Record<string, unknown> | undefined)?.[BODY_OPTIONAL] !== true) return;
    const own = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [emptyBodyIsObject, ...own];
  });
}

const isEmptyObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

function emptyBodyIsObject(request: FastifyRequest, _reply: unknown, done: () => void): void {
  if (request.body === undefined) request.body = {};
  done();
}

const bodyOptional = (request: FastifyRequest): boolean =>
  (request.routeOptions.schema as Record<string, unknown> | undefined)?.[BODY_OPTIONAL] === true;
