import { WebhookVerificationError } from './errors.js';
import { toHex, utf8 } from './bytes.js';
import { hmacSha256, type HmacKey } from './hmac.js';
import { timingSafeEqual } from './timing-safe-equal.js';

export const HUB_HEADER = 'x-hub-signature-256';
const HUB_FORMAT = /^sha256=([0-9a-fA-F]{64})$/;

/** `sha256=<hex HMAC-SHA256 of the body>`. */
export async function hubSignature(key: HmacKey, body: Uint8Array): Promise<string> {
  return `sha256=${toHex(await hmacSha256(key, body))}`;
}

/**
 * Resolves when the header matches the body under one of the keys. This scheme signs the body
 * only, so it says nothing about when the request was sent: replays must be caught by
 * deduplicating on delivery_id (or by also requiring the Standard Webhooks scheme).
 */
export async function verifyHubSignature(keys: readonly HmacKey[], body: Uint8Array, header: string | undefined): Promise<void> {
  if (header === undefined) {
    throw new WebhookVerificationError('missing_header', 'The X-Hub-Signature-256 header is missing.');
  }
  const match = HUB_FORMAT.exec(header.trim());
  if (!match) {
    throw new WebhookVerificationError(
      'bad_format',
      `X-Hub-Signature-256 must be "sha256=" followed by 64 hex digits (got ${header.length} characters).`,
    );
  }
  const received = utf8((match[1] as string).toLowerCase());
  for (const key of keys) {
    if (timingSafeEqual(received, utf8(toHex(await hmacSha256(key, body))))) return;
  }
  throw new WebhookVerificationError(
    'signature_mismatch',
    'X-Hub-Signature-256 does not match the body. Check the secret, and pass the raw body exactly as received (not re-serialised JSON).',
  );
}
