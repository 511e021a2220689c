/**
 * Every way a delivery can fail verification, in one table. Callers match on `code`, never on
 * the message. `status` is what the adapters answer: Herald treats any non-2xx as a failed
 * attempt and retries it, so none of these is 410 (which would disable the webhook).
 */
export const ERROR_CODES = {
  missing_header: { status: 401, meaning: 'a header the chosen signature scheme needs is absent' },
  bad_format: { status: 401, meaning: 'a signature or timestamp header is present but malformed' },
  signature_mismatch: { status: 401, meaning: 'no signature matches the body under any configured secret' },
  timestamp_too_old: { status: 401, meaning: 'webhook-timestamp is older than the tolerance (a replay, or a slow clock)' },
  timestamp_too_new: { status: 401, meaning: 'webhook-timestamp is further in the future than the tolerance (a fast clock)' },
  invalid_body: { status: 400, meaning: 'the body is not raw bytes, not UTF-8 JSON, or not a Herald event' },
  payload_too_large: { status: 413, meaning: 'the body is larger than the configured limit' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type VerificationErrorCode = keyof typeof ERROR_CODES;

export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  readonly code: VerificationErrorCode;
  /** The HTTP status a receiver should answer with. */
  readonly status: number;

  constructor(code: VerificationErrorCode, message: string) {
    super(message);
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

export function isWebhookVerificationError(err: unknown): err is WebhookVerificationError {
  // instanceof alone fails when two copies of this package are loaded (bundlers, monorepos).
  return (
    err instanceof WebhookVerificationError ||
    (err instanceof Error && err.name === 'WebhookVerificationError' && typeof (err as { code?: unknown }).code === 'string')
  );
}

/** The response body adapters send on failure, in the same shape as Herald's own API errors. */
export function errorBody(err: WebhookVerificationError): { error: { code: VerificationErrorCode; message: string } } {
  return { error: { code: err.code, message: err.message } };
}
