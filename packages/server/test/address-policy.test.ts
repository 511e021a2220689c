import { describe, expect, it } from 'vitest';
import {
  BLOCKED_RANGES,
  canonicalIp,
  checkAddress,
  cidrContains,
  formatIp,
  isLoopback,
  parseCidr,
  parseCidrList,
  parseIp,
  type AddressPolicyOptions,
} from '../src/core/address-policy.js';

const STRICT: AddressPolicyOptions = { allowPrivate: false, allowedCidrs: [] };
const DEV: AddressPolicyOptions = { allowPrivate: true, allowedCidrs: [] };

function reasonOf(ip: string, opts: AddressPolicyOptions = STRICT): string {
  const v = checkAddress(ip, opts);
  return v.allowed ? 'ALLOWED' : v.reason;
}

describe('parseIp / formatIp', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // RFC 5952: first longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['fe80::', 'fe80::'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['0:0:0:0:0:ffff:127.0.0.1', '::ffff:7f00:1'],
    ['64:ff9b::8.8.8.8', '64:ff9b::808:808'],
  ])('%s → %s', (text, formatted) => {
    const ip = parseIp(text);
    expect(ip).not.toBeNull();
    expect(formatIp(ip!)).toBe(formatted);
  });

  it.each([
    '127.1', // short forms, octal, hex, dword and leading zeros are URL-parser business only
    '0177.0.0.1',
    '0x7f.0.0.1',
    '2130706433',
    '127.000.000.001',
    '01.2.3.4',
    '256.0.0.1',
    '1.2.3.4.',
    'fe80::1%eth0', // zone ids are refused, never stripped
    'fe80::1%25eth0',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '12345::',
    'localhost',
    '',
    '[::1',
  ])('refuses %s', (text) => {
    expect(parseIp(text)).toBeNull();
  });

  it('canonicalises IPv4-mapped IPv6 to IPv4', () => {
    expect(canonicalIp(parseIp('::ffff:a9fe:a9fe')!)).toEqual(parseIp('169.254.169.254'));
    expect(canonicalIp(parseIp('::7f00:1')!)).toEqual(parseIp('::7f00:1')); // only ::ffff:0:0/96 is mapped
  });
});

describe('CIDRs', () => {
  it('parses a comma/space separated list', () => {
    const list = parseCidrList(' 10.0.0.0/8, 192.168.1.0/24\n fd00::/8 ,,203.0.113.7 ');
    expect(list.map((c) => c.text)).toEqual(['10.0.0.0/8', '192.168.1.0/24', 'fd00::/8', '203.0.113.7/32']);
    expect(parseCidrList('')).toEqual([]);
    expect(parseCidrList('  , ')).toEqual([]);
  });

  it('writes an IPv4-mapped CIDR as its IPv4 range', () => {
    expect(parseCidr('::ffff:10.0.0.0/104').text).toBe('10.0.0.0/8');
    expect(parseCidr('::ffff:0:0/96').text).toBe('0.0.0.0/0');
  });

  it.each([
    ['10/8', '"10/8"'],
    ['10.0.0.0/33', '"10.0.0.0/33"'],
    ['fd00::/129', '"fd00::/129"'],
    ['10.0.0.0/', '"10.0.0.0/"'],
    ['10.0.0.0/-1', '"10.0.0.0/-1"'],
    ['10.0.0.5/8', 'did you mean 10.0.0.0/8'],
    ['example.com', '"example.com"'],
    ['fe80::%eth0/64', '"fe80::%eth0/64"'],
  ])('refuses %s and names it', (entry, expected) => {
    expect(() => parseCidrList(`192.168.0.0/16, ${entry}`)).toThrow(expected);
  });

  it('matches on the canonical address', () => {
    const ten = parseCidr('10.0.0.0/8');
    expect(cidrContains(ten, '10.1.2.3')).toBe(true);
    expect(cidrContains(ten, '::ffff:10.0.0.5')).toBe(true);
    expect(cidrContains(ten, '::ffff:a00:5')).toBe(true);
    expect(cidrContains(ten, '11.0.0.0')).toBe(false);
    expect(cidrContains(ten, '::a00:5')).toBe(false); // IPv4-compatible is not the same address
    expect(cidrContains(parseCidr('127.0.0.1/32'), '0.0.0.0')).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), '::1')).toBe(false);
    expect(cidrContains(parseCidr('::/0'), '::1')).toBe(true);
    expect(cidrContains(ten, 'not an ip')).toBe(false);
  });

  it('the block table is sorted most specific first and every row parses', () => {
    const prefixes = BLOCKED_RANGES.map((r) => r.cidr.prefix);
    expect(prefixes).toEqual([...prefixes].sort((a, b) => b - a));
    expect(BLOCKED_RANGES.length).toBeGreaterThan(30);
    // Rows that carry an IPv4 are IPv6 rows (the mapped row must not become 0.0.0.0/0), so
    // judging the carried IPv4 never recurses further.
    for (const r of BLOCKED_RANGES.filter((x) => x.kind === 'embeds-ipv4')) expect(r.cidr.family).toBe(6);
    expect(BLOCKED_RANGES.map((r) => r.cidr.text)).toContain('::ffff:0:0/96');
  });
});

describe('checkAddress: IPv4 block list (research (b))', () => {
  it.each([
    ['0.0.0.0', 'this-network 0.0.0.0/8'],
    ['0.1.2.3', 'this-network 0.0.0.0/8'],
    ['10.0.0.1', 'RFC 1918'],
    ['10.255.255.255', 'RFC 1918'],
    ['100.64.0.1', 'CGNAT (RFC 6598) 100.64.0.0/10'],
    ['100.127.255.254', 'CGNAT'],
    ['127.0.0.1', 'loopback 127.0.0.0/8'],
    ['127.0.0.2', 'loopback'],
    ['127.255.255.255', 'loopback'],
    ['169.254.169.254', 'link-local 169.254.0.0/16'],
    ['172.16.0.1', '172.16.0.0/12'],
    ['172.31.255.255', '172.16.0.0/12'],
    ['192.0.0.1', '192.0.0.0/24'],
    ['192.0.2.1', 'TEST-NET-1'],
    ['192.88.99.1', '6to4 relay'],
    ['192.168.1.1', '192.168.0.0/16'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.1', 'TEST-NET-2'],
    ['203.0.113.1', 'TEST-NET-3'],
    ['224.0.0.1', 'multicast 224.0.0.0/4'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'class E 240.0.0.0/4'],
    ['255.255.255.255', 'limited broadcast 255.255.255.255/32'],
  ])('refuses %s (%s)', (ip, reason) => {
    expect(reasonOf(ip)).toContain(reason);
  });

  it.each(['8.8.8.8', '93.184.216.34', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.169.0.0', '198.17.255.255', '198.20.0.0', '223.255.255.255', '11.0.0.0', '126.255.255.255', '128.0.0.0', '169.253.255.255', '169.255.0.0'])(
    'allows public %s',
    (ip) => {
      expect(checkAddress(ip, STRICT)).toEqual({ allowed: true });
    },
  );
});

describe('checkAddress: IPv6 block list (research (b))', () => {
  it.each([
    ['::', 'unspecified ::/128'],
    ['::1', 'loopback ::1/128'],
    ['[::1]', 'loopback'],
    ['::2', '::/8'],
    ['::7f00:1', '::/8'], // IPv4-compatible 127.0.0.1; ipaddr.js calls it "unicast"
    ['::127.0.0.1', '::/8'],
    ['::ffff:0:7f00:1', '::/8'], // SIIT
    ['::5efe:7f00:1', '::/8'], // ISATAP-style
    ['::ffff:127.0.0.1', 'loopback 127.0.0.0/8'], // mapped: judged as the IPv4
    ['::ffff:7f00:1', 'loopback 127.0.0.0/8'],
    ['0:0:0:0:0:ffff:127.0.0.1', 'loopback 127.0.0.0/8'],
    ['::ffff:a9fe:a9fe', 'link-local 169.254.0.0/16'],
    ['::ffff:0.0.0.0', 'this-network'],
    ['::ffff:10.0.0.1', 'RFC 1918'],
    ['64:ff9b::7f00:1', 'NAT64 64:ff9b::/96 embedding 127.0.0.1: loopback 127.0.0.0/8'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::a00:1', 'RFC 1918'],
    ['64:ff9b::', 'this-network'],
    ['64:ff9b:1::1', 'local-use NAT64 64:ff9b:1::/48'],
    ['64:ff9b:1:ffff::808:808', 'local-use NAT64'],
    ['100::1', 'discard-only (RFC 6666) 100::/64'],
    ['2001::1', 'IETF protocol assignments 2001::/23'], // Teredo
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::/23'], // a real Teredo address
    ['2001:1ff:ffff::1', '2001::/23'],
    ['2001:db8::1', 'documentation (RFC 3849) 2001:db8::/32'],
    ['2002:7f00:1::1', '6to4 2002::/16 embedding 127.0.0.1: loopback'],
    ['2002:a9fe:a9fe::', '6to4 2002::/16 embedding 169.254.169.254'],
    ['2002:a00:1::1', 'RFC 1918'],
    ['2002::1', 'this-network'],
    ['3fff::1', 'documentation (RFC 9637) 3fff::/20'],
    ['3fff:fff::1', '3fff::/20'],
    ['5f00::1', 'SRv6'],
    ['fc00::1', 'unique-local fc00::/7'],
    ['fd00:ec2::254', 'unique-local fc00::/7'], // AWS metadata over IPv6
    ['fdff:ffff::1', 'unique-local'],
    ['fe80::1', 'link-local fe80::/10'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local (deprecated) fec0::/10'],
    ['ff02::1', 'multicast ff00::/8'],
    ['ff05::1:3', 'multicast'],
    // Default deny: outside 2000::/3 is not global unicast.
    ['1000::1', 'outside 2000::/3'],
    ['4000::1', 'outside 2000::/3'],
    ['c000::1', 'outside 2000::/3'],
    ['fe00::1', 'outside 2000::/3'],
  ])('refuses %s (%s)', (ip, reason) => {
    expect(reasonOf(ip)).toContain(reason);
  });

  it.each([
    '2606:4700::1111', // Cloudflare DNS
    '2001:4860:4860::8888', // Google DNS: 2001:4860:: lies outside 2001::/23
    '2a00:1450:4001::1',
    '64:ff9b::808:808', // NAT64 of 8.8.8.8: judged by the public IPv4 it carries
    '64:ff9b::5db8:d822', // NAT64 of 93.184.216.34
    '2002:808:808::1', // 6to4 of public 8.8.8.8: judged by the IPv4 (SPEC decision)
    '::ffff:8.8.8.8',
    '2001:200::1', // just past 2001::/23
    '3fff:1000::1', // just past 3fff::/20
  ])('allows public %s', (ip) => {
    expect(checkAddress(ip, STRICT)).toEqual({ allowed: true });
  });
});

describe('checkAddress: options', () => {
  it('refuses text that is not a plain address', () => {
    for (const t of ['localhost', '127.1', '2130706433', 'fe80::1%eth0', '', '1.2.3.4/32']) {
      expect(checkAddress(t, DEV)).toEqual({ allowed: false, reason: 'not a plain IP address' });
    }
  });

  it('dev mode allows loopback, private, link-local and unique-local', () => {
    for (const ip of ['127.0.0.1', '::1', '10.0.0.1', '192.168.1.1', '169.254.169.254', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '64:ff9b::7f00:1', '100.64.0.1']) {
      expect(checkAddress(ip, DEV), ip).toEqual({ allowed: true });
    }
  });

  it('dev mode still refuses unspecified, multicast and broadcast', () => {
    for (const ip of ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0', '224.0.0.1', '255.255.255.255', 'ff02::1', '64:ff9b::', '64:ff9b::e000:1', '2002::']) {
      expect(checkAddress(ip, DEV).allowed, ip).toBe(false);
    }
  });

  it('allowed CIDRs override the block list, matched canonically', () => {
    const opts = { allowPrivate: false, allowedCidrs: parseCidrList('10.0.0.0/8, fd12::/16') };
    expect(checkAddress('10.0.0.5', opts)).toEqual({ allowed: true });
    expect(checkAddress('::ffff:10.0.0.5', opts)).toEqual({ allowed: true });
    expect(checkAddress('::ffff:a00:5', opts)).toEqual({ allowed: true });
    expect(checkAddress('fd12::1', opts)).toEqual({ allowed: true });
    expect(checkAddress('fd13::1', opts).allowed).toBe(false);
    expect(checkAddress('11.0.0.1', opts)).toEqual({ allowed: true }); // public anyway
    expect(checkAddress('172.16.0.1', opts).allowed).toBe(false);
    expect(checkAddress('127.0.0.1', opts).allowed).toBe(false);
    // IPv4-compatible ::a00:5 is a different address, not a spelling of 10.0.0.5.
    expect(checkAddress('::a00:5', opts).allowed).toBe(false);
  });

  it('an allow-list of 127.0.0.1/32 does not admit 0.0.0.0 or 127.0.0.2', () => {
    const opts = { allowPrivate: false, allowedCidrs: parseCidrList('127.0.0.1/32') };
    expect(checkAddress('127.0.0.1', opts)).toEqual({ allowed: true });
    expect(checkAddress('::ffff:127.0.0.1', opts)).toEqual({ allowed: true });
    expect(checkAddress('0.0.0.0', opts).allowed).toBe(false);
    expect(checkAddress('127.0.0.2', opts).allowed).toBe(false);
    expect(checkAddress('::1', opts).allowed).toBe(false);
  });

  it('allowed CIDRs never admit never-valid targets', () => {
    const opts = { allowPrivate: false, allowedCidrs: parseCidrList('0.0.0.0/0, ::/0') };
    expect(checkAddress('0.0.0.0', opts).allowed).toBe(false);
    expect(checkAddress('::', opts).allowed).toBe(false);
    expect(checkAddress('224.0.0.1', opts).allowed).toBe(false);
    expect(checkAddress('255.255.255.255', opts).allowed).toBe(false);
    expect(checkAddress('ff02::1', opts).allowed).toBe(false);
    expect(checkAddress('10.0.0.1', opts)).toEqual({ allowed: true });
  });

  it('an allowed IPv4 range applies to the IPv4 inside NAT64 and 6to4', () => {
    const opts = { allowPrivate: false, allowedCidrs: parseCidrList('10.0.0.0/8') };
    expect(checkAddress('64:ff9b::a00:5', opts)).toEqual({ allowed: true });
    expect(checkAddress('2002:a00:5::1', opts)).toEqual({ allowed: true });
    expect(checkAddress('64:ff9b::7f00:1', opts).allowed).toBe(false);
  });

  it('isLoopback', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.9.9.9')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('10.0.0.1')).toBe(false);
    expect(isLoopback('localhost')).toBe(false);
  });
});
