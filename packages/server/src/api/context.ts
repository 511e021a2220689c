import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import type { SecretBox } from '../core/secret-box.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { ResolveFn } from '../delivery/resolver.js';
import type { Sender } from '../delivery/sender.js';
import type { WebhookCache } from '../delivery/webhook-cache.js';
import type { DeliveryWorker } from '../delivery/worker.js';
import type { PrincipalSource } from './auth.js';
import type { Publisher } from './publisher.js';
import type { ApiRateLimiter } from './rate-limit.js';
import type { AccountCache } from './account-cache.js';
import type { EventTypeCache } from './event-type-cache.js';

/** Everything a route needs, built once by app.ts. Routes get a Store, never a dialect. */
export interface AppContext {
  config: Config;
  store: Store;
  box: SecretBox;
  metrics: Metrics;
  sender: Sender;
  /** Name resolution for webhook hosts (HERALD_DNS_SERVERS); undefined: the system's. */
  resolve: ResolveFn | undefined;
  webhooks: WebhookCache;
  publisher: Publisher;
  eventTypes: EventTypeCache;
  /** Accounts as publishing reads them (a second's staleness across processes). */
  accounts: AccountCache;
  /** Present when this process also delivers (role all): publishing wakes it at once. */
  worker: DeliveryWorker | null;
  adminTokenHash: Buffer;
  /** Binds operator sessions to the current admin token: HMAC of its hash under the secret key. */
  adminSessionTag: string;
  principalSources: PrincipalSource[];
  /** HERALD_API_RATE_LIMIT, checked with the credentials (api/auth.ts access). */
  rateLimiter: ApiRateLimiter;
  log: Logger;
}
