import { WebhookVerificationError } from './errors.js';
import { toBytes } from './bytes.js';
import { parseEvent } from './event.js';
import { getHeader } from './headers.js';
import { importHmacKey, type HmacKey } from './hmac.js';
import { HUB_HEADER, verifyHubSignature } from './hub-signature.js';
import { STANDARD_HEADERS, verifyStandardSignature } from './standard-signature.js';
import type { HeadersInput, HeraldEvent, RawBody, WebhookEvent } from './types.js';

/**
 * Which signatures must be present and valid:
 * - `standard` (default): only Standard Webhooks (signature and timestamp). Herald always sends
 *   it when the webhook has a secret, and it is the only scheme that refuses replays by itself:
 *   it signs `webhook-id` and the time along with the body.
 * - `auto`: Standard Webhooks when `webhook-signature` is present, otherwise
 *   `X-Hub-Signature-256`; with neither, `missing_header`. Never falls back from a failed
 *   Standard Webhooks check to the hub signature. A request with the hub signature alone
 *   carries no signed time, so an old captured delivery passes again: only for receivers that
 *   also take deliveries from senders without Standard Webhooks.
 * - `hub`: only `X-Hub-Signature-256` (GitHub-compatible code paths), with the same caveat.
 * - `both`: both must be present and valid.
 */
export type SignatureScheme = 'auto' | 'standard' | 'hub' | 'both';

export interface VerifyOptions {
  /** The webhook's secret, or several while rotating it (any one may match). */
  secret: string | readonly string[];
  /** Default `standard`. */
  scheme?: SignatureScheme;
  /** How far `webhook-timestamp` may be in the past or the future. Default 300 (5 minutes). */
  toleranceSeconds?: number;
  /** Clock in epoch milliseconds; for tests. Default `Date.now`. */
  now?: () => number;
  /** JSON parser for the verified body, e.g. one that keeps big integers exact. Default `JSON.parse`. */
  parseJson?: (text: string) => unknown;
}

export interface Verifier {
  /** Verifies the raw body against the headers, then parses it. Rejects with `WebhookVerificationError`. */
  verify<E extends WebhookEvent<string, unknown> = HeraldEvent>(body: RawBody, headers: HeadersInput): Promise<E>;
}

const SCHEMES: readonly SignatureScheme[] = ['auto', 'standard', 'hub', 'both'];
// Standard Webhooks' recommended window: wide enough for clock skew and a slow network,
// narrow enough that a captured request goes stale within minutes.
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** Builds a verifier once (validating the options and importing keys) for use on every request. */
export function createVerifier(options: VerifyOptions): Verifier {
  // A copy: the keys are imported at the first request, and a later change to the caller's
  // array must neither reach them unchecked nor look like a rotation that never happens.
  const secrets = typeof options?.secret === 'string' ? [options.secret] : Array.isArray(options?.secret) ? [...options.secret] : undefined;
  if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s.length > 0)) {
    // A configuration error, not a bad request: fail at start-up rather than on every delivery.
    throw new TypeError('@herald/receiver: `secret` must be a non-empty string or a non-empty array of them.');
  }
  const scheme = options.scheme ?? 'standard';
  if (!SCHEMES.includes(scheme)) throw new TypeError(`@herald/receiver: unknown scheme "${String(scheme)}".`);
  const toleranceSeconds = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!Number.isFinite(toleranceSeconds) || toleranceSeconds < 0) {
    throw new TypeError('@herald/receiver: `toleranceSeconds` must be a finite number ≥ 0.');
  }
  const now = options.now ?? Date.now;
  const parseJson = options.parseJson ?? JSON.parse;

  let keys: Promise<HmacKey[]> | undefined;
  const getKeys = (): Promise<HmacKey[]> => {
    if (!keys) {
      keys = Promise.all(secrets.map(importHmacKey));
      // Do not cache a failure: the next request tries the import again.
      keys.catch(() => (keys = undefined));
    }
    return keys;
  };

  return {
    async verify<E extends WebhookEvent<string, unknown> = HeraldEvent>(body: RawBody, headers: HeadersInput): Promise<E> {
      const bytes = toBytes(body);
      if (headers === null || typeof headers !== 'object') {
        throw new WebhookVerificationError('missing_header', 'No request headers were passed to verify().');
      }
      const hub = getHeader(headers, HUB_HEADER);
      const hasStandard = getHeader(headers, STANDARD_HEADERS.signature) !== undefined;
      if (scheme === 'auto' && !hasStandard && hub === undefined) {
        throw new WebhookVerificationError(
          'missing_header',
          'No signature header: expected webhook-signature or X-Hub-Signature-256. Herald sends them only when the webhook has a secret.',
        );
      }
      if (scheme === 'standard' && !hasStandard && hub === undefined && getHeader(headers, STANDARD_HEADERS.timestamp) === undefined) {
        throw new WebhookVerificationError(
          'missing_header',
          'No webhook-signature header: Herald signs deliveries only when the webhook has a secret.',
        );
      }
      const k = await getKeys();
      if (scheme === 'standard' || scheme === 'both' || (scheme === 'auto' && hasStandard)) {
        await verifyStandardSignature(k, bytes, headers, toleranceSeconds, now());
      }
      if (scheme === 'hub' || scheme === 'both' || (scheme === 'auto' && !hasStandard)) {
        await verifyHubSignature(k, bytes, hub);
      }
      return parseEvent<E>(bytes, parseJson);
    },
  };
}

const cache = new WeakMap<object, Verifier>();

/** Accepts a ready verifier or options; options objects reuse their verifier (and keys) across calls. */
export function toVerifier(input: VerifyOptions | Verifier): Verifier {
  if (typeof (input as Verifier | undefined)?.verify === 'function') return input as Verifier;
  let verifier = input ? cache.get(input) : undefined;
  if (!verifier) {
    verifier = createVerifier(input as VerifyOptions);
    cache.set(input, verifier);
  }
  return verifier;
}

/**
 * Verifies a delivery from its raw body and headers and returns the parsed event.
 * Rejects with `WebhookVerificationError` (match on `.code`) for anything a sender could cause.
 */
export async function verifyWebhook<E extends WebhookEvent<string, unknown> = HeraldEvent>(
  body: RawBody,
  headers: HeadersInput,
  options: VerifyOptions | Verifier,
): Promise<E> {
  return toVerifier(options).verify<E>(body, headers);
}
