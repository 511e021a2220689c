import type { BodyLimitOptions } from './body-limit.js';
import type { VerifyOptions } from './verify.js';

/** What every adapter takes: how to verify, and how large a body to read. */
export interface ReceiveOptions extends VerifyOptions, BodyLimitOptions {}
