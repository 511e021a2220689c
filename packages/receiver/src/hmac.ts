import { utf8 } from './bytes.js';

type Subtle = typeof globalThis.crypto.subtle;
/** An imported HMAC-SHA256 key; opaque outside this file. */
export type HmacKey = Awaited<ReturnType<Subtle['importKey']>>;

function subtle(): Subtle {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new Error('@herald/receiver needs Web Crypto (globalThis.crypto.subtle): Node 20+, Bun, Deno or an edge runtime.');
  }
  return s;
}

/** The secret is keyed as its UTF-8 bytes, exactly as Herald signs (never base64-decoded). */
export function importHmacKey(secret: string): Promise<HmacKey> {
  return subtle().importKey('raw', utf8(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

export async function hmacSha256(key: HmacKey, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().sign('HMAC', key, message));
}
