export { createVerifier, verifyWebhook, DEFAULT_TOLERANCE_SECONDS } from './verify.js';
export type { SignatureScheme, Verifier, VerifyOptions } from './verify.js';
export { ERROR_CODES, WebhookVerificationError, isWebhookVerificationError, errorBody } from './errors.js';
export type { VerificationErrorCode } from './errors.js';
export { BUILT_IN_EVENT_TYPES } from './types.js';
export type {
  BuiltInEventType,
  HeadersInput,
  HeadersLike,
  HeraldEvent,
  HeraldEventMap,
  JsonObject,
  JsonPrimitive,
  JsonValue,
  RawBody,
  WebhookEvent,
} from './types.js';
export { timingSafeEqual } from './timing-safe-equal.js';
export { signWebhook } from './sign.js';
export type { SignOptions, SignedHeaders } from './sign.js';
export { DEFAULT_MAX_BODY_BYTES } from './body-limit.js';
export type { BodyLimitOptions } from './body-limit.js';
export type { ReceiveOptions } from './receive-options.js';
export { readRequestBody, verifyRequest } from './adapters/request.js';
export type { RequestLike } from './adapters/request.js';
export {
  createIdempotency,
  MemoryIdempotencyStore,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  DEFAULT_LEASE_MS,
} from './idempotency.js';
export type { ClaimState, Idempotency, IdempotencyOptions, IdempotencyStore, MemoryStoreOptions, RunResult } from './idempotency.js';
