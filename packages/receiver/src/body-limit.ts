import { WebhookVerificationError } from './errors.js';

/**
 * 6 MiB: Herald's largest body is HERALD_MAX_PAYLOAD_BYTES (5 MiB by default) plus its
 * envelope, so genuine deliveries fit with room to spare while a flood is cut off early.
 */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;

export interface BodyLimitOptions {
  /** Largest body accepted, in bytes. Default 6 MiB. */
  maxBodyBytes?: number;
}

export function resolveMaxBodyBytes(options: BodyLimitOptions | undefined): number {
  const limit = options?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new TypeError('@herald/receiver: `maxBodyBytes` must be a whole number of bytes ≥ 0.');
  }
  return limit;
}

export function payloadTooLarge(limit: number): WebhookVerificationError {
  return new WebhookVerificationError('payload_too_large', `The body is larger than the ${limit}-byte limit.`);
}

/** Refuses before reading when the sender already declares a body over the limit. */
export function checkDeclaredLength(contentLength: string | null | undefined, limit: number): void {
  if (contentLength == null) return;
  const declared = Number(contentLength);
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
}
