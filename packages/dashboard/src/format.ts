import type { Attempt, Delivery, Meta } from './api';

/** Words and numbers for people: durations, times, HTTP statuses and what a failure means. */

const UNITS: Array<[number, string]> = [
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1000, 'second'],
];

/** 6_000_000 → "1 hour 40 minutes" (the two largest non-zero units). */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [size, name] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
      rest -= n * size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** "about 18.5 hours", for the span of the whole retry schedule. */
export function roughDuration(ms: number): string {
  const h = ms / 3_600_000;
  if (h >= 48) return `about ${Math.round(h / 24)} days`;
  if (h >= 1) return `about ${Math.round(h * 2) / 2} hours`;
  return humanDuration(ms);
}

export function listWords(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** The retry policy in one sentence a customer can act on. */
export function retryPolicyText(m: Meta): string {
  const timeout = humanDuration(m.timeout_ms);
  const total = m.retry_schedule_ms.reduce((a, b) => a + b, 0);
  if (m.retry_schedule_ms.length === 0) {
    return `Herald waits up to ${timeout} for a 2xx answer and does not retry a failed delivery.`;
  }
  return (
    `Herald waits up to ${timeout} for a 2xx answer. If a delivery fails, it tries again after ` +
    `${listWords(m.retry_schedule_ms.map(humanDuration))}: ${m.max_attempts} attempts over ${roughDuration(total)}.`
  );
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago", "in 9 minutes"; `now` is passed so a whole table agrees on it. */
export function relativeTime(iso: string, now = Date.now()): string {
  const diff = Date.parse(iso) - now;
  const abs = Math.abs(diff);
  if (abs < 45_000) return diff <= 0 ? 'just now' : 'in a few seconds';
  const steps: Array<[number, Intl.RelativeTimeFormatUnit]> = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
  ];
  for (const [size, unit] of steps) {
    if (abs >= size) return rtf.format(Math.round(diff / size), unit);
  }
  return rtf.format(Math.round(diff / 60_000), 'minute');
}

const dtf = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });
export const absoluteTime = (iso: string): string => dtf.format(new Date(iso));

const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found',
  307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 410: 'Gone', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
export const statusText = (code: number): string => (REASONS[code] ? `${code} ${REASONS[code]}` : String(code));

export const STATUS_LABEL: Record<Delivery['status'], string> = { succeeded: 'Succeeded', failed: 'Failed', pending: 'Pending' };

/**
 * What a failed attempt means and what to do about it, in plain words. This is what lets a
 * customer fix their endpoint without reading Herald's documentation.
 */
export function explainFailure(a: { status_code: number | null; error_kind?: string | null; error: string | null }, timeoutMs?: number): string {
  const code = a.status_code;
  if (code !== null) {
    if (code >= 200 && code < 300) return 'Your endpoint accepted the request.';
    if (code >= 300 && code < 400)
      return `Your endpoint answered with a redirect (${code}). Herald never follows redirects, so the event was not delivered: update the webhook URL to the final address.`;
    if (code === 401 || code === 403)
      return `Your endpoint refused the request (${code}). If it checks a signature or an API key, make sure it uses this webhook's secret and custom headers.`;
    if (code === 404) return 'Nothing was found at this URL on your server (404). Check the path of the webhook URL.';
    if (code === 405) return 'Your endpoint does not accept POST requests at this URL (405).';
    if (code === 410) return 'Your endpoint answered 410 Gone, which tells Herald to stop: the webhook was turned off. Turn it back on when the endpoint is ready again.';
    if (code === 413) return 'Your endpoint said the request body is too large (413). Raise its body size limit.';
    if (code === 429) return 'Your endpoint asked Herald to slow down (429). Herald retries later and honours Retry-After.';
    if (code >= 400 && code < 500) return `Your endpoint rejected the request (${code}). Its response body below may say why.`;
    if (code >= 500) return `Your endpoint had an error while handling the request (${code}). Check your server's logs; Herald retries automatically.`;
    return `Your endpoint answered ${code}, which is not a success (2xx).`;
  }
  switch (a.error_kind) {
    case 'timeout':
      return `Your endpoint did not answer within ${timeoutMs ? humanDuration(timeoutMs) : 'the time limit'}. Answer with 2xx right away and do slow work in the background.`;
    case 'dns':
      return "The host name of the webhook URL could not be found (DNS). Check it for typos, or whether the domain's DNS records exist.";
    case 'refused':
      return 'Nothing accepted the connection at this address and port. Is your server running, and is the port open to the internet?';
    case 'reset':
      return 'Your server closed the connection before answering. A proxy, load balancer or crash on your side is the usual cause.';
    case 'tls':
      return "The HTTPS connection could not be secured: your server's certificate is invalid, expired or does not match the host name.";
    case 'blocked':
      return 'Herald does not deliver to this destination (private, local or reserved addresses are not allowed).';
    case 'protocol':
      return 'Your server answered with something that is not valid HTTP.';
    default:
      return a.error ? `The request failed: ${a.error}.` : 'The request failed before your endpoint answered.';
  }
}

/** A one-line summary of an attempt's outcome: "200 OK", "500 Internal Server Error", "Timed out". */
export function outcomeLabel(a: Pick<Attempt, 'status_code' | 'error_kind' | 'error'>): string {
  if (a.status_code !== null) return statusText(a.status_code);
  switch (a.error_kind) {
    case 'timeout': return 'Timed out';
    case 'dns': return 'DNS lookup failed';
    case 'refused': return 'Connection refused';
    case 'reset': return 'Connection reset';
    case 'tls': return 'TLS error';
    case 'blocked': return 'Destination not allowed';
    case 'protocol': return 'Invalid HTTP response';
    default: return a.error ?? 'Network error';
  }
}

/**
 * Re-indents JSON text without parsing its values, so what is shown is exactly what was
 * sent: JSON.parse would round 12345678901234567890 and drop duplicate keys. Returns null
 * when the text is not a JSON object or array.
 */
export function prettyJson(text: string, indent = '  '): string | null {
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return null;
  try {
    JSON.parse(t);
  } catch {
    return null;
  }
  let out = '';
  let depth = 0;
  let i = 0;
  const nl = () => '\n' + indent.repeat(depth);
  while (i < t.length) {
    const c = t[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < t.length && t[j] !== '"') j += t[j] === '\\' ? 2 : 1;
      out += t.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') {
      i++;
      continue;
    }
    if (c === '{' || c === '[') {
      // Empty containers stay on one line.
      let k = i + 1;
      while (k < t.length && /\s/.test(t[k]!)) k++;
      if (t[k] === (c === '{' ? '}' : ']')) {
        out += c + t[k];
        i = k + 1;
        continue;
      }
      depth++;
      out += c + nl();
    } else if (c === '}' || c === ']') {
      depth--;
      out += nl() + c;
    } else if (c === ',') {
      out += ',' + nl();
    } else if (c === ':') {
      out += ': ';
    } else {
      out += c;
    }
    i++;
  }
  return out;
}

/** Server texts (a disabled reason) carry ISO timestamps; show them like every other time here. */
export const humanizeTimestamps = (text: string): string =>
  text.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g, (iso) => absoluteTime(iso));
