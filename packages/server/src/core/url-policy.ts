/**
 * Is a webhook URL acceptable (SPEC §3)? Pure: no DNS. This is the first line of defence, run
 * when a webhook is created or changed; the decisive check runs again at connect time on the
 * resolved address (delivery/safe-lookup.ts), because DNS answers can change.
 *
 * The URL is parsed exactly once, with the WHATWG parser that also sends the request, and the
 * normalised `href` is what gets stored and sent: two parsers that disagree about the host are
 * how `https://evil.com@127.0.0.1/`-style bypasses work. IP literals are judged on the parser's
 * output, which has already turned `2130706433`, `0x7f.1`, `0177.1`, `127.1` and `127.0.0.1.`
 * into `127.0.0.1`.
 */
import { isIP } from 'node:net';
import {
  canonicalIp,
  checkAddress,
  formatIp,
  isLoopback,
  parseIp,
  type AddressPolicyOptions,
} from './address-policy.js';

export const MAX_URL_LENGTH = 2048;

export interface UrlPolicyOptions extends AddressPolicyOptions {
  /** HERALD_DEV: `http://` is accepted too. */
  allowHttp: boolean;
  /** Herald's own host names or addresses (e.g. from its public URL): a target there is a loop. */
  selfHosts: string[];
  /**
   * Herald's own ports. When given (dev mode), a loopback target is a self-loop only on one of
   * these ports, so `http://127.0.0.1:9999/` can reach a local test receiver.
   */
  selfPorts?: number[];
}

export type UrlCheck =
  | {
      ok: true;
      /** The normalised URL: store it and send to exactly it. */
      href: string;
      /** Without brackets; IDN as punycode. */
      hostname: string;
      port: number;
      ipLiteral: boolean;
    }
  | {
      ok: false;
      code: 'invalid_url' | 'url_not_allowed';
      /** User-facing; says nothing beyond what the input already shows. */
      message: string;
      /** Internal detail for logs only (e.g. `loopback 127.0.0.0/8`). */
      detail?: string;
    };

const MSG = {
  notString: 'URL must be a string',
  empty: 'URL is required',
  tooLong: `URL must be at most ${MAX_URL_LENGTH} characters`,
  whitespace: 'URL must not contain spaces, tabs, line breaks or other control characters',
  malformed: 'URL is not a valid absolute URL',
  https: 'URL must use https://',
  httpOrHttps: 'URL must use https:// or http://',
  shape: 'URL must start with the scheme and // followed by the host, e.g. https://example.com/hook',
  credentials: 'URL must not contain credentials (user:password@)',
  backslash: 'URL must not contain a backslash before the path',
  zoneId: 'URL must not contain an IPv6 zone id',
  port: 'URL port must be between 1 and 65535',
  noHost: 'URL must have a host name',
  emptyLabel: 'URL host name must not contain empty labels (`..` or a leading dot)',
  address: 'destination not allowed: loopback, private and other non-public addresses are refused',
  localName: 'destination not allowed: local and internal host names are refused',
  singleLabel: 'destination not allowed: the host must be a fully qualified domain name',
  self: 'destination not allowed: the URL points at this Herald server',
} as const;

/**
 * Names that are local by definition. Refused unless dev mode; the IP check on the resolved
 * address would usually catch them too, but these must never depend on what DNS says.
 */
const LOCAL_NAME_SUFFIXES: readonly { suffix: string; why: string }[] = [
  { suffix: 'localhost', why: 'RFC 6761: localhost and *.localhost are always loopback' },
  { suffix: 'local', why: 'RFC 6762 multicast DNS: hosts on the local link' },
  { suffix: 'internal', why: 'reserved for private use; metadata.google.internal is cloud metadata' },
  { suffix: 'home.arpa', why: 'RFC 8375: home networks' },
  { suffix: 'localdomain', why: 'localhost.localdomain is loopback in many /etc/hosts files' },
];

// C0 controls, DEL, C1 controls and any Unicode whitespace. The WHATWG parser silently strips
// tabs and newlines (and trims leading/trailing spaces), so they must be refused before parsing.
const FORBIDDEN_CHARS = /[\p{Cc}\s]/u;

type Failure = Extract<UrlCheck, { ok: false }>;

const invalid = (message: string): Failure => ({ ok: false, code: 'invalid_url', message });
const notAllowed = (message: string, detail: string): Failure => ({
  ok: false,
  code: 'url_not_allowed',
  message,
  detail,
});

export function checkWebhookUrl(raw: unknown, opts: UrlPolicyOptions): UrlCheck {
  if (typeof raw !== 'string') return invalid(MSG.notString);
  if (raw === '') return invalid(MSG.empty);
  if (raw.length > MAX_URL_LENGTH) return invalid(MSG.tooLong);
  if (FORBIDDEN_CHARS.test(raw)) return invalid(MSG.whitespace);

  const authority = rawAuthority(raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return invalid(explainParseFailure(authority));
  }

  const shape = checkShape(raw, url, authority, opts);
  if (shape) return shape;

  const defaultPort = url.protocol === 'https:' ? 443 : 80;
  const port = url.port === '' ? defaultPort : Number(url.port);
  // `new URL` already refuses ports above 65535 but accepts `:0`.
  if (!Number.isInteger(port) || port < 1 || port > 65535) return invalid(MSG.port);
  if (url.href.length > MAX_URL_LENGTH) return invalid(MSG.tooLong); // punycode/escaping grew it

  const ipLiteral = url.hostname.startsWith('[') || isIP(url.hostname) === 4;
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const destination = checkDestination(hostname, ipLiteral, port, opts);
  if (destination) return destination;

  return { ok: true, href: url.href, hostname, port, ipLiteral };
}

/** Scheme, `scheme://host` form, credentials and stray backslashes. */
function checkShape(raw: string, url: URL, authority: string | null, opts: UrlPolicyOptions): Failure | null {
  const schemes = opts.allowHttp ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) return invalid(opts.allowHttp ? MSG.httpOrHttps : MSG.https);
  // The parser also accepts `https:example.com`, `https:///example.com` and `https:\\host`;
  // other tools read those differently, so insist on the one unambiguous form.
  if (!authority || !raw.toLowerCase().startsWith(`${url.protocol}//`)) return invalid(MSG.shape);
  // Any `@` in the authority, even an empty `https://@host/`: userinfo leaks into logs and UIs,
  // and `https://127.0.0.1%2f@evil.com/` is a classic parser-confusion probe.
  if (url.username !== '' || url.password !== '' || authority.includes('@')) return invalid(MSG.credentials);
  if (authority.includes('\\')) return invalid(MSG.backslash);
  if (url.hostname === '') return invalid(MSG.noHost);
  // `a..b` or `.example.com` is not a host name; refusing it also keeps junk away from DNS.
  if (url.hostname.startsWith('.') || url.hostname.includes('..')) return invalid(MSG.emptyLabel);
  return null;
}

/** Self-loop, IP literal verdict, and local or single-label names. */
function checkDestination(
  hostname: string,
  ipLiteral: boolean,
  port: number,
  opts: UrlPolicyOptions,
): Failure | null {
  const name = hostname.replace(/\.+$/, ''); // `example.com.` is the same host as `example.com`
  if (isSelfTarget(name, ipLiteral, port, opts)) return notAllowed(MSG.self, `self-loop ${name}:${port}`);

  if (ipLiteral) {
    const verdict = checkAddress(hostname, opts);
    return verdict.allowed ? null : notAllowed(MSG.address, verdict.reason);
  }
  if (opts.allowPrivate) return null;
  const local = LOCAL_NAME_SUFFIXES.find((s) => name === s.suffix || name.endsWith(`.${s.suffix}`));
  if (local) return notAllowed(MSG.localName, `local name *.${local.suffix}`);
  // A dotless name (`https://redis/`) only resolves through search domains, /etc/hosts or a
  // container network: always something internal. Public receivers have dotted names.
  if (!name.includes('.')) return notAllowed(MSG.singleLabel, `single-label name ${name}`);
  return null;
}

/**
 * Herald's own host is a loop (SPEC §3). In dev mode Herald usually runs on loopback beside the
 * test receivers, so there a loopback target is a loop only on one of Herald's own ports.
 */
function isSelfTarget(name: string, ipLiteral: boolean, port: number, opts: UrlPolicyOptions): boolean {
  const loopbackTarget = ipLiteral ? isLoopback(name) : isLocalhostName(name);
  if (loopbackTarget && opts.selfPorts !== undefined) return opts.selfPorts.includes(port);
  const target = comparableHost(name);
  return opts.selfHosts.some((h) => comparableHost(h) === target);
}

function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** One spelling per host: canonical IP text, or lowercase punycode without a trailing dot. */
function comparableHost(host: string): string {
  const bare = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.+$/, '');
  const ip = parseIp(bare);
  if (ip) return formatIp(canonicalIp(ip));
  try {
    return new URL(`http://${bare}/`).hostname.replace(/\.+$/, '');
  } catch {
    return bare;
  }
}

/** The raw text between `scheme://` and the first `/`, `?` or `#`; null if there is no `//`. */
function rawAuthority(raw: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(raw);
  return m ? (m[1] ?? '') : null;
}

/** A precise reason for the cases the parser refuses that users actually hit. */
function explainParseFailure(authority: string | null): string {
  if (authority === null) return MSG.malformed;
  if (/\[[^\]]*%/.test(authority)) return MSG.zoneId;
  const port = /:(\d+)$/.exec(authority.replace(/^.*\]/, ''));
  if (port && Number(port[1]) > 65535) return MSG.port;
  return MSG.malformed;
}
