/**
 * Every error the API can answer, in one registry. The HTTP body is always
 * `{ "error": { "code", "message" } }`; callers match on `code`. A test checks that every code
 * here is documented in docs/API.md. 5xx answers say nothing internal; the cause is logged.
 */
export const ERROR_CODES = {
  invalid_request: { status: 400, message: 'Invalid request: %s' },
  invalid_json: { status: 400, message: 'Request body is not valid JSON: %s' },
  unauthorized: { status: 401, message: 'Missing or invalid credentials' },
  forbidden: { status: 403, message: 'This credential may not do that: %s' },
  plan_required: {
    status: 403,
    message: 'Webhooks need the Pro or Enterprise plan; this account is on %s',
  },
  csrf_failed: { status: 403, message: 'Missing or invalid CSRF token' },
  not_found: { status: 404, message: '%s not found' },
  account_not_found: { status: 404, message: 'Account %s not found' },
  webhook_not_found: { status: 404, message: 'Webhook %s not found' },
  delivery_not_found: { status: 404, message: 'Delivery %s not found' },
  event_type_not_found: { status: 404, message: 'Event type %s not found' },
  conflict: { status: 409, message: '%s' },
  event_type_exists: { status: 409, message: 'Event type %s already exists' },
  portal_link_invalid: { status: 401, message: 'This sign-in link is invalid, used or expired' },
  payload_too_large: { status: 413, message: '%s' },
  unsupported_media_type: { status: 415, message: 'Content-Type must be application/json' },
  validation_failed: { status: 422, message: '%s' },
  invalid_url: { status: 422, message: '%s' },
  url_not_allowed: { status: 422, message: '%s' },
  unknown_event_type: { status: 422, message: 'Unknown event type: %s' },
  header_not_allowed: { status: 422, message: '%s' },
  payload_too_deep: { status: 422, message: 'data is nested deeper than %s levels' },
  rate_limited: { status: 429, message: 'Too many requests' },
  internal_error: { status: 500, message: 'Internal error' },
  unavailable: { status: 503, message: 'Service unavailable: %s' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** For a 429 or 503: when to try again, in whole seconds (the Retry-After header; 1 if unset). */
  retryAfterS?: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HeraldError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
  }
}

/** `createError('webhook_not_found', id)` fills the registry's %s templates in order. */
export function createError(code: ErrorCode, ...args: Array<string | number>): HeraldError {
  let i = 0;
  const message = ERROR_CODES[code].message.replace(/%s/g, () => String(args[i++] ?? ''));
  return new HeraldError(code, message);
}

export function isHeraldError(e: unknown): e is HeraldError {
  return e instanceof HeraldError;
}
