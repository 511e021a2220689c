import { WebhookVerificationError } from './errors.js';
import type { RawBody } from './types.js';

const encoder = new TextEncoder();
// fatal: a body that is not valid UTF-8 is refused instead of silently repaired with U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new WebhookVerificationError('invalid_body', 'The body is not valid UTF-8.');
  }
}

/** The raw body as bytes, refusing anything that cannot be the bytes that were signed. */
export function toBytes(body: RawBody): Uint8Array {
  if (typeof body === 'string') return utf8(body);
  // isView and the tag check also accept buffers from another realm (vm, workers, test runners).
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  const tag = Object.prototype.toString.call(body);
  if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]') return new Uint8Array(body as ArrayBuffer);
  throw new WebhookVerificationError('invalid_body', describeWrongBody(body));
}

function describeWrongBody(body: unknown): string {
  if (body === undefined || body === null) {
    return `The body is ${String(body)}: pass the raw request body (a Buffer, Uint8Array, ArrayBuffer or string).`;
  }
  if (typeof body === 'object') {
    return (
      'The body is an already-parsed object. Signatures cover the exact bytes sent, which re-serialising cannot ' +
      'reproduce: pass the raw body (mount the receiver before express.json() or any other JSON body parser).'
    );
  }
  return `The body is a ${typeof body}: pass the raw request body (a Buffer, Uint8Array, ArrayBuffer or string).`;
}

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

export function toBase64(bytes: Uint8Array): string {
  // btoa exists in every target runtime (Node 16+, Bun, Deno, workers); MACs are 32 bytes, so
  // building the binary string is cheap.
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
