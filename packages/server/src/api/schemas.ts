import { Type, type TSchema } from '@sinclair/typebox';
import { DELIVERY_STATUSES, PLANS } from '../core/types.js';

/**
 * Request and response schemas. Fastify validates requests and serialises responses with
 * them, and /openapi.json is generated from the same objects, so the documentation cannot
 * drift from what the server accepts. Names follow the API: `XIn` for bodies, `X` for output.
 */
const Iso = Type.String({ format: 'date-time' });
const IsoSaying = (description: string) => Type.String({ format: 'date-time', description });
const IsoOrNull = Type.Union([Iso, Type.Null()]);
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { $id: 'Error', description: 'Every error: a stable snake_case code and a human message' },
);

export const PlanSchema = Type.Union(PLANS.map((p) => Type.Literal(p)));

export const Account = Type.Object(
  { id: Type.String(), name: Type.String(), plan: PlanSchema, created_at: Iso, updated_at: Iso },
  { $id: 'Account' },
);
export const AccountIn = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), plan: PlanSchema },
  { additionalProperties: false },
);
export const AccountPatch = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), plan: Type.Optional(PlanSchema) },
  { additionalProperties: false, minProperties: 1 },
);

export const ApiKeyCreated = Type.Object(
  { id: Type.String(), key: Type.String({ description: 'Shown once; Herald keeps only a hash' }), prefix: Type.String(), created_at: Iso },
  { $id: 'ApiKeyCreated' },
);
export const ApiKey = Type.Object({ id: Type.String(), prefix: Type.String(), created_at: Iso }, { $id: 'ApiKey' });

export const PortalSession = Type.Object(
  { url: Type.String({ description: 'One-time link that opens the dashboard signed in to the account' }), expires_at: Iso },
  { $id: 'PortalSession' },
);

export const EventType = Type.Object(
  { name: Type.String(), description: Type.String(), schema: Nullable(Type.Unknown()), builtin: Type.Boolean(), created_at: Iso },
  { $id: 'EventType' },
);
export const EventTypeIn = Type.Object(
  {
    name: Type.String({ pattern: '^[a-zA-Z0-9_]+(\\.[a-zA-Z0-9_]+)*$', maxLength: 100, description: 'dot-separated words, e.g. `invoice.paid`' }),
    description: Type.Optional(Type.String({ maxLength: 1000, default: '' })),
    schema: Type.Optional(Nullable(Type.Object({}, { additionalProperties: true, description: 'optional JSON Schema of `data`' }))),
  },
  { additionalProperties: false },
);

const Headers = Type.Record(Type.String(), Type.String(), { description: 'custom headers sent with every delivery' });

export const Webhook = Type.Object(
  {
    id: Type.String(),
    account_id: Type.String(),
    url: Type.String(),
    description: Type.String(),
    events: Type.Array(Type.String()),
    headers: Headers,
    headers_unreadable: Type.Boolean({ description: 'the stored custom header values cannot be decrypted (damaged, or sealed with another key): `headers` shows none and deliveries fail until they are set again (`headers`, `{}` for none)' }),
    enabled: Type.Boolean(),
    disabled_reason: Nullable(Type.String()),
    rate_limit: Type.Union([Type.Integer(), Type.Null()], { description: 'the most deliveries a second sent to this webhook, over every Herald process; null: no limit' }),
    has_secret: Type.Boolean(),
    secret: Type.Optional(Type.String({ description: 'only in the answer to create, and only when set' })),
    previous_secret_expires_at: Type.Union([Iso, Type.Null()], { description: 'after a rotation: until then deliveries are signed with the previous secret too (a second webhook-signature entry)' }),
    created_at: Iso,
    updated_at: Iso,
  },
  { $id: 'Webhook' },
);
const HeadersIn = Type.Unknown({
  description:
    'object of header name → string value, sent with every delivery. At most 20; names are HTTP tokens; values at most 4096 bytes of ASCII or Latin-1 text with no control characters; ' +
    'Host, Content-Type, Content-Length, Transfer-Encoding, Connection, User-Agent, Accept-Encoding, X-Hub-Signature-256, X-Herald-*, webhook-* and hop-by-hop headers are reserved (422 header_not_allowed)',
  examples: [{ Authorization: 'Bearer abc123' }],
});
const RateLimitIn = Type.Union([Type.Integer({ minimum: 1, maximum: 10000 }), Type.Null()], {
  description: 'the most deliveries a second Herald sends to this webhook (1–10,000), for a receiver that cannot take more; null or absent: no limit',
});
const SecretIn = Type.String({ minLength: 16, maxLength: 256, description: 'signing secret, 16–256 characters (e.g. `whsec_…`)' });
export const WebhookIn = Type.Object(
  {
    url: Type.String({ description: 'https:// URL of the receiver' }),
    secret: Type.Optional(Nullable(SecretIn)),
    events: Type.Array(Type.String(), { minItems: 1, maxItems: 200, description: 'event type names, or ["*"] for all' }),
    // Checked by core/header-policy.ts rather than by the schema, so each broken rule gets its
    // own 422 header_not_allowed message (and values are never type-coerced).
    headers: Type.Optional(HeadersIn),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    enabled: Type.Optional(Type.Boolean()),
    rate_limit: Type.Optional(RateLimitIn),
  },
  { additionalProperties: false },
);
export const WebhookPatch = Type.Object(
  {
    url: Type.Optional(Type.String()),
    secret: Type.Optional(Nullable(SecretIn)),
    events: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 200 })),
    headers: Type.Optional(HeadersIn),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    enabled: Type.Optional(Type.Boolean()),
    rate_limit: Type.Optional(RateLimitIn),
  },
  { additionalProperties: false },
);
export const WebhookSecret = Type.Object({ secret: Nullable(Type.String()) }, { $id: 'WebhookSecret' });
/** How long a rotated-out secret keeps signing unless the rotation says otherwise: a day; at most a week. */
export const DEFAULT_PREVIOUS_SECRET_S = 24 * 3600;
export const MAX_PREVIOUS_SECRET_S = 7 * 24 * 3600;
export const RotateSecretIn = Type.Object(
  {
    secret: Type.Optional(SecretIn),
    previous_secret_valid_for: Type.Optional(Type.Integer({
      minimum: 0, maximum: MAX_PREVIOUS_SECRET_S, default: DEFAULT_PREVIOUS_SECRET_S,
      description: 'seconds the replaced secret keeps signing beside the new one (default a day; 0 stops it at once)',
    })),
  },
  { additionalProperties: false },
);
export const RotatedSecret = Type.Object(
  { secret: Type.String(), previous_secret_expires_at: IsoOrNull },
  { $id: 'RotatedSecret' },
);

/** A timestamp in a request: ISO 8601 with a time zone, checked by `parseInstant` (ajv here has no formats). */
const InstantIn = (description: string) => Type.String({ maxLength: 40, description });
export const RecoverIn = Type.Object(
  {
    since: InstantIn('ISO 8601 date-time: failed deliveries created at or after it are sent again'),
    until: Type.Optional(InstantIn('ISO 8601 date-time, default now: only deliveries created before it')),
    cursor: Type.Optional(Type.String({ maxLength: 64, description: 'next_cursor of the previous call, to go on where it stopped' })),
  },
  { additionalProperties: false },
);
export const Recovered = Type.Object(
  {
    queued: Type.Integer({ description: 'failed deliveries queued again by this call' }),
    next_cursor: Nullable(Type.String({ description: 'when not null, more of the window is left: call again with it as cursor, and this until' })),
    until: IsoSaying('the end of the window this call used (now, when the request left it out)'),
  },
  { $id: 'Recovered' },
);
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;
/**
 * Epoch ms of an ISO 8601 date-time with a time zone (`2024-05-20T14:30:00Z`), or null: also
 * for a day the month does not have (Date.parse reads 30 February as 1 March) and for a time
 * before 1970, which ids (and so deliveries) cannot carry.
 */
export function parseInstant(text: string): number | null {
  if (!INSTANT.test(text)) return null;
  const [y, m, d] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  if (m < 1 || m > 12 || d < 1 || d > new Date(Date.UTC(y, m, 0)).getUTCDate()) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

export const AuditEvent = Type.Object(
  {
    id: Type.String(),
    at: Iso,
    actor: Type.String({ description: 'who: admin_token, api_key:<key id>, operator_session (the admin token in the dashboard), portal_session (the account in the dashboard) or portal_link (a sign-in link being used)' }),
    action: Type.String({ description: 'what, as <object>.<verb>: webhook.created, webhook.updated, webhook.deleted, webhook.secret_revealed, webhook.secret_rotated, webhook.recovered, delivery.redelivered, api_key.created, api_key.revoked, account.created, account.updated, portal_link.created, portal_session.opened' }),
    target: Nullable(Type.String({ description: 'the id of what it was done to; null for the account itself and sign-in links' })),
    details: Nullable(Type.Object({}, { additionalProperties: true, description: 'plain facts of the change (field names, URLs, counts); never a secret or a custom header value' })),
  },
  { $id: 'AuditEvent' },
);
export const AuditEventList = Type.Object({ data: Type.Array(AuditEvent), next_cursor: Nullable(Type.String()) }, { $id: 'AuditEventList' });
export const AuditQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })), cursor: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

export const TestConnectionIn = Type.Object(
  {
    url: Type.String(), secret: Type.Optional(Nullable(SecretIn)), headers: Type.Optional(HeadersIn),
    webhook_id: Type.Optional(Type.String({ description: 'a saved webhook of the account: without `secret`, the ping is signed with its stored secret (and the previous one while it still signs), which is never shown' })),
  },
  { additionalProperties: false },
);
export const TestConnectionResult = Type.Object(
  {
    ok: Type.Boolean(),
    status_code: Nullable(Type.Integer()),
    duration_ms: Type.Integer(),
    error: Nullable(Type.String()),
    error_kind: Nullable(Type.String({ description: 'as in the attempt log: timeout, dns, refused, reset, tls, blocked, protocol, network, http_status' })),
    response_body: Nullable(Type.String()),
    delivery_id: Type.Optional(Type.String({ description: 'for a saved webhook: the ping in its history' })),
  },
  { $id: 'TestConnectionResult' },
);

export const PublishIn = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 100 }),
    data: Type.Unknown({ description: 'any JSON value; delivered byte for byte as sent' }),
  },
  { additionalProperties: false },
);
export const Published = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    created_at: Iso,
    deliveries: Type.Array(Type.Object({ id: Type.String(), webhook_id: Type.String() })),
  },
  { $id: 'Published' },
);

export const DeliveryStatusSchema = Type.Union(DELIVERY_STATUSES.map((s) => Type.Literal(s)));
export const Delivery = Type.Object(
  {
    id: Type.String(),
    event_id: Type.String(),
    webhook_id: Type.String(),
    event_type: Type.String(),
    status: DeliveryStatusSchema,
    attempts: Type.Integer(),
    next_attempt_at: IsoOrNull,
    last_attempt_at: IsoOrNull,
    response_status: Nullable(Type.Integer()),
    last_error: Nullable(Type.String()),
    duration_ms: Nullable(Type.Integer()),
    created_at: Iso,
    updated_at: Iso,
  },
  { $id: 'Delivery' },
);
export const Attempt = Type.Object(
  {
    id: Type.String(),
    attempt: Type.Integer(),
    started_at: Iso,
    duration_ms: Type.Integer(),
    status_code: Nullable(Type.Integer()),
    success: Type.Boolean(),
    error_kind: Nullable(Type.String()),
    error: Nullable(Type.String()),
    request_headers: Type.Record(Type.String(), Type.String()),
    response_headers: Nullable(Type.Record(Type.String(), Type.String())),
    response_body: Nullable(Type.String()),
    response_truncated: Type.Boolean(),
  },
  { $id: 'Attempt' },
);
export const DeliveryDetail = Type.Object(
  {
    ...Delivery.properties,
    request: Type.Object({ url: Nullable(Type.String()), body: Type.String({ description: 'the exact bytes sent (UTF-8)' }) }),
    attempts: Type.Array(Attempt, { description: 'the latest 50 attempts, oldest first' }),
    earlier_attempts: Type.Integer({ minimum: 0, description: 'attempts made before those listed, not shown (0 unless the delivery was redelivered many times)' }),
  },
  { $id: 'DeliveryDetail' },
);
export const DeliveryList = Type.Object(
  { data: Type.Array(Delivery), next_cursor: Nullable(Type.String()) },
  { $id: 'DeliveryList' },
);
export const DeliveryQuery = Type.Object(
  {
    webhook_id: Type.Optional(Type.String()),
    event_type: Type.Optional(Type.String()),
    status: Type.Optional(DeliveryStatusSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const Meta = Type.Object(
  {
    version: Type.String(),
    egress_ip_ranges: Type.Array(Type.String()),
    retry_schedule_ms: Type.Array(Type.Number()),
    max_attempts: Type.Integer(),
    timeout_ms: Type.Integer(),
    max_payload_bytes: Type.Integer(),
    max_webhooks_per_account: Type.Integer(),
  },
  { $id: 'Meta' },
);

export const AccountParams = Type.Object({ account: Type.String() });
export const WebhookParams = Type.Object({ account: Type.String(), webhook: Type.String() });
export const DeliveryParams = Type.Object({ account: Type.String(), delivery: Type.String() });


/** Standard error responses for the OpenAPI document. */
export function errors(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody]));
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * One page of a cursor-paginated list, from rows read with `limit + 1`: the extra row only
 * says there is more, and the last id shown is the next cursor.
 */
export function pageOf<R extends { id: string }, O>(rows: R[], limit: number, out: (r: R) => O): { data: O[]; next_cursor: string | null } {
  const page = rows.slice(0, limit);
  return { data: page.map(out), next_cursor: rows.length > limit ? page.at(-1)!.id : null };
}
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
