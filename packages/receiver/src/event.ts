import { WebhookVerificationError } from './errors.js';
import { decodeUtf8 } from './bytes.js';
import type { WebhookEvent } from './types.js';

const REQUIRED_STRINGS = ['event', 'created_at', 'delivery_id'] as const;

/**
 * Parses a verified body into the envelope. Call only after verification: parsing first would
 * hand attacker-chosen input to the JSON parser (and tempt code to use it unverified).
 */
export function parseEvent<E extends WebhookEvent<string, unknown>>(body: Uint8Array, parseJson: (text: string) => unknown): E {
  const text = decodeUtf8(body);
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (err) {
    throw new WebhookVerificationError('invalid_body', `The body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WebhookVerificationError('invalid_body', 'The body is not a Herald event: expected a JSON object.');
  }
  const record = value as Record<string, unknown>;
  for (const field of REQUIRED_STRINGS) {
    if (typeof record[field] !== 'string') {
      throw new WebhookVerificationError('invalid_body', `The body is not a Herald event: "${field}" must be a string.`);
    }
  }
  // data is whatever JSON the operator published; Herald does not restrict it to objects.
  if (!('data' in record)) {
    throw new WebhookVerificationError('invalid_body', 'The body is not a Herald event: "data" is missing.');
  }
  return record as E;
}
