/**
 * Which IP addresses a delivery may connect to. Pure: no DNS, no sockets.
 *
 * Every address is parsed into one canonical form (family + bigint) and judged against ONE table
 * of blocked ranges (BLOCKED_RANGES below). We parse ourselves on purpose: address libraries
 * (`ip`, `private-ip`, ipaddr.js) have repeatedly misjudged octal, short, mapped and embedded
 * spellings (CVE-2023-42282, CVE-2024-29415, CVE-2020-28360; ipaddr.js calls `::7f00:1`
 * "unicast"). Inputs here are already normalised text: the WHATWG URL parser's hostname, or an
 * answer from dns.lookup. Anything that is not strict dotted-quad IPv4 or plain IPv6 is refused.
 *
 * Glossary:
 * - canonical address: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned into the IPv4 it is, because
 *   the kernel connects to that IPv4 (`[::ffff:127.0.0.1]` reaches 127.0.0.1 on Linux).
 * - embedded IPv4: NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses carry an IPv4 address
 *   that the packets end up at; SPEC §3 judges them by that IPv4.
 */
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

/** An address in canonical numeric form: IPv4 in 32 bits, IPv6 in 128 bits. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: IpFamily;
  /** The network address, host bits all zero. */
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`, for logs and messages. */
  readonly text: string;
}

export interface AddressPolicyOptions {
  /** HERALD_DEV: loopback, private, link-local, unique-local and reserved ranges become reachable. */
  allowPrivate: boolean;
  /** HERALD_ALLOWED_CIDRS: ranges that deliveries may reach anyway, matched on the canonical address. */
  allowedCidrs: Cidr[];
}

export type AddressVerdict =
  | { allowed: true }
  /** `reason` is internal detail for logs (e.g. `loopback 127.0.0.0/8`); never show it to users. */
  | { allowed: false; reason: string };

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

// ---------------------------------------------------------------------------------------------
// Parsing and formatting
// ---------------------------------------------------------------------------------------------

/**
 * Parse strict IPv4 dotted-quad or IPv6 text (optionally in brackets). Returns null for anything
 * else, including IPv6 zone ids (`fe80::1%eth0`): a zone names an interface, and stripping it
 * before judging is how filters get bypassed.
 */
export function parseIp(text: string): IpAddress | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (bare.includes('%')) return null;
  // isIP is the gate: it refuses octal/hex/short IPv4 and leading zeros ("127.000.0.1" → 0).
  const family = isIP(bare);
  if (family === 4) return parseIPv4(bare);
  if (family === 6) return parseIPv6(bare);
  return null;
}

function parseIPv4(text: string): IpAddress | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return { family: 4, value };
}

function parseIPv6(text: string): IpAddress | null {
  let groups: number[] | null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  if (halves.length === 2) {
    const head = parseGroups(halves[0] ?? '');
    const tail = parseGroups(halves[1] ?? '');
    if (!head || !tail) return null;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null; // "::" stands for at least one zero group
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = parseGroups(text);
  }
  if (!groups || groups.length !== 8) return null;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return { family: 6, value };
}

/** Colon-separated hex groups; a dotted IPv4 tail counts as two groups. */
function parseGroups(text: string): number[] | null {
  if (text === '') return [];
  const out: number[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? '';
    if (i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIPv4(p);
      if (!v4) return null;
      out.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
    } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
      out.push(parseInt(p, 16));
    } else {
      return null;
    }
  }
  return out;
}

/** Dotted quad for IPv4; RFC 5952 text (lowercase, longest zero run compressed) for IPv6. */
export function formatIp(addr: IpAddress): string {
  if (addr.family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((addr.value >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(Number((addr.value >> s) & 0xffffn));
  // Longest run of two or more zero groups (first one wins a tie), per RFC 5952 §4.2.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------------
// Canonical form and CIDRs
// ---------------------------------------------------------------------------------------------

const MAPPED_PREFIX = 0xffffn << 32n; // ::ffff:0:0/96

/** IPv4-mapped IPv6 becomes the IPv4 it is; every other address is already canonical. */
export function canonicalIp(addr: IpAddress): IpAddress {
  if (addr.family === 6 && addr.value >> 32n === MAPPED_PREFIX >> 32n) {
    return { family: 4, value: addr.value & 0xffffffffn };
  }
  return addr;
}

function mask(family: IpFamily, prefix: number): bigint {
  const bits = BITS[family];
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

/**
 * Parse one `address/prefix` (or a bare address, meaning a single host) into canonical form.
 * Throws an Error naming the entry.
 */
export function parseCidr(entry: string): Cidr {
  return canonicalCidr(parseCidrAsWritten(entry));
}

function parseCidrAsWritten(entry: string): Cidr {
  const slash = entry.indexOf('/');
  const addrText = slash < 0 ? entry : entry.slice(0, slash);
  const prefixText = slash < 0 ? null : entry.slice(slash + 1);
  const parsed = parseIp(addrText);
  if (!parsed) throw new Error(`invalid CIDR "${entry}": not an IPv4 or IPv6 address`);
  const bits = BITS[parsed.family];
  let prefix = bits;
  if (prefixText !== null) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw new Error(`invalid CIDR "${entry}": prefix length must be 0 to ${bits}`);
    }
    prefix = Number(prefixText);
  }
  const network = parsed.value & mask(parsed.family, prefix);
  if (network !== parsed.value) {
    // Refuse rather than silently widen: "10.0.0.5/8" is more likely a typo than a wish to
    // open all of 10/8 to every tenant.
    const fixed = formatCidr({ family: parsed.family, network, prefix });
    throw new Error(`invalid CIDR "${entry}": host bits are set (did you mean ${fixed}?)`);
  }
  const c = { family: parsed.family, network, prefix };
  return { ...c, text: formatCidr(c) };
}

/** `::ffff:10.0.0.0/104` is written as `10.0.0.0/8`, so it matches canonical addresses. */
function canonicalCidr(c: Cidr): Cidr {
  if (c.family === 6 && c.prefix >= 96 && c.network >> 32n === MAPPED_PREFIX >> 32n) {
    const v4 = { family: 4 as const, network: c.network & 0xffffffffn, prefix: c.prefix - 96 };
    return { ...v4, text: formatCidr(v4) };
  }
  return c;
}

function formatCidr(c: { family: IpFamily; network: bigint; prefix: number }): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;
}

/**
 * HERALD_ALLOWED_CIDRS: entries separated by commas and/or whitespace; empty text is an empty
 * list. Throws an Error naming the first bad entry.
 */
export function parseCidrList(text: string): Cidr[] {
  return text
    .split(/[\s,]+/)
    .filter((s) => s !== '')
    .map(parseCidr);
}

/** Whether `addr` (an IpAddress or address text) lies in `cidr`, compared canonically. */
export function cidrContains(cidr: Cidr, addr: IpAddress | string): boolean {
  const parsed = typeof addr === 'string' ? parseIp(addr) : addr;
  if (!parsed) return false;
  const ip = canonicalIp(parsed);
  if (ip.family !== cidr.family) return false;
  return (ip.value & mask(ip.family, cidr.prefix)) === cidr.network;
}

// ---------------------------------------------------------------------------------------------
// The block list
// ---------------------------------------------------------------------------------------------

/**
 * - `never`: not a destination at all (unspecified, multicast, broadcast); refused even in dev
 *   mode and even if HERALD_ALLOWED_CIDRS covers it, because connecting to 0.0.0.0 or [::]
 *   reaches the local host on Linux and multicast/broadcast cannot carry a TCP connection.
 * - `non-public`: refused unless dev mode or HERALD_ALLOWED_CIDRS allows it.
 * - `embeds-ipv4`: the verdict is that of the IPv4 address carried at bit `ipv4Shift`.
 */
type RangeKind = 'never' | 'non-public' | 'embeds-ipv4';

interface BlockedRangeSpec {
  cidr: string;
  name: string;
  kind: RangeKind;
  /** For `embeds-ipv4`: how far to shift right to bring the IPv4 into the low 32 bits. */
  ipv4Shift?: bigint;
}

/**
 * ONE table, research section (b). The most specific matching row decides, so narrow rows
 * (::1, NAT64) override the wide default-deny rows at the end. Comments say why each is refused.
 */
const BLOCKED_RANGE_SPECS: readonly BlockedRangeSpec[] = [
  // --- IPv4 ---
  // 0.0.0.0 connects to local services on Linux; the rest of the /8 is "this network".
  { cidr: '0.0.0.0/8', name: 'this-network', kind: 'never' },
  { cidr: '10.0.0.0/8', name: 'private (RFC 1918)', kind: 'non-public' },
  // Shared/CGNAT space is provider-internal; Gitea's IsPrivate() missed it (CVE-2026-22874).
  { cidr: '100.64.0.0/10', name: 'shared/CGNAT (RFC 6598)', kind: 'non-public' },
  // The whole /8 is loopback, not only 127.0.0.1.
  { cidr: '127.0.0.0/8', name: 'loopback', kind: 'non-public' },
  // Cloud metadata lives at 169.254.169.254.
  { cidr: '169.254.0.0/16', name: 'link-local', kind: 'non-public' },
  { cidr: '172.16.0.0/12', name: 'private (RFC 1918)', kind: 'non-public' },
  // IETF protocol assignments: not globally reachable.
  { cidr: '192.0.0.0/24', name: 'IETF protocol assignments', kind: 'non-public' },
  { cidr: '192.0.2.0/24', name: 'documentation TEST-NET-1', kind: 'non-public' },
  // The IPv4 half of deprecated 6to4 (RFC 7526): an anycast relay, not a receiver.
  { cidr: '192.88.99.0/24', name: '6to4 relay anycast', kind: 'non-public' },
  { cidr: '192.168.0.0/16', name: 'private (RFC 1918)', kind: 'non-public' },
  { cidr: '198.18.0.0/15', name: 'benchmarking (RFC 2544)', kind: 'non-public' },
  { cidr: '198.51.100.0/24', name: 'documentation TEST-NET-2', kind: 'non-public' },
  { cidr: '203.0.113.0/24', name: 'documentation TEST-NET-3', kind: 'non-public' },
  // Multicast cannot be a TCP peer.
  { cidr: '224.0.0.0/4', name: 'multicast', kind: 'never' },
  { cidr: '240.0.0.0/4', name: 'reserved class E', kind: 'non-public' },
  { cidr: '255.255.255.255/32', name: 'limited broadcast', kind: 'never' },

  // --- IPv6 ---
  // Default deny: only 2000::/3 is allocated as global unicast (RFC 4291). These three rows are
  // its complement; the rows below them are narrower and give a more precise reason.
  { cidr: '::/3', name: 'not global unicast (outside 2000::/3)', kind: 'non-public' },
  { cidr: '4000::/2', name: 'not global unicast (outside 2000::/3)', kind: 'non-public' },
  { cidr: '8000::/1', name: 'not global unicast (outside 2000::/3)', kind: 'non-public' },
  // [::] connects to the local host like 0.0.0.0.
  { cidr: '::/128', name: 'unspecified', kind: 'never' },
  { cidr: '::1/128', name: 'loopback', kind: 'non-public' },
  // IPv4-compatible (::a.b.c.d), SIIT (::ffff:0:a.b.c.d), ISATAP-like and other odd spellings
  // of IPv4 all live in ::/8; none is a legitimate receiver (Hook0 refuses the whole /8).
  { cidr: '::/8', name: 'IPv4-embedding', kind: 'non-public' },
  // IPv4-mapped: canonicalIp() unmaps these before the table is consulted; the row documents
  // it and makes the verdict right even for a caller that skips canonicalisation.
  { cidr: '::ffff:0:0/96', name: 'IPv4-mapped', kind: 'embeds-ipv4', ipv4Shift: 0n },
  // NAT64 well-known prefix: SPEC decision, judge the IPv4 it carries (needed on IPv6-only
  // hosts behind DNS64, where every IPv4-only receiver appears as 64:ff9b::a.b.c.d).
  { cidr: '64:ff9b::/96', name: 'NAT64', kind: 'embeds-ipv4', ipv4Shift: 0n },
  // Local-use NAT64 (RFC 8215) translates into the operator's own network.
  { cidr: '64:ff9b:1::/48', name: 'local-use NAT64', kind: 'non-public' },
  { cidr: '100::/64', name: 'discard-only (RFC 6666)', kind: 'non-public' },
  // Includes Teredo 2001::/32, which embeds (obfuscated) IPv4 addresses.
  { cidr: '2001::/23', name: 'IETF protocol assignments', kind: 'non-public' },
  { cidr: '2001:db8::/32', name: 'documentation (RFC 3849)', kind: 'non-public' },
  // 6to4 (2002:AABB:CCDD::/48 carries AA.BB.CC.DD). Decision: judge the embedded IPv4 with the
  // same rules, as SPEC §3 does for NAT64 ("NAT64/6to4-wrapped private are refused"). A 6to4
  // packet is tunnelled to that IPv4, so this is exactly as safe as the IPv4 itself: a private,
  // loopback or reserved one is refused; a public one is as reachable as its IPv4 already is.
  { cidr: '2002::/16', name: '6to4', kind: 'embeds-ipv4', ipv4Shift: 80n },
  { cidr: '3fff::/20', name: 'documentation (RFC 9637)', kind: 'non-public' },
  { cidr: '5f00::/16', name: 'SRv6 SIDs (RFC 9602)', kind: 'non-public' },
  // Unique local; includes fd00:ec2::254, the AWS metadata service over IPv6.
  { cidr: 'fc00::/7', name: 'unique-local', kind: 'non-public' },
  { cidr: 'fe80::/10', name: 'link-local', kind: 'non-public' },
  { cidr: 'fec0::/10', name: 'site-local (deprecated)', kind: 'non-public' },
  { cidr: 'ff00::/8', name: 'multicast', kind: 'never' },
];

interface BlockedRange extends Omit<BlockedRangeSpec, 'cidr'> {
  cidr: Cidr;
}

/**
 * The table with its CIDRs parsed, most specific first so the first match is the best one.
 * Parsed as written: canonicalising would turn the ::ffff:0:0/96 row into 0.0.0.0/0.
 */
export const BLOCKED_RANGES: readonly BlockedRange[] = BLOCKED_RANGE_SPECS.map((r) => ({
  ...r,
  cidr: parseCidrAsWritten(r.cidr),
})).sort((a, b) => b.cidr.prefix - a.cidr.prefix);

function findBlockedRange(ip: IpAddress): BlockedRange | undefined {
  return BLOCKED_RANGES.find((r) => cidrContains(r.cidr, ip));
}

// ---------------------------------------------------------------------------------------------
// The verdict
// ---------------------------------------------------------------------------------------------

/**
 * May a delivery connect to `ip`? `ip` is address text (brackets allowed). Order matters:
 * never-valid targets first, then the operator allow-list on the canonical address, then the
 * block list; an address in no blocked range is public and allowed.
 */
export function checkAddress(ip: string, opts: AddressPolicyOptions): AddressVerdict {
  const parsed = parseIp(ip);
  if (!parsed) return { allowed: false, reason: 'not a plain IP address' };
  return judge(canonicalIp(parsed), opts);
}

function judge(ip: IpAddress, opts: AddressPolicyOptions): AddressVerdict {
  const range = findBlockedRange(ip);
  const reason = range ? `${range.name} ${range.cidr.text}` : '';
  if (range?.kind === 'never') return { allowed: false, reason };
  if (opts.allowedCidrs.some((c) => cidrContains(c, ip))) return { allowed: true };
  if (!range) return { allowed: true };
  if (range.kind === 'embeds-ipv4') {
    const inner: IpAddress = { family: 4, value: (ip.value >> (range.ipv4Shift ?? 0n)) & 0xffffffffn };
    const verdict = judge(inner, opts);
    return verdict.allowed
      ? verdict
      : { allowed: false, reason: `${reason} embedding ${formatIp(inner)}: ${verdict.reason}` };
  }
  if (opts.allowPrivate) return { allowed: true };
  return { allowed: false, reason };
}

const LOOPBACK: readonly Cidr[] = [parseCidr('127.0.0.0/8'), parseCidr('::1/128')];

/** Whether an address is loopback in any spelling (127/8, ::1, ::ffff:127.x): for self-loop checks. */
export function isLoopback(ip: string): boolean {
  return LOOPBACK.some((c) => cidrContains(c, ip));
}
