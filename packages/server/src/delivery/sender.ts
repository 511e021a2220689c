import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import { isIP } from 'node:net';
import { checkAddress, type AddressVerdict } from '../core/address-policy.js';
import { responseText } from '../core/response-text.js';
import { isSuccessStatus } from '../core/retry-policy.js';
import type { ErrorKind } from '../core/types.js';
import { createSafeLookup, DESTINATION_BLOCKED, DESTINATION_BLOCKED_MESSAGE, resolveAndCheck, type SafeLookupOptions } from './safe-lookup.js';

/** A webhook URL as a send uses it (see Sender.#target). */
interface Target {
  origin: string;
  path: string;
  host: string;
  /** The verdict on an IP-literal host; null for a name (vetted at connect time). */
  literal: AddressVerdict | null;
}
/** URLs remembered by one Sender. */
const MAX_CACHED_TARGETS = 10_000;

/** Keep this much of each response body for the attempt log, and read no more. */
const MAX_RESPONSE_BYTES = 64 * 1024; // 64 KiB

/** How much later than the attempt deadline undici's own timeouts are set (see the Agent). */
const UNDICI_TIMER_SLACK_MS = 1000;

export interface SenderOptions {
  timeoutMs: number;
  /** The address rules, and optionally the name resolution (resolver.ts by default). */
  policy: SafeLookupOptions;
  /** HTTP CONNECT proxy for every request (fixed egress IPs). */
  proxyUrl?: string;
}

/** An attempt's outcome as a value: only programming errors throw out of send(). */
export interface SendResult {
  statusCode: number | null;
  headers: Record<string, string> | null;
  body: string | null;
  truncated: boolean;
  errorKind: ErrorKind | null;
  /** Safe to show to the account: never an internal address. */
  errorMessage: string | null;
  /** For logs only. */
  detail?: string;
  durationMs: number;
}

/**
 * POSTs one attempt. Connections are kept alive and reused per origin. The address is vetted
 * when the connection is made (safe lookup), so a DNS answer cannot change between check and
 * connect; an IP-literal host is vetted here, since Node never calls `lookup` for literals.
 * One timer covers connect, response headers and body. Redirects are never followed.
 */
export class Sender {
  readonly #opts: SenderOptions;
  readonly #dispatcher: Dispatcher;

  constructor(opts: SenderOptions) {
    this.#opts = opts;
    const common = {
      connections: null, // unlimited per origin: concurrency is limited per webhook by the claim, and a cap per origin would queue one webhook's requests behind another's stalled ones
      pipelining: 1,
      keepAliveTimeout: 30_000, // 30 s: most receivers close idle sockets sooner; undici honours their Keep-Alive hint
      // The attempt's deadline is our own timer (Attempt.arm(), started in send()). undici's timers are
      // only a backstop, set later than it: they run on a coarse clock (~0.5 s ticks) and were
      // seen firing up to 300 ms early, cutting attempts short of HERALD_DELIVERY_TIMEOUT_MS.
      headersTimeout: opts.timeoutMs + UNDICI_TIMER_SLACK_MS,
      bodyTimeout: opts.timeoutMs + UNDICI_TIMER_SLACK_MS,
    };
    this.#dispatcher = opts.proxyUrl
      ? new ProxyAgent({ uri: opts.proxyUrl, ...common })
      : new Agent({ ...common, connect: { timeout: opts.timeoutMs + UNDICI_TIMER_SLACK_MS, lookup: createSafeLookup(opts.policy) } });
  }

  /** The most one send() can take. */
  get timeoutMs(): number {
    return this.#opts.timeoutMs;
  }

  /**
   * The parts of a webhook URL a send needs, and an IP literal's verdict (the policy is fixed
   * for the process): parsed once per URL instead of at every attempt. Bounded: cleared when
   * full.
   */
  readonly #targets = new Map<string, Target | null>();
  #target(url: string): Target | null {
    let t = this.#targets.get(url);
    if (t !== undefined) return t;
    try {
      const u = new URL(url);
      const host = u.hostname.replace(/^\[|\]$/g, '');
      t = { origin: u.origin, path: u.pathname + u.search, host, literal: isIP(host) ? checkAddress(host, this.#opts.policy) : null };
    } catch {
      t = null;
    }
    if (this.#targets.size >= MAX_CACHED_TARGETS) this.#targets.clear();
    this.#targets.set(url, t);
    return t;
  }

  async send(url: string, headers: Record<string, string>, body: Uint8Array): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const t = this.#target(url);
    if (!t) return failure('network', 'the webhook URL is not valid', elapsed());
    const host = t.host;

    // Vet what the connect-time lookup cannot see: IP literals, and names sent via a proxy
    // (the proxy resolves them, so Herald checks its own answer first). The DNS check counts
    // against the attempt's one timeout, so an attempt never lasts longer than the timeout.
    if (t.literal) {
      if (!t.literal.allowed) return blocked(t.literal.reason, elapsed());
    } else if (this.#opts.proxyUrl) {
      const r = await resolveAndCheck(host, this.#opts.policy, this.#opts.timeoutMs);
      if (r.ok === false) return blocked(r.detail, elapsed());
      if (r.ok === 'unresolved') {
        if (elapsed() >= this.#opts.timeoutMs) return failure('timeout', timeoutMessage(this.#opts.timeoutMs), elapsed());
        return failure('dns', 'DNS lookup failed: the host name did not resolve', elapsed());
      }
    }

    return new Promise<SendResult>((resolve) => {
      const attempt = new Attempt(resolve, started, this.#opts.timeoutMs);
      attempt.arm(Math.max(1, this.#opts.timeoutMs - elapsed()));
      try {
        this.#dispatcher.dispatch({ origin: t.origin, path: t.path, method: 'POST', headers, body }, attempt);
      } catch (e) {
        // Most refusals arrive through the handler; a few dispatchers (ProxyAgent) throw.
        attempt.onResponseError(undefined, e as Error);
      }
    });
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

function failure(kind: ErrorKind, message: string, durationMs: number): SendResult {
  return { statusCode: null, headers: null, body: null, truncated: false, errorKind: kind, errorMessage: message, durationMs };
}

function blocked(detail: string, durationMs: number): SendResult {
  return { ...failure('blocked', DESTINATION_BLOCKED_MESSAGE, durationMs), detail };
}

function statusMessage(status: number): string {
  if (status >= 300 && status < 400) return `HTTP ${status}: redirects are not followed`;
  return `HTTP ${status}`;
}

/** Thrown into undici to end an attempt early; never reaches a SendResult as such. */
class AttemptEnd extends Error {}

/**
 * One attempt as an undici dispatch handler: plain callbacks instead of `request()`'s response
 * stream, AbortController and promise per chunk (a fifth of the drain's event-loop time went to
 * those). Keeps at most MAX_RESPONSE_BYTES of the body, then aborts, which destroys that connection:
 * a receiver answering 1 GB costs 64 KiB of memory. One timer covers connect, headers and
 * body; when it fires the attempt is over at once, even while undici is still connecting.
 */
class Attempt implements Dispatcher.DispatchHandler {
  #resolve: ((r: SendResult) => void) | null;
  readonly #started: number;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | null = null;
  #controller: Dispatcher.DispatchController | null = null;
  /** This side ended the attempt: the deadline passed, or the body reached its cap (then answered as kept). */
  #ended = false;
  #status = 0;
  #headers: Record<string, string> | null = null;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(resolve: (r: SendResult) => void, started: number, timeoutMs: number) {
    this.#resolve = resolve;
    this.#started = started;
    this.#timeoutMs = timeoutMs;
  }

  arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#ended = true;
      this.#controller?.abort(new AttemptEnd('deadline'));
      // Not connected yet (or undici never calls back): the attempt ends now all the same.
      this.#finish({ ...failure('timeout', timeoutMessage(this.#timeoutMs), this.#elapsed()), detail: this.#controller ? 'no complete answer in time' : 'not connected in time' });
    }, ms);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#ended) controller.abort(new AttemptEnd('deadline'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: informational, the real answer follows
    this.#status = statusCode;
    this.#headers = flattenHeaders(headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#ended) return;
    const room = MAX_RESPONSE_BYTES - this.#size;
    if (chunk.length < room) {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
      return;
    }
    this.#chunks.push(chunk.subarray(0, room));
    this.#size = MAX_RESPONSE_BYTES;
    if (chunk.length > room) {
      this.#ended = true;
      controller.abort(new AttemptEnd('response too large'));
      this.#answer(true);
    }
  }

  onResponseEnd(): void {
    if (!this.#ended) this.#answer(false);
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, e: Error): void {
    if (this.#ended) return; // already answered (capped) or timed out
    const { kind, message, detail } = classify(e, this.#timeoutMs);
    this.#finish({ ...failure(kind, message, this.#elapsed()), detail });
  }

  #answer(truncated: boolean): void {
    const ok = isSuccessStatus(this.#status);
    const text = responseText(Buffer.concat(this.#chunks, this.#size), this.#headers?.['content-type'], truncated);
    this.#chunks = [];
    this.#finish({
      statusCode: this.#status,
      headers: this.#headers ?? {},
      body: text,
      truncated,
      errorKind: ok ? null : 'http_status',
      errorMessage: ok ? null : statusMessage(this.#status),
      durationMs: this.#elapsed(),
    });
  }

  #elapsed(): number {
    return Math.round(performance.now() - this.#started);
  }

  #finish(r: SendResult): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const resolve = this.#resolve;
    this.#resolve = null;
    resolve?.(r);
  }
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

const TLS_CODE = /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL|EPROTO$|UND_ERR_PRX_TLS$)/;

/**
 * What users read for a TLS failure. Fixed texts rather than OpenSSL's messages, which can
 * carry names and addresses from the certificate (the log keeps the original for operators).
 */
const TLS_MESSAGES: ReadonlyArray<[RegExp, string]> = [
  [/^CERT_HAS_EXPIRED$/, 'the certificate has expired'],
  [/^CERT_NOT_YET_VALID$/, 'the certificate is not yet valid'],
  [/^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/, 'the certificate is self-signed'],
  [/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/, 'the certificate is not signed by a trusted authority'],
  [/^(ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)$/, 'the certificate does not match the host name'],
  [/^CERT_REVOKED$/, 'the certificate has been revoked'],
];

const timeoutMessage = (timeoutMs: number): string => `timed out after ${timeoutMs} ms`;

/** Map a network error to a kind and a message fit for the account's eyes. */
export function classify(e: unknown, timeoutMs: number): { kind: ErrorKind; message: string; detail: string } {
  const chain: Array<{ code?: string; message?: string; detail?: string }> = [];
  for (let x = e as { code?: string; message?: string; cause?: unknown } | undefined; x && chain.length < 5; x = x.cause as typeof x) chain.push(x);
  const codes = chain.map((c) => c.code ?? '');
  const detail = chain.map((c) => `${c.code ?? ''} ${c.message ?? ''} ${c.detail ?? ''}`.trim()).join(' <- ');
  const has = (...cs: string[]) => codes.some((c) => cs.includes(c));
  if (has(DESTINATION_BLOCKED)) return { kind: 'blocked', message: DESTINATION_BLOCKED_MESSAGE, detail };
  if (has('UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'))
    return { kind: 'timeout', message: timeoutMessage(timeoutMs), detail };
  if (has('ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'ENODATA')) return { kind: 'dns', message: 'DNS lookup failed: the host name did not resolve', detail };
  if (has('ECONNREFUSED')) return { kind: 'refused', message: 'connection refused', detail };
  // The most specific code in the chain names the failure (a proxy tunnel wraps it in UND_ERR_PRX_TLS).
  const tlsCode = codes.find((c) => TLS_MESSAGES.some(([re]) => re.test(c))) ?? codes.find((c) => TLS_CODE.test(c));
  if (tlsCode) {
    const text = TLS_MESSAGES.find(([re]) => re.test(tlsCode))?.[1] ?? 'the TLS handshake failed';
    return { kind: 'tls', message: `TLS error: ${text} (${tlsCode})`, detail };
  }
  if (has('ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED')) return { kind: 'reset', message: 'connection reset by the receiver', detail };
  if (codes.some((c) => c.startsWith('HPE_')) || has('UND_ERR_INFO', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_HEADERS_OVERFLOW'))
    return { kind: 'protocol', message: 'the receiver sent an invalid HTTP response', detail };
  if (has('ENETUNREACH', 'EHOSTUNREACH')) return { kind: 'network', message: 'network unreachable', detail };
  return { kind: 'network', message: 'network error', detail };
}
