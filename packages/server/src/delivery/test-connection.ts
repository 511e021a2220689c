import { newId } from '../core/ids.js';
import { isSuccessStatus } from '../core/retry-policy.js';
import { buildBody, deliveryHeaders, redactHeaders } from '../core/signing.js';
import type { AttemptRow } from '../core/types.js';
import type { Sender, SendResult } from './sender.js';

/** How much of the receiver's answer Test Connection shows (the attempt log keeps 64 KiB). */
const PREVIEW_BYTES = 4096;

export interface PingTarget {
  url: string;
  secret: string | null;
  /** A saved webhook's rotated-out secret while it still signs: the ping is signed as a delivery would be. */
  previousSecret?: string | null;
  headers: Record<string, string>;
  webhookId: string | null;
}

export interface PingOutcome {
  deliveryId: string;
  now: number;
  data: string;
  attempt: AttemptRow;
  result: { ok: boolean; status_code: number | null; duration_ms: number; error: string | null; error_kind: string | null; response_body: string | null };
}

/**
 * Test Connection: one signed `ping`, sent at once, never retried. It goes through the same
 * sender (same address checks, proxy and timeout) as every delivery.
 */
export async function sendPing(sender: Sender, target: PingTarget): Promise<PingOutcome> {
  const now = Date.now();
  const deliveryId = newId('dlv', now);
  const data = JSON.stringify({ message: 'Test Connection from Herald', webhook_id: target.webhookId });
  const body = buildBody({ eventType: 'ping', createdAt: now, deliveryId, data });
  const headers = deliveryHeaders({ eventType: 'ping', deliveryId, attemptNo: 1, timestampSec: Math.floor(now / 1000), secret: target.secret, previousSecret: target.previousSecret, custom: target.headers }, body);
  const res: SendResult = await sender.send(target.url, headers, body);
  const ok = res.statusCode !== null && isSuccessStatus(res.statusCode);
  const attempt: AttemptRow = {
    id: newId('att', now), deliveryId, attemptNo: 1, startedAt: now, durationMs: res.durationMs, statusCode: res.statusCode,
    success: ok, errorKind: res.errorKind, errorMessage: res.errorMessage, requestHeaders: redactHeaders(headers, Object.keys(target.headers)),
    responseHeaders: res.headers, responseBody: res.body, responseTruncated: res.truncated,
  };
  const preview = res.body === null ? null : res.body.length > PREVIEW_BYTES ? res.body.slice(0, PREVIEW_BYTES) + '…' : res.body;
  return {
    deliveryId, now, data, attempt,
    result: { ok, status_code: res.statusCode, duration_ms: res.durationMs, error: res.errorMessage, error_kind: res.errorKind, response_body: preview },
  };
}
