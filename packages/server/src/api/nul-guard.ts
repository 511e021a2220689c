import type { FastifyInstance } from 'fastify';
import { createError } from '../core/errors.js';

/**
 * PostgreSQL refuses a NUL character in any text value (SQLite stores it), so a NUL that
 * reached a query was a 500 on one backend and a quiet success on the other. Refused up front
 * instead, the same on both: in the path and the query string before any hook looks anything
 * up with them, and in the strings of a JSON body before its handler runs.
 *
 * Not looked into: members whose value is stored as JSON text, where a NUL is the escape
 * `\u0000` and harmless (an event's `data`, kept byte for byte; an event type's `schema`),
 * and `headers`, whose policy refuses every control character with its own 422.
 */
const NOT_WALKED: ReadonlySet<string> = new Set(['data', 'schema', 'headers']);

/** A NUL in any string or key of `value`, however deep (iterative: a body's depth is the client's to choose). */
function hasNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\0')) return true;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\0')) return true;
        stack.push(x);
      }
    }
  }
  return false;
}

/** A body's top-level members, but those NOT_WALKED (their keys are still looked at). */
const walked = (body: unknown): unknown =>
  body !== null && typeof body === 'object' && !Array.isArray(body)
    ? Object.entries(body).map(([k, v]) => (NOT_WALKED.has(k) ? k : [k, v]))
    : body;

export function installNulGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    if (hasNul(req.params) || hasNul(req.query)) throw createError('invalid_request', 'the path and the query string must not contain NUL characters');
  });
  app.addHook('preHandler', async (req) => {
    if (req.body !== undefined && hasNul(walked(req.body))) throw createError('invalid_request', 'text in the body must not contain NUL characters');
  });
}
