import { describe, expect, it } from 'vitest';
import { parseCidrList } from '../src/core/address-policy.js';
import { checkWebhookUrl, MAX_URL_LENGTH, type UrlPolicyOptions } from '../src/core/url-policy.js';

// Pure: nothing here touches DNS or the network.
const PROD: UrlPolicyOptions = {
  allowPrivate: false,
  allowHttp: false,
  allowedCidrs: [],
  selfHosts: ['herald.example.com'],
};
const DEV: UrlPolicyOptions = {
  allowPrivate: true,
  allowHttp: true,
  allowedCidrs: [],
  selfHosts: ['127.0.0.1', 'herald.example.com'],
  selfPorts: [8080],
};

function refused(raw: unknown, opts: UrlPolicyOptions = PROD) {
  const r = checkWebhookUrl(raw, opts);
  if (r.ok) throw new Error(`expected ${String(raw)} to be refused, got ${r.href}`);
  return r;
}
function accepted(raw: string, opts: UrlPolicyOptions = PROD) {
  const r = checkWebhookUrl(raw, opts);
  if (!r.ok) throw new Error(`expected ${raw} to be accepted, got ${r.code}: ${r.message}`);
  return r;
}

const NOT_ALLOWED = 'destination not allowed: loopback, private and other non-public addresses are refused';

describe('accepted URLs', () => {
  it('a plain https URL is normalised', () => {
    expect(accepted('https://Example.COM/hooks?a=1#frag')).toEqual({
      ok: true,
      href: 'https://example.com/hooks?a=1#frag',
      hostname: 'example.com',
      port: 443,
      ipLiteral: false,
    });
  });

  it('the scheme is case-insensitive and normalised to lower case', () => {
    expect(accepted('HTTPS://Example.com/hook')).toMatchObject({ href: 'https://example.com/hook', hostname: 'example.com', port: 443 });
    expect(accepted('HtTpS://example.com/hook').href).toBe('https://example.com/hook');
    expect(accepted('HTTP://example.com/hook', { ...PROD, allowHttp: true })).toMatchObject({ href: 'http://example.com/hook', port: 80 });
  });

  it('keeps any port 1–65535 and drops the default one', () => {
    expect(accepted('https://example.com:1/').port).toBe(1);
    expect(accepted('https://example.com:22/').port).toBe(22);
    expect(accepted('https://example.com:65535/').port).toBe(65535);
    const d = accepted('https://example.com:443/x');
    expect(d.port).toBe(443);
    expect(d.href).toBe('https://example.com/x');
  });

  it('public IP literals are allowed (SPEC decision)', () => {
    expect(accepted('https://93.184.216.34/x')).toMatchObject({ hostname: '93.184.216.34', ipLiteral: true, href: 'https://93.184.216.34/x' });
    expect(accepted('https://[2606:4700::1111]/')).toMatchObject({ hostname: '2606:4700::1111', ipLiteral: true });
    expect(accepted('https://[64:ff9b::808:808]/').ipLiteral).toBe(true); // NAT64 of a public IPv4
    expect(accepted('https://[2002:808:808::1]/').ipLiteral).toBe(true); // 6to4 of a public IPv4
    // A public address in another IPv4 notation is normalised to dotted quad.
    expect(accepted('https://1572395042/').href).toBe('https://93.184.216.34/');
  });

  it('IDN hosts are stored as punycode', () => {
    expect(accepted('https://☃.example/')).toMatchObject({ href: 'https://xn--n3h.example/', hostname: 'xn--n3h.example' });
    expect(accepted('https://bücher.de/').hostname).toBe('xn--bcher-kva.de');
  });

  it.each([
    'https://api.notlocal/',
    'https://example.notlocalhost/',
    'https://api.xinternal/',
    'https://myhome.arpa/',
    'https://example.notlocaldomain/',
    'https://local.example.com/',
    'https://localhost.example.com/',
    'https://xinternal.example.com/',
  ])('local-name suffixes match whole labels only: %s is not a local name', (raw) => {
    expect(accepted(raw).href).toBe(raw);
  });

  it('names that merely resolve somewhere are left to the DNS check', () => {
    // 127.0.0.1.nip.io resolves to loopback: resolveAndCheck and the connect-time lookup refuse it.
    expect(accepted('https://127.0.0.1.nip.io/').hostname).toBe('127.0.0.1.nip.io');
    expect(accepted('https://example.com./').hostname).toBe('example.com.');
  });
});

describe('malformed or unsupported (invalid_url)', () => {
  it.each([
    [undefined, 'URL must be a string'],
    [42, 'URL must be a string'],
    [{ href: 'https://example.com/' }, 'URL must be a string'],
    ['', 'URL is required'],
    ['not a url', 'spaces'],
    ['example.com/hook', 'not a valid absolute URL'],
    ['/relative', 'not a valid absolute URL'],
    ['https://', 'not a valid absolute URL'],
  ])('%j', (raw, message) => {
    const r = refused(raw);
    expect(r.code).toBe('invalid_url');
    expect(r.message).toContain(message);
  });

  it.each([
    'https://example.com/a b',
    ' https://example.com/',
    'https://example.com/ ',
    'https://exa\tmple.com/',
    'https://example.com/\n',
    'https://exa\nmple.com/',
    'https://example.com/\r\nX-Injected: 1',
    'https://example.com/\u0000',
    'https://example.com/\u007f',
    'https://example.com/\u0085',
    'https://example.com/\u00a0',
    'https://example.com/\u2028',
    'https://example.com/\ufeff',
  ])('refuses whitespace or control characters before parsing: %j', (raw) => {
    const r = refused(raw);
    expect(r).toMatchObject({ code: 'invalid_url' });
    expect(r.message).toMatch(/spaces, tabs, line breaks or other control characters/);
  });

  it('refuses a URL longer than 2048 characters', () => {
    const base = 'https://example.com/';
    const ok = base + 'a'.repeat(MAX_URL_LENGTH - base.length);
    expect(ok.length).toBe(2048);
    accepted(ok);
    const r = refused(ok + 'a');
    expect(r).toMatchObject({ code: 'invalid_url', message: 'URL must be at most 2048 characters' });
    // ...also when normalisation (percent-escaping) grows it past the limit.
    expect(refused(base + 'é'.repeat(1100)).message).toBe('URL must be at most 2048 characters');
  });

  it.each([
    ['http://example.com/', 'URL must use https://'],
    ['HTTP://example.com/', 'URL must use https://'],
    ['javascript:alert(1)', 'URL must use https://'],
    ['file:///etc/passwd', 'URL must use https://'],
    ['gopher://example.com/', 'URL must use https://'],
    ['ftp://example.com/', 'URL must use https://'],
    ['ws://example.com/', 'URL must use https://'],
    ['data:text/plain,hi', 'URL must use https://'],
  ])('scheme %s', (raw, message) => {
    expect(refused(raw)).toMatchObject({ code: 'invalid_url', message });
  });

  it('http:// is accepted only with allowHttp, and other schemes still are not', () => {
    const opts = { ...PROD, allowHttp: true };
    expect(accepted('http://example.com/', opts)).toMatchObject({ port: 80, href: 'http://example.com/' });
    expect(refused('ftp://example.com/', opts).message).toBe('URL must use https:// or http://');
    expect(refused('javascript:alert(1)', opts).message).toBe('URL must use https:// or http://');
  });

  it.each(['https:example.com/', 'https:/example.com/', 'https:///example.com/', 'https:\\\\example.com\\'])(
    'refuses the ambiguous form %s',
    (raw) => {
      expect(refused(raw)).toMatchObject({ code: 'invalid_url', message: expect.stringContaining('must start with') });
    },
  );

  it.each([
    'https://u:p@example.com/',
    'https://user@example.com/',
    'https://:p@example.com/',
    'https://@example.com/',
    'https://evil.com@127.0.0.1/',
    'https://127.0.0.1%2f@evil.com/',
    'https://127.0.0.1:443@evil.com/',
    'https://evil.com\\@127.0.0.1/',
  ])('refuses userinfo: %s', (raw) => {
    expect(refused(raw)).toEqual({
      ok: false,
      code: 'invalid_url',
      message: 'URL must not contain credentials (user:password@)',
    });
  });

  it('refuses a backslash in the authority', () => {
    expect(refused('https://example.com\\x/').message).toBe('URL must not contain a backslash before the path');
  });

  it.each(['https://[fe80::1%25eth0]/', 'https://[fe80::1%eth0]/', 'https://[fe80::1%251]:8443/'])('refuses zone id %s', (raw) => {
    expect(refused(raw)).toMatchObject({ code: 'invalid_url', message: 'URL must not contain an IPv6 zone id' });
  });

  it.each(['https://example.com:0/', 'https://example.com:65536/', 'https://example.com:99999999/', 'https://[2606:4700::1111]:70000/'])(
    'refuses port in %s',
    (raw) => {
      expect(refused(raw)).toMatchObject({ code: 'invalid_url', message: 'URL port must be between 1 and 65535' });
    },
  );

  it('refuses other unparseable hosts with a generic message', () => {
    expect(refused('https://exa<mple.com/').message).toBe('URL is not a valid absolute URL');
    expect(refused('https://0x100000000/').message).toBe('URL is not a valid absolute URL');
    expect(refused('https://foo.123/').message).toBe('URL is not a valid absolute URL');
  });
});

describe('forbidden destinations (url_not_allowed)', () => {
  // Alternate notations of 127.0.0.1: the WHATWG parser canonicalises them all (research A2, T03).
  it.each([
    'https://127.0.0.1/',
    'https://2130706433/',
    'https://0x7f.1/',
    'https://0177.1/',
    'https://127.1/',
    'https://127.000.000.001/',
    'https://127.0.0.1./',
    'https://017700000001/',
    'https://0x7f000001/',
    'https://0x7F.0.0.1/',
    'https://%31%32%37.0.0.1/',
    'https://１２７.０.０.１/',
    'https://127.0.0.2:8443/',
    'https://[0:0:0:0:0:ffff:127.0.0.1]/',
    'https://[::ffff:127.0.0.1]/',
    'https://[::ffff:7f00:1]/',
  ])('refuses loopback spelled %s', (raw) => {
    const r = refused(raw);
    expect(r).toMatchObject({ code: 'url_not_allowed', message: NOT_ALLOWED });
    expect(r.detail).toContain('loopback');
    expect(r.message).not.toContain('127'); // nothing internal in the user-facing text
  });

  // Representatives of both research (b) tables.
  it.each([
    'https://0.0.0.0/',
    'https://0/',
    'https://10.0.0.1/',
    'https://100.64.0.1/',
    'https://169.254.169.254/latest/meta-data/',
    'https://172.16.0.1/',
    'https://192.0.0.1/',
    'https://192.0.2.1/',
    'https://192.88.99.1/',
    'https://192.168.0.1/',
    'https://198.18.0.1/',
    'https://198.51.100.1/',
    'https://203.0.113.1/',
    'https://224.0.0.1/',
    'https://240.0.0.1/',
    'https://255.255.255.255/',
    'https://0xffffffff/',
    'https://037777777777/',
    'https://[::]/',
    'https://[::1]/',
    'https://[::1]:443/',
    'https://[::7f00:1]/',
    'https://[::ffff:a9fe:a9fe]/',
    'https://[64:ff9b::7f00:1]/',
    'https://[64:ff9b::127.0.0.1]/',
    'https://[64:ff9b:1::1]/',
    'https://[100::1]/',
    'https://[2001::1]/',
    'https://[2001:db8::1]/',
    'https://[2002:7f00:1::1]/',
    'https://[2002:a9fe:a9fe::1]/',
    'https://[3fff::1]/',
    'https://[5f00::1]/',
    'https://[fc00::1]/',
    'https://[fd00:ec2::254]/',
    'https://[fe80::1]/',
    'https://[fec0::1]/',
    'https://[ff02::1]/',
    'https://[1000::1]/',
  ])('refuses %s', (raw) => {
    expect(refused(raw)).toMatchObject({ code: 'url_not_allowed', message: NOT_ALLOWED });
  });

  it.each([
    ['https://localhost/', 'local'],
    ['https://LOCALHOST:8443/', 'local'],
    ['https://localhost./', 'local'],
    ['https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/', 'local'], // IDNA maps it to "localhost"
    ['https://foo.localhost/', 'local'],
    ['https://localhost.localdomain/', 'local'],
    ['https://printer.local/', 'local'],
    ['https://metadata.google.internal/computeMetadata/v1/', 'local'],
    ['https://router.home.arpa/', 'local'],
    ['https://redis/', 'fully qualified'],
    ['https://intranet:8443/', 'fully qualified'],
  ])('refuses the local name %s', (raw, message) => {
    const r = refused(raw);
    expect(r.code).toBe('url_not_allowed');
    expect(r.message).toContain(message);
  });

  it.each([
    'https://herald.example.com/',
    'https://HERALD.example.com:8443/v1/accounts',
    'https://herald.example.com./',
  ])('refuses Herald itself: %s', (raw) => {
    expect(refused(raw)).toMatchObject({
      code: 'url_not_allowed',
      message: 'destination not allowed: the URL points at this Herald server',
    });
  });

  it('self hosts are compared canonically (IP spellings, IDN, brackets)', () => {
    const opts = { ...PROD, selfHosts: ['93.184.216.34', '[2606:4700::1111]', 'BÜCHER.de'] };
    expect(refused('https://1572395042/', opts).code).toBe('url_not_allowed');
    expect(refused('https://[::ffff:93.184.216.34]/', opts).code).toBe('url_not_allowed');
    expect(refused('https://[2606:4700:0:0::1111]/', opts).code).toBe('url_not_allowed');
    expect(refused('https://xn--bcher-kva.de/', opts).code).toBe('url_not_allowed');
    accepted('https://herald.example.com/', opts);
  });
});

describe('dev mode (allowPrivate + allowHttp)', () => {
  it('allows loopback and private receivers', () => {
    expect(accepted('http://127.0.0.1:9999/', DEV)).toMatchObject({ hostname: '127.0.0.1', port: 9999, ipLiteral: true });
    accepted('http://localhost:3000/hook', DEV);
    accepted('http://[::1]:9999/', DEV);
    accepted('http://10.0.0.5/', DEV);
    accepted('http://receiver:3000/', DEV); // a docker-compose service name
    accepted('https://printer.local/', DEV);
  });

  it('still refuses never-valid targets', () => {
    for (const raw of ['http://0.0.0.0:9999/', 'http://0:9999/', 'http://[::]:9999/', 'http://224.0.0.1/', 'http://255.255.255.255/', 'http://[ff02::1]/']) {
      expect(refused(raw, DEV).code, raw).toBe('url_not_allowed');
    }
  });

  it("refuses Herald's own host and loopback on Herald's own port", () => {
    for (const raw of ['http://127.0.0.1:8080/', 'http://localhost:8080/v1', 'http://[::1]:8080/', 'http://127.0.0.2:8080/', 'http://[::ffff:127.0.0.1]:8080/', 'https://herald.example.com/']) {
      expect(refused(raw, DEV), raw).toMatchObject({ code: 'url_not_allowed', message: expect.stringContaining('Herald') });
    }
  });

  it("refuses a *.localhost name on Herald's own port as a self-loop, and accepts it on another port", () => {
    expect(refused('http://app.localhost:8080/', DEV)).toMatchObject({
      code: 'url_not_allowed',
      message: 'destination not allowed: the URL points at this Herald server',
    });
    expect(accepted('http://app.localhost:9999/', DEV)).toMatchObject({ hostname: 'app.localhost', port: 9999 });
    // Only whole labels: a name that merely ends in the letters "localhost" is no loopback name.
    expect(accepted('http://app.notlocalhost:8080/', DEV).port).toBe(8080);
  });

  it('without selfPorts, a self host is refused on every port', () => {
    const opts = { ...DEV, selfPorts: undefined };
    expect(refused('http://127.0.0.1:9999/', opts).code).toBe('url_not_allowed');
    accepted('http://[::1]:9999/', opts);
  });

  it('allowHttp without allowPrivate still refuses private targets', () => {
    const opts = { ...PROD, allowHttp: true };
    expect(refused('http://127.0.0.1:9999/', opts).code).toBe('url_not_allowed');
    expect(refused('http://localhost:9999/', opts).code).toBe('url_not_allowed');
  });
});

describe('allowed CIDRs (HERALD_ALLOWED_CIDRS)', () => {
  const opts = { ...PROD, allowedCidrs: parseCidrList('10.0.0.0/8, fd00:abcd::/32') };

  it('admit on-premises ranges in any notation', () => {
    accepted('https://10.0.0.5/', opts);
    accepted('https://[::ffff:10.0.0.5]/', opts);
    accepted('https://[::ffff:a00:5]/', opts);
    accepted('https://167772165/', opts); // 10.0.0.5 as a dword
    accepted('https://012.0.0.5/', opts); // octal 012 = 10
    accepted('https://[fd00:abcd::1]/', opts);
  });

  it('do not admit anything else', () => {
    expect(refused('https://11.0.0.0.5/', opts).code).toBe('invalid_url');
    expect(refused('https://127.0.0.1/', opts).code).toBe('url_not_allowed');
    expect(refused('https://[fd00:abce::1]/', opts).code).toBe('url_not_allowed');
    expect(refused('https://0.0.0.0/', opts).code).toBe('url_not_allowed');
  });
});

describe('host names with empty labels', () => {
  it.each(['https://a..b/', 'https://.example.com/', 'https://example..com./x'])('%s is invalid_url', (u) => {
    const r = checkWebhookUrl(u, { allowPrivate: false, allowHttp: false, allowedCidrs: [], selfHosts: [] });
    expect(r).toMatchObject({ ok: false, code: 'invalid_url' });
  });
});
