import type { FastifyInstance } from 'fastify';
import { createError } from '../core/errors.js';

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
 */
export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buf = body as Buffer;
    if (buf.length === 0) return done(createError('invalid_json', 'the body is empty'), undefined);
    let text: string;
    try {
      text = utf8.decode(buf);
    } catch {
      return done(createError('invalid_json', 'the body is not valid UTF-8'), undefined);
    }
    try {
      const value: unknown = JSON.parse(text);
      request.rawBody = text;
      done(null, value);
    } catch (e) {
      done(createError('invalid_json', (e as Error).message), undefined);
    }
  });
}
