/**
 * Glossary (the same words as Herald's API and SPEC §4):
 *   delivery     one event sent to one webhook. Its `delivery_id` is the same on every attempt
 *                and on manual redelivery, so it is the key to deduplicate on.
 *   attempt      one HTTP request of a delivery; `webhook-timestamp` is fresh on each one.
 *   raw body     the exact bytes received. Both signatures cover these bytes, so they must be
 *                verified before any JSON parser touches the body.
 *   secret       the webhook's signing secret, used as its UTF-8 bytes (a `whsec_` prefix is
 *                part of the string, never base64-decoded).
 *   hub scheme   `X-Hub-Signature-256: sha256=<hex HMAC of the body>` (GitHub's scheme).
 *   standard     Standard Webhooks: `webhook-signature: v1,<base64 HMAC of "id.timestamp.body">`,
 *                which also lets the receiver refuse replays by timestamp.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The envelope Herald sends, in its key order. */
export interface WebhookEvent<Type extends string = string, Data = JsonObject> {
  event: Type;
  /** ISO 8601, when the event was published (not when this attempt was sent). */
  created_at: string;
  delivery_id: string;
  data: Data;
}

/**
 * Event types and their `data`. Herald does not fix the shape of `data`, so the built-ins are
 * open JSON objects. Describe your own by passing a map to `HeraldEvent<…>`, or augment this
 * interface (`declare module '@herald/receiver' { interface HeraldEventMap { … } }`).
 */
export interface HeraldEventMap {
  'content.generated': JsonObject;
  'analysis.completed': JsonObject;
  'publishing.failed': JsonObject;
  /** Sent by the dashboard's Test Connection. */
  ping: JsonObject;
}

export const BUILT_IN_EVENT_TYPES = ['content.generated', 'analysis.completed', 'publishing.failed', 'ping'] as const;
export type BuiltInEventType = (typeof BUILT_IN_EVENT_TYPES)[number];

/**
 * A union discriminated by `event`. The operator can register more event types than it lists,
 * so a `switch (event.event)` should keep a default branch.
 */
export type HeraldEvent<Map extends object = HeraldEventMap> = {
  [Type in keyof Map & string]: WebhookEvent<Type, Map[Type]>;
}[keyof Map & string];

/** The raw body as received: bytes (Buffer is a Uint8Array), or a string holding them as UTF-8. */
export type RawBody = Uint8Array | ArrayBuffer | ArrayBufferView | string;

/** The `get` half of the Fetch `Headers` class, so any runtime's implementation fits. */
export interface HeadersLike {
  get(name: string): string | null;
}

/**
 * Request headers: a Fetch `Headers`, node's `IncomingHttpHeaders`, or a plain object with
 * names in any case.
 */
export type HeadersInput = HeadersLike | Readonly<Record<string, string | readonly string[] | undefined>>;
