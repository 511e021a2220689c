import { checkDeclaredLength, payloadTooLarge, resolveMaxBodyBytes, type BodyLimitOptions } from '../body-limit.js';
import { WebhookVerificationError } from '../errors.js';
import type { ReceiveOptions } from '../receive-options.js';
import type { HeadersLike, HeraldEvent, WebhookEvent } from '../types.js';
import { toVerifier } from '../verify.js';

/** The parts of a Fetch `Request` used here, so every runtime's Request (and undici's) fits. */
export interface RequestLike {
  readonly headers: HeadersLike;
  readonly body: ReadableStreamLike | null;
  readonly bodyUsed: boolean;
}

interface ReadableStreamLike {
  getReader(): {
    read(): Promise<{ done: boolean; value?: Uint8Array }>;
    cancel(reason?: unknown): Promise<void>;
  };
}

/**
 * Reads a Fetch `Request` body, counting bytes as they arrive so that a chunked body with no
 * Content-Length cannot exhaust memory before the limit is noticed.
 */
export async function readRequestBody(request: RequestLike, options?: BodyLimitOptions): Promise<Uint8Array> {
  const limit = resolveMaxBodyBytes(options);
  if (request.bodyUsed) {
    throw new WebhookVerificationError('invalid_body', 'The request body was already read; verify before anything else reads it.');
  }
  checkDeclaredLength(request.headers.get('content-length'), limit);
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!value) continue;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

/**
 * Verifies a Fetch `Request` (Deno, Bun, Cloudflare Workers, Next.js route handlers, …) and
 * returns the event. Consumes the body.
 */
export async function verifyRequest<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  request: RequestLike,
  options: ReceiveOptions,
): Promise<E> {
  const body = await readRequestBody(request, options);
  return toVerifier(options).verify<E>(body, request.headers);
}
