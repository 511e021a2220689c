import { WebhookVerificationError } from './errors.js';
import { concatBytes, toBase64, utf8 } from './bytes.js';
import { getHeader } from './headers.js';
import { hmacSha256, type HmacKey } from './hmac.js';
import { timingSafeEqual } from './timing-safe-equal.js';
import type { HeadersInput } from './types.js';

export const STANDARD_HEADERS = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' } as const;

// Unix seconds; 12 digits reach the year 33658, so longer values are garbage, not time.
const TIMESTAMP_FORMAT = /^\d{1,12}$/;

/**
 * `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`; the body stays bytes throughout. A
 * verifier passes the timestamp as the header's text, which is what a sender signs.
 */
export async function standardSignature(key: HmacKey, id: string, timestamp: number | string, body: Uint8Array): Promise<string> {
  return `v1,${toBase64(await hmacSha256(key, concatBytes(utf8(`${id}.${timestamp}.`), body)))}`;
}

/**
 * Resolves when one `v1` signature in `webhook-signature` matches under one of the keys and
 * `webhook-timestamp` is within `toleranceSeconds` of `nowMs`. The signature is checked first,
 * so a timestamp error means a genuine but stale (or clock-skewed) request.
 */
export async function verifyStandardSignature(
  keys: readonly HmacKey[],
  body: Uint8Array,
  headers: HeadersInput,
  toleranceSeconds: number,
  nowMs: number,
): Promise<void> {
  const id = getHeader(headers, STANDARD_HEADERS.id);
  const timestamp = getHeader(headers, STANDARD_HEADERS.timestamp)?.trim();
  const signature = getHeader(headers, STANDARD_HEADERS.signature);
  if (id === undefined || timestamp === undefined || signature === undefined) {
    const missing = [id === undefined && STANDARD_HEADERS.id, timestamp === undefined && STANDARD_HEADERS.timestamp, signature === undefined && STANDARD_HEADERS.signature];
    throw new WebhookVerificationError('missing_header', `Standard Webhooks header(s) missing: ${missing.filter(Boolean).join(', ')}.`);
  }
  if (!TIMESTAMP_FORMAT.test(timestamp)) {
    throw new WebhookVerificationError('bad_format', 'webhook-timestamp must be whole Unix seconds.');
  }
  const seconds = Number(timestamp);
  const candidates = parseV1Signatures(signature);

  let matched = false;
  for (const key of keys) {
    const expected = utf8((await standardSignature(key, id, timestamp, body)).slice('v1,'.length));
    if (candidates.some((candidate) => timingSafeEqual(utf8(candidate), expected))) {
      matched = true;
      break;
    }
  }
  if (!matched) {
    throw new WebhookVerificationError(
      'signature_mismatch',
      `No signature in webhook-signature matches (${candidates.length} checked against ${keys.length} secret${keys.length > 1 ? 's' : ''}). ` +
        'Check the secret, and pass the raw body exactly as received (not re-serialised JSON).',
    );
  }

  const ageSeconds = Math.floor(nowMs / 1000) - seconds;
  if (ageSeconds > toleranceSeconds) {
    throw new WebhookVerificationError(
      'timestamp_too_old',
      `webhook-timestamp is ${ageSeconds} s old, more than the ${toleranceSeconds} s tolerance: a replay, or this machine's clock is ahead.`,
    );
  }
  if (-ageSeconds > toleranceSeconds) {
    throw new WebhookVerificationError(
      'timestamp_too_new',
      `webhook-timestamp is ${-ageSeconds} s in the future, more than the ${toleranceSeconds} s tolerance: this machine's clock is behind.`,
    );
  }
}

/**
 * The base64 values of the `v1` entries of a space-separated list (several during secret
 * rotation). Other versions are skipped, as the Standard Webhooks spec asks.
 */
function parseV1Signatures(header: string): string[] {
  const entries = header.split(/\s+/).filter(Boolean);
  const v1: string[] = [];
  for (const raw of entries) {
    // A repeated header arrives joined by ", ", leaving a trailing comma on all but the last.
    const entry = raw.endsWith(',') ? raw.slice(0, -1) : raw;
    const comma = entry.indexOf(',');
    if (comma > 0 && entry.slice(0, comma) === 'v1') v1.push(entry.slice(comma + 1));
  }
  if (v1.length === 0) {
    throw new WebhookVerificationError(
      'bad_format',
      'webhook-signature holds no "v1,<base64>" signature (it should be space-separated "v1,<base64>" entries).',
    );
  }
  return v1;
}
