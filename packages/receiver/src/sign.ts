import { toBytes } from './bytes.js';
import { importHmacKey } from './hmac.js';
import { hubSignature } from './hub-signature.js';
import { standardSignature } from './standard-signature.js';
import type { RawBody } from './types.js';

export interface SignOptions {
  secret: string;
  body: RawBody;
  /** The delivery id (`webhook-id`). */
  id: string;
  /** Unix seconds. Default: now. */
  timestamp?: number;
}

// A type alias, not an interface, so it is assignable to `HeadersInput`'s index signature.
export type SignedHeaders = {
  'x-hub-signature-256': string;
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/**
 * The signature headers Herald would send for this body: for testing your receiver without a
 * running Herald. Herald itself signs on the server; receivers never need this in production.
 */
export async function signWebhook(options: SignOptions): Promise<SignedHeaders> {
  const key = await importHmacKey(options.secret);
  const body = toBytes(options.body);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return {
    'x-hub-signature-256': await hubSignature(key, body),
    'webhook-id': options.id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': await standardSignature(key, options.id, timestamp, body),
  };
}
