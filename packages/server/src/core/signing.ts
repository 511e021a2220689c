import { createHmac } from 'node:crypto';
import { RESERVED_HEADERS, RESERVED_PREFIXES } from './header-policy.js';
import { USER_AGENT } from './version.js';

/** Headers deliveryHeaders sets itself, beyond header-policy's reserved names. */
const OWN_HEADERS: ReadonlySet<string> = new Set(['accept-encoding', 'webhook-id', 'webhook-timestamp', 'webhook-signature']);

/**
 * What a receiver gets (SPEC §4). The body is assembled from stored parts in a fixed key
 * order, so every attempt and every redelivery sends exactly the same bytes without storing
 * a body per delivery. `data` is inserted as the raw JSON text the publisher sent.
 */
export interface BodyParts {
  eventType: string;
  createdAt: number; // epoch ms
  deliveryId: string;
  data: string; // raw JSON text
}

export function buildBody(p: BodyParts): Buffer {
  return Buffer.from(
    `{"event":${JSON.stringify(p.eventType)},"created_at":"${new Date(p.createdAt).toISOString()}","delivery_id":"${p.deliveryId}","data":${p.data}}`,
    'utf8',
  );
}

/** Bytes the envelope adds around `data`, for the payload size check at publish time. */
export function envelopeBytes(eventType: string, deliveryIdLength = 30): number {
  return Buffer.byteLength(
    `{"event":${JSON.stringify(eventType)},"created_at":"2000-01-01T00:00:00.000Z","delivery_id":"${'x'.repeat(deliveryIdLength)}","data":}`,
  );
}

/** `X-Hub-Signature-256`: hex HMAC-SHA256 of the exact body bytes (GitHub's scheme). */
export function hubSignature(secret: string, body: Uint8Array): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

/** Standard Webhooks `webhook-signature`: base64 HMAC of `<id>.<timestamp>.<body>`, key = secret's UTF-8 bytes. */
export function standardSignature(secret: string, id: string, timestamp: number, body: Uint8Array): string {
  return (
    'v1,' +
    createHmac('sha256', secret).update(`${id}.${timestamp}.`).update(body).digest('base64')
  );
}

export interface HeaderParts {
  eventType: string;
  deliveryId: string;
  attemptNo: number;
  timestampSec: number;
  secret: string | null;
  /** During a rotation, the replaced secret: webhook-signature then carries a second entry. */
  previousSecret?: string | null;
  custom: Record<string, string>;
}

/**
 * `o[key] = value`, also for a header named `__proto__` (allowed, see header-policy.ts), which
 * plain assignment would take for the prototype and drop. Objects stay ordinary ones (a
 * null-prototype object is slower to fill and read on this hot path).
 */
function setKey(o: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/**
 * Request headers of one attempt. Custom headers were validated when saved (header-policy.ts);
 * a stored one that names a header Herald sets (in any letter case: `X-Hub-Signature-256` is
 * another key than `x-hub-signature-256` here, and both would be sent) is skipped anyway, so
 * no custom header can forge or duplicate a signature, whatever rules applied when it was saved.
 */
export function deliveryHeaders(h: HeaderParts, body: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h.custom)) {
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || OWN_HEADERS.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p))) continue;
    setKey(out, name, value);
  }
  out['content-type'] = 'application/json';
  out['user-agent'] = USER_AGENT;
  out['accept-encoding'] = 'identity';
  out['x-herald-event'] = h.eventType;
  out['x-herald-delivery'] = h.deliveryId;
  out['x-herald-attempt'] = String(h.attemptNo);
  out['webhook-id'] = h.deliveryId;
  out['webhook-timestamp'] = String(h.timestampSec);
  if (h.secret !== null) {
    out['x-hub-signature-256'] = hubSignature(h.secret, body);
    out['webhook-signature'] = standardSignature(h.secret, h.deliveryId, h.timestampSec, body);
    // Standard Webhooks: space-separated entries, any of which may verify. X-Hub-Signature-256
    // has room for one, the current secret's.
    if (h.previousSecret && h.previousSecret !== h.secret) out['webhook-signature'] += ' ' + standardSignature(h.previousSecret, h.deliveryId, h.timestampSec, body);
  }
  return out;
}

/** Signature values and custom header values are credentials: the attempt log keeps their names only. */
export function redactHeaders(
  headers: Record<string, string>,
  customNames: Iterable<string>,
): Record<string, string> {
  const secretNames = new Set(['x-hub-signature-256', 'webhook-signature', 'authorization']);
  for (const n of customNames) secretNames.add(n.toLowerCase());
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) setKey(out, k, secretNames.has(k.toLowerCase()) ? '[redacted]' : v);
  return out;
}
