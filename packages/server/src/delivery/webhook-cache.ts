import type { SecretBox } from '../core/secret-box.js';
import { WEBHOOK_PLANS, type WebhookRow } from '../core/types.js';
import type { Store } from '../store/store.js';

/** What the worker needs of a webhook, with the secret and header values decrypted. */
export interface WebhookTarget {
  id: string;
  url: string;
  enabled: boolean;
  secret: string | null;
  /** A rotated-out secret, and until when it still signs (see previousSecretAt). */
  previousSecret: string | null;
  previousSecretUntil: number | null;
  headers: Record<string, string>;
  /**
   * Whether the account's plan includes webhooks. An account moved to `free` keeps its
   * webhooks, switched off: what was queued for them is not sent.
   */
  planAllows: boolean;
}

/** Whether a rotated-out secret kept until `until` still signs at `now`. */
export const previousSecretLive = (until: number | null, now: number): boolean => until !== null && now < until;

/** The replaced secret if it still signs at `now` (targets are cached, so this is checked per attempt). */
export const previousSecretAt = (t: Pick<WebhookTarget, 'previousSecret' | 'previousSecretUntil'>, now: number): string | null =>
  previousSecretLive(t.previousSecretUntil, now) ? t.previousSecret : null;

/** Custom header values as stored (sealed JSON), decrypted. */
export const openHeaders = (box: SecretBox, headersEnc: string | null): Record<string, string> =>
  headersEnc ? (JSON.parse(box.open(headersEnc)) as Record<string, string>) : {};

/**
 * A webhook whose sealed secret or header values do not open with this process's key: stored
 * corrupt, or sealed with another key (which start-up refuses, bootstrap.ts verifySecretKey).
 */
export class UnreadableWebhookError extends Error {
  constructor(readonly webhookId: string, cause: unknown) {
    super(`webhook ${webhookId}: its secret or header values cannot be decrypted`, { cause });
    this.name = 'UnreadableWebhookError';
  }
}

/** A stored webhook with its secret and custom header values decrypted. */
export function openTarget(box: SecretBox, row: WebhookRow, planAllows: boolean): WebhookTarget {
  try {
    return openRow(box, row, planAllows);
  } catch (e) {
    throw new UnreadableWebhookError(row.id, e);
  }
}

function openRow(box: SecretBox, row: WebhookRow, planAllows: boolean): WebhookTarget {
  return {
    planAllows,
    id: row.id,
    url: row.url,
    enabled: row.enabled,
    secret: row.secretEnc ? box.open(row.secretEnc) : null,
    // An expired one is not even decrypted.
    previousSecret: row.previousSecretEnc && previousSecretLive(row.previousSecretUntil, Date.now()) ? box.open(row.previousSecretEnc) : null,
    previousSecretUntil: row.previousSecretUntil,
    headers: openHeaders(box, row.headersEnc),
  };
}

/**
 * Decrypting a secret per attempt would cost more than signing, so targets are cached. An
 * entry lives `ttlMs` (other processes' edits, and plan changes, show up within that), and
 * this process's own API edits of the webhook drop the entry at once through invalidate().
 */
export class WebhookCache {
  /** `mono` (performance.now) ages an entry, so a clock step cannot keep it. */
  readonly #entries = new Map<string, { mono: number; target: WebhookTarget | null }>();

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly ttlMs = 2000,
  ) {}

  /** The webhook as cached, or read again when the entry is older than the TTL, or `fresh`. */
  async get(id: string, fresh = false): Promise<WebhookTarget | null> {
    const hit = fresh ? undefined : this.#entries.get(id);
    if (hit && performance.now() - hit.mono < this.ttlMs) return hit.target;
    const mono = performance.now();
    const r = await this.store.getWebhookWithPlan(id);
    const target = r ? openTarget(this.box, r.webhook, WEBHOOK_PLANS.has(r.plan)) : null;
    if (this.#entries.size > 10_000) this.#entries.clear(); // bounded: a cache, not a copy of the table
    this.#entries.set(id, { mono, target });
    return target;
  }

  invalidate(id: string): void {
    this.#entries.delete(id);
  }
}
