/**
 * Rules for the custom headers a webhook sends. Checked when a webhook is created or changed,
 * so a bad header is a 422 for the user, never a failed delivery later.
 */
export const MAX_CUSTOM_HEADERS = 20;
export const MAX_HEADER_VALUE_BYTES = 4096; // 4 KiB

/** Headers Herald sets itself: a custom header must never replace or duplicate them. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'user-agent',
  'x-hub-signature-256',
  // Hop-by-hop and framing headers that would corrupt the request if a user set them.
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
  'content-encoding',
  // Herald asks for an uncompressed answer (the history shows the body as received).
  'accept-encoding',
  // Meant for the egress proxy (HERALD_EGRESS_PROXY), which is the operator's, not the account's.
  'proxy-authorization',
]);
export const RESERVED_PREFIXES: readonly string[] = ['x-herald-', 'webhook-'];

// RFC 9110 token characters.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Control characters: C0 (CR, LF, NUL…) but tab, DEL, and C1 (U+0080–U+009F).
const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;
// What an HTTP header can carry: one byte per character, so nothing past U+00FF (undici sends
// header values as Latin-1 and fails the request on anything else, as Node's http does).
const ONE_BYTE_RE = /^[\x00-\xff]*$/;

export type HeaderProblem = { ok: false; message: string };

export function checkCustomHeaders(
  input: unknown,
): { ok: true; headers: Record<string, string> } | HeaderProblem {
  if (input === undefined || input === null) return { ok: true, headers: {} };
  if (typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, message: 'headers must be an object of name: value pairs' };
  }
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > MAX_CUSTOM_HEADERS) {
    return { ok: false, message: `at most ${MAX_CUSTOM_HEADERS} custom headers are allowed` };
  }
  const seen = new Set<string>();
  // A null-prototype object: a header named `__proto__` must be kept, not swallowed.
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of entries) {
    if (!TOKEN_RE.test(name)) {
      return { ok: false, message: `header name ${JSON.stringify(name)} is not a valid HTTP token` };
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p))) {
      return { ok: false, message: `header ${name} is set by Herald and cannot be overridden` };
    }
    if (seen.has(lower)) return { ok: false, message: `header ${name} is given twice` };
    seen.add(lower);
    if (typeof value !== 'string') {
      return { ok: false, message: `header ${name} must have a string value` };
    }
    if (CONTROL_RE.test(value)) {
      return { ok: false, message: `header ${name} contains CR, LF or another control character` };
    }
    if (!ONE_BYTE_RE.test(value)) {
      return { ok: false, message: `header ${name} contains a character an HTTP header cannot carry (only ASCII and Latin-1 text)` };
    }
    if (Buffer.byteLength(value) > MAX_HEADER_VALUE_BYTES) {
      return { ok: false, message: `header ${name} is longer than ${MAX_HEADER_VALUE_BYTES} bytes` };
    }
    headers[name] = value;
  }
  return { ok: true, headers };
}
