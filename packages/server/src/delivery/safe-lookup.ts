/**
 * The connect-time guard against SSRF and DNS rebinding.
 *
 * `createSafeLookup` returns a `lookup` for net.connect / tls.connect / http.request / an undici
 * Agent's `connect` options. It resolves the name itself, vets EVERY answer with checkAddress,
 * and hands the socket only the vetted addresses, so the address checked is the address
 * connected to (the pinning). Checking at creation time alone is not enough: DNS can answer
 * differently a second later.
 *
 * Three Node traps this file exists for (research takeaway 2):
 * - Node never calls `lookup` for IP-literal hosts: callers must check those themselves with
 *   checkAddress (checkWebhookUrl does, and resolveAndCheck below does).
 * - Node 20's autoSelectFamily ("happy eyeballs") calls `lookup` with `{ all: true }` and races
 *   every address returned; each one must be vetted, not only the first.
 * - A name with one public and one private answer must be refused as a whole (Hook0's rule),
 *   otherwise a connection failure on the public one falls back to the private one.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { checkAddress, type AddressPolicyOptions } from '../core/address-policy.js';
import { createResolver, dnsFailure, type ResolvedAddress, type ResolveFn } from './resolver.js';

export type { ResolvedAddress, ResolveFn };

export interface SafeLookupOptions extends AddressPolicyOptions {
  /** Name resolution; defaults to DNS off the thread pool, the OS resolver as fallback (resolver.ts). */
  resolve?: ResolveFn;
}

export const DESTINATION_BLOCKED = 'EDESTINATIONBLOCKED';
/** What users see for a refused destination: no address, no port (no port-scan oracle). */
export const DESTINATION_BLOCKED_MESSAGE = 'destination not allowed';

/** A refused destination. `detail` names the address and range, for logs only. */
export class DestinationBlockedError extends Error {
  readonly code = DESTINATION_BLOCKED;
  readonly detail: string;
  constructor(detail: string) {
    super(DESTINATION_BLOCKED_MESSAGE);
    this.name = 'DestinationBlockedError';
    this.detail = detail;
  }
}

let systemResolve: ResolveFn | null = null;
const defaultResolve: ResolveFn = (hostname) => (systemResolve ??= createResolver())(hostname);

/**
 * Resolve and vet. Every resolved address is checked, of every family, even when the socket
 * asks for one family only: the verdict on a name must not depend on how it is asked.
 */
async function vettedAddresses(hostname: string, opts: SafeLookupOptions): Promise<ResolvedAddress[]> {
  const bare = stripBrackets(hostname);
  // An IP literal never goes to DNS; one with a zone id (`fe80::1%eth0`) is refused by checkAddress.
  const literalFamily = isIP(bare);
  const answers = literalFamily
    ? [{ address: bare, family: literalFamily }]
    : await (opts.resolve ?? defaultResolve)(bare);
  if (answers.length === 0) throw dnsFailure(bare);
  for (const a of answers) {
    const verdict = checkAddress(a.address, opts);
    if (!verdict.allowed) throw new DestinationBlockedError(`${bare} -> ${a.address}: ${verdict.reason}`);
  }
  return answers;
}

export function createSafeLookup(opts: SafeLookupOptions): LookupFunction {
  return (hostname, options, callback) => {
    // Be lenient about the dns.lookup-style call shapes: (host, cb) and (host, family, cb).
    const cb = (typeof options === 'function' ? options : callback) as Parameters<LookupFunction>[2];
    const o: LookupOptions = typeof options === 'object' && options !== null ? options : {};
    const family = familyNumber(typeof options === 'number' ? options : o.family);
    // The callback runs on its own tick, outside the promise chain, like dns.lookup's: an
    // exception thrown by the socket code stays an exception instead of a swallowed rejection.
    const reply = (...args: Parameters<typeof cb>) => process.nextTick(() => cb(...args));
    vettedAddresses(hostname, opts).then(
      (answers) => {
        const wanted = family === 0 ? answers : answers.filter((a) => a.family === family);
        if (wanted.length === 0) return reply(dnsFailure(hostname), o.all ? [] : '', undefined);
        const list: LookupAddress[] = wanted.map((a) => ({ address: a.address, family: a.family }));
        if (o.all) return reply(null, list);
        const first = list[0] as LookupAddress;
        return reply(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => reply(err, o.all ? [] : '', undefined),
    );
  };
}

export type ResolveCheck =
  | { ok: true; addresses: string[] }
  | { ok: false; code: 'url_not_allowed'; message: string; detail: string }
  | { ok: 'unresolved' };

/**
 * The creation-time check of a webhook's host. A name that resolves to any forbidden address is
 * refused. A name that does not resolve (ENOTFOUND, a slow resolver) is accepted as 'unresolved':
 * the receiver may not exist yet, and every delivery attempt is vetted again at connect time.
 */
export async function resolveAndCheck(
  hostname: string,
  opts: SafeLookupOptions,
  timeoutMs = 2000,
): Promise<ResolveCheck> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  try {
    const answers = await Promise.race([vettedAddresses(hostname, opts), timeout]);
    if (answers === 'timeout') return { ok: 'unresolved' };
    return { ok: true, addresses: answers.map((a) => a.address) };
  } catch (err) {
    if (err instanceof DestinationBlockedError) {
      return {
        ok: false,
        code: 'url_not_allowed',
        message: 'destination not allowed: the host resolves to a loopback, private or other non-public address',
        detail: err.detail,
      };
    }
    return { ok: 'unresolved' };
  } finally {
    clearTimeout(timer);
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function familyNumber(f: LookupOptions['family']): number {
  if (f === 4 || f === 'IPv4') return 4;
  if (f === 6 || f === 'IPv6') return 6;
  return 0;
}
