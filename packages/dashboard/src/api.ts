/**
 * The dashboard's only way to the server: the public HTTP API, same origin, with the session
 * cookie the browser sends by itself. State-changing calls carry the session's CSRF token,
 * kept in memory only (never localStorage), so a reload fetches it again from /v1/session.
 */

export type Plan = 'free' | 'pro' | 'enterprise';
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface Session {
  kind: 'admin' | 'account';
  account_id: string | null;
  csrf_token: string;
  expires_at: string;
}
export interface Account {
  id: string;
  name: string;
  plan: Plan;
  created_at: string;
}
export interface Webhook {
  id: string;
  account_id: string;
  url: string;
  description: string;
  events: string[];
  headers: Record<string, string>;
  /** The stored header values cannot be decrypted: `headers` is empty, and they must be set again. */
  headers_unreadable: boolean;
  enabled: boolean;
  disabled_reason: string | null;
  /** The most deliveries a second sent to it; null: no limit. */
  rate_limit: number | null;
  has_secret: boolean;
  /** After a rotation: until then the replaced secret signs every delivery too. */
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}
export interface WebhookInput {
  url: string;
  description?: string;
  events: string[];
  headers?: Record<string, string>;
  secret?: string | null;
  enabled?: boolean;
  rate_limit?: number | null;
}
export interface EventType {
  name: string;
  description: string;
  builtin: boolean;
}
export interface Meta {
  version: string;
  egress_ip_ranges: string[];
  retry_schedule_ms: number[];
  max_attempts: number;
  timeout_ms: number;
  max_payload_bytes: number;
}
export interface TestResult {
  ok: boolean;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  error_kind: string | null;
  response_body: string | null;
  delivery_id?: string;
}
export interface Delivery {
  id: string;
  event_id: string;
  webhook_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  response_status: number | null;
  last_error: string | null;
  duration_ms: number | null;
  created_at: string;
  updated_at: string;
}
export interface Attempt {
  id: string;
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  success: boolean;
  error_kind: string | null;
  error: string | null;
  request_headers: Record<string, string>;
  response_headers: Record<string, string> | null;
  response_body: string | null;
  response_truncated: boolean;
}
/** One delivery in full. Here `attempts` is the list itself (its length is the count). */
export interface DeliveryDetail extends Omit<Delivery, 'attempts'> {
  request: { url: string | null; body: string };
  /** The latest 50, oldest first. */
  attempts: Attempt[];
  /** Attempts before those listed, left out. */
  earlier_attempts: number;
}
/** One entry of the account's audit log (GET …/audit-events). */
export interface AuditEvent {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** An answer other than 2xx, with the API's own code and message (shown to the user as is). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | null = null;
let onSignedOut: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}
/**
 * Called when the server says the session is gone (expired after 8 hours, signed out in
 * another tab). The shell keeps the screen as it is and says how to sign in again.
 */
export function onSessionLost(fn: () => void): void {
  onSignedOut = fn;
}

/** What a request answered 401 says, in place of the server's "Missing or invalid credentials". */
const SESSION_ENDED = 'Your session has ended. Sign in again, then try once more.';

const SAFE = new Set(['GET', 'HEAD']);
/** The longest Retry-After a read waits out by itself before showing the error. */
const MAX_READ_WAIT_S = 5;

export async function request<T>(method: string, path: string, body?: unknown, retried = false): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (!SAFE.has(method) && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Could not reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON: described below */
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    // Signed in again in another tab: this tab's CSRF token belongs to the old session.
    // Fetch the current one and try once more; a real CSRF attack has no cookie to do this with.
    if (res.status === 403 && err?.code === 'csrf_failed' && !retried) {
      const s = await request<Session>('GET', '/v1/session').catch(() => null);
      if (s) {
        csrfToken = s.csrf_token;
        return request<T>(method, path, body, true);
      }
    }
    if (res.status === 429) {
      // Past HERALD_API_RATE_LIMIT (the account's tabs share one budget, and some poll): a read
      // waits out a short Retry-After once; a change is never repeated behind the user's back.
      const waitS = Math.max(1, Number(res.headers.get('retry-after')) || 1);
      if (SAFE.has(method) && !retried && waitS <= MAX_READ_WAIT_S) {
        await new Promise((r) => setTimeout(r, waitS * 1000));
        return request<T>(method, path, body, true);
      }
      throw new ApiError(429, 'rate_limited', `Too many requests from this account just now. Try again in ${waitS} second${waitS === 1 ? '' : 's'}.`);
    }
    // /v1/session answers 401 for "not signed in" and for a wrong admin token: its callers decide.
    if (res.status === 401 && path !== '/v1/session') {
      onSignedOut?.();
      throw new ApiError(401, err?.code ?? 'unauthorized', SESSION_ENDED);
    }
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `The server answered ${res.status}.`);
  }
  return data as T;
}

const enc = encodeURIComponent;
const acc = (a: string) => `/v1/accounts/${enc(a)}`;

export const api = {
  session: () => request<Session>('GET', '/v1/session'),
  signIn: (adminToken: string) => request<Session>('POST', '/v1/session', { admin_token: adminToken }),
  signOut: () => request<void>('DELETE', '/v1/session'),
  meta: () => request<Meta>('GET', '/v1/meta'),
  accounts: (cursor?: string) => request<Page<Account>>('GET', `/v1/accounts?limit=100${cursor ? `&cursor=${enc(cursor)}` : ''}`),
  account: (a: string) => request<Account>('GET', acc(a)),
  eventTypes: () => request<{ data: EventType[] }>('GET', '/v1/event-types'),
  webhooks: (a: string) => request<{ data: Webhook[] }>('GET', `${acc(a)}/webhooks`),
  webhook: (a: string, id: string) => request<Webhook>('GET', `${acc(a)}/webhooks/${enc(id)}`),
  createWebhook: (a: string, w: WebhookInput) => request<Webhook>('POST', `${acc(a)}/webhooks`, w),
  updateWebhook: (a: string, id: string, w: Partial<WebhookInput>) => request<Webhook>('PATCH', `${acc(a)}/webhooks/${enc(id)}`, w),
  deleteWebhook: (a: string, id: string) => request<void>('DELETE', `${acc(a)}/webhooks/${enc(id)}`),
  revealSecret: (a: string, id: string) => request<{ secret: string | null }>('GET', `${acc(a)}/webhooks/${enc(id)}/secret`),
  rotateSecret: (a: string, id: string) =>
    request<{ secret: string; previous_secret_expires_at: string | null }>('POST', `${acc(a)}/webhooks/${enc(id)}/secret/rotate`, {}),
  /** `webhook_id` without `secret`: signed with that saved webhook's stored secret, server-side. */
  testUnsaved: (a: string, t: { url: string; secret?: string | null; headers?: Record<string, string>; webhook_id?: string }) =>
    request<TestResult>('POST', `${acc(a)}/webhooks/test`, t),
  testSaved: (a: string, id: string) => request<TestResult>('POST', `${acc(a)}/webhooks/${enc(id)}/test`),
  deliveries: (a: string, q: { webhook_id?: string; status?: string; event_type?: string; limit?: number; cursor?: string | null }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
    return request<Page<Delivery>>('GET', `${acc(a)}/deliveries?${p}`);
  },
  delivery: (a: string, id: string) => request<DeliveryDetail>('GET', `${acc(a)}/deliveries/${enc(id)}`),
  auditEvents: (a: string, cursor?: string | null) =>
    request<Page<AuditEvent>>('GET', `${acc(a)}/audit-events?limit=50${cursor ? `&cursor=${enc(cursor)}` : ''}`),
  redeliver: (a: string, id: string) => request<Delivery>('POST', `${acc(a)}/deliveries/${enc(id)}/redeliver`),
  /** One bounded step of sending a webhook's failed deliveries again; call again with next_cursor until it is null. */
  recover: (a: string, id: string, body: { since: string; until?: string; cursor?: string }) =>
    request<{ queued: number; next_cursor: string | null; until: string }>('POST', `${acc(a)}/webhooks/${enc(id)}/recover`, body),
};
