/**
 * Name resolution for outgoing requests, kept off libuv's thread pool.
 *
 * `dns.lookup` (getaddrinfo) runs on the pool's four threads and cannot be cancelled: a webhook
 * whose name servers never answer holds a thread for as long as the OS resolver waits, once per
 * connection attempt, and with a few such attempts every other webhook's new connections wait
 * behind them (SPEC §5: a slow endpoint never delays the others). So names are asked of DNS
 * with c-ares (`dns.Resolver`), which runs on the event loop and gives up after a bounded time.
 *
 * getaddrinfo is still used, through a small gate, where DNS cannot answer: `localhost` and
 * single-label names (the hosts file, search domains), and names DNS says do not exist, which
 * the hosts file may still know. Not when the operator names the DNS servers (HERALD_DNS_SERVERS):
 * then those servers alone answer, for every name.
 */
import { promises as dns } from 'node:dns';

export type ResolvedAddress = { address: string; family: number };
export type ResolveFn = (hostname: string) => Promise<ResolvedAddress[]>;

export interface ResolverOptions {
  /** DNS servers (`ip`, `ip:port`, `[ipv6]:port`); the system's (/etc/resolv.conf) by default. */
  servers?: string[];
  /**
   * `os` (the default): names DNS cannot answer go to the OS resolver, as above. `none`: the
   * servers alone answer every name, and the hosts file and search domains are never asked.
   */
  fallback?: 'os' | 'none';
  /** c-ares' first timeout per query, doubled on each further try. */
  timeoutMs?: number;
  tries?: number;
  /** getaddrinfo calls at once (each holds a pool thread), and how many may wait for one. */
  osLookups?: number;
  osQueue?: number;
  /** The OS resolver; dns.lookup({ all: true }) by default. */
  osLookup?: ResolveFn;
}

/** Answers that say the name has no address in DNS, as opposed to DNS not answering. */
const ABSENT = new Set(['ENOTFOUND', 'ENODATA']);

const osDefault: ResolveFn = (hostname) => dns.lookup(hostname, { all: true });

/** A DNS failure in the shape the sender classifies as `dns` (never as a refused connection). */
export function dnsFailure(hostname: string, cause?: string): NodeJS.ErrnoException {
  const absent = cause === undefined || ABSENT.has(cause);
  return Object.assign(new Error(`${absent ? 'getaddrinfo ENOTFOUND' : `DNS lookup failed (${cause})`} ${hostname}`), {
    code: absent ? 'ENOTFOUND' : 'EAI_AGAIN',
    hostname,
  });
}

export function createResolver(o: ResolverOptions = {}): ResolveFn {
  const resolver = new dns.Resolver({ timeout: o.timeoutMs ?? 2000, tries: o.tries ?? 2 });
  if (o.servers) resolver.setServers(o.servers);
  const dnsOnly = o.fallback === 'none';
  const os: ResolveFn = dnsOnly ? async (hostname) => Promise.reject(dnsFailure(hostname)) : gate(o.osLookup ?? osDefault, o.osLookups ?? 2, o.osQueue ?? 64);

  return async (hostname) => {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    if (!dnsOnly && (!name.includes('.') || name === 'localhost' || name.endsWith('.localhost'))) return os(hostname);
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    const out: ResolvedAddress[] = [];
    if (v4.status === 'fulfilled') for (const address of v4.value) out.push({ address, family: 4 });
    if (v6.status === 'fulfilled') for (const address of v6.value) out.push({ address, family: 6 });
    if (out.length) return out;
    const codes = [v4, v6].map((r) => (r.status === 'rejected' ? String((r.reason as NodeJS.ErrnoException).code) : 'ENODATA'));
    if (codes.every((c) => ABSENT.has(c))) return os(hostname);
    throw dnsFailure(hostname, codes.find((c) => !ABSENT.has(c)));
  };
}

/**
 * At most `size` calls of `fn` at once, at most `queue` waiting; past that a call fails at once
 * (a DNS failure, retried like one) instead of queueing without end.
 */
function gate(fn: ResolveFn, size: number, queue: number): ResolveFn {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (hostname) => {
    if (running >= size) {
      if (waiting.length >= queue) throw dnsFailure(hostname, 'EBUSY');
      await new Promise<void>((go) => waiting.push(go)); // the slot is handed over, still counted
    } else running++;
    try {
      return await fn(hostname);
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
