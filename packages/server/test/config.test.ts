import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig, unknownSettings } from '../src/config/load.js';
import { SETTINGS } from '../src/config/settings.js';
import { flagOf, renderSettingsTable, updateConfigDoc } from '../src/config/doc.js';

/** Configuration (SPEC §1): defaults, and a start-up error naming the variable for every bad value. */
const base = { HERALD_DATABASE_URL: 'sqlite:/tmp/herald-config-test/herald.db' };

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...base, ...env });
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('has the defaults of SPEC §1', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      databaseUrl: 'sqlite:./data/herald.db', host: '127.0.0.1', port: 8080, role: 'all', dev: false,
      deliveryTimeoutMs: 10000, maxAttempts: 5, retryBaseMs: 60000, retryFactor: 10, maxPayloadBytes: 5242880,
      allowedCidrs: [], egressIps: [], egressProxy: '', retentionDays: 30, adminToken: '', secretKeyBytes: null,
    });
    expect(c.db).toEqual({ kind: 'sqlite', path: expect.stringMatching(/data\/herald\.db$/) });
    // The lease outlasts the timeout, so a slow healthy receiver never gets a duplicate.
    expect(c.leaseMs).toBeGreaterThan(c.deliveryTimeoutMs);
  });

  it.each([
    ['HERALD_PORT', 'abc'],
    ['HERALD_PORT', '65536'],
    ['HERALD_PORT', '-1'],
    ['HERALD_PORT', '80.5'],
    ['HERALD_PORT', '1e3'],
    ['HERALD_DEV', 'maybe'],
    ['HERALD_DEV', 'on'],
    ['HERALD_ROLE', 'x'],
    ['HERALD_ROLE', 'API'],
    ['HERALD_DATABASE_URL', 'mysql://db/herald'],
    ['HERALD_DATABASE_URL', 'sqlite:'],
    ['HERALD_DATABASE_URL', './herald.db'],
    ['HERALD_SECRET_KEY', 'short'],
    ['HERALD_SECRET_KEY', '0'.repeat(63)],
    ['HERALD_SECRET_KEY', 'z'.repeat(64)],
    ['HERALD_ADMIN_TOKEN', 'too-short'],
    ['HERALD_ALLOWED_CIDRS', '10.0.0.1/8'],
    ['HERALD_ALLOWED_CIDRS', '10.0.0.0/33'],
    ['HERALD_ALLOWED_CIDRS', 'intranet'],
    ['HERALD_EGRESS_IPS', '203.0.113.7/16'],
    ['HERALD_MAX_ATTEMPTS', '0'],
    ['HERALD_MAX_ATTEMPTS', 'five'],
    ['HERALD_DELIVERY_TIMEOUT_MS', '10s'],
    ['HERALD_RETRY_FACTOR', '0.5'],
    ['HERALD_MAX_PAYLOAD_BYTES', '5MB'],
    ['HERALD_EGRESS_PROXY', 'ftp://x'],
    ['HERALD_EGRESS_PROXY', 'not a url'],
    ['HERALD_PUBLIC_URL', 'webhooks.example.com'],
    ['HERALD_LOG_LEVEL', 'verbose'],
    ['HERALD_SQLITE_SYNCHRONOUS', 'off'],
    ['HERALD_HOST', 'bad host'],
    ['HERALD_HOST', 'http://127.0.0.1'],
    ['HERALD_HOST', '127.0.0.1:8080'],
    ['HERALD_DNS_SERVERS', 'dns.example.com'],
    ['HERALD_DNS_SERVERS', '1.1.1.1:99999'],
    ['HERALD_DNS_SERVERS', '1.1.1.1:0'],
    ['HERALD_DNS_SERVERS', '[1.1.1.1]:53'],
    ['HERALD_DNS_SERVERS', '2606:4700::1111:53:x'],
    ['HERALD_DNS_SERVERS', '1.1.1.1;8.8.8.8'],
  ])('refuses %s=%s with a ConfigError naming the variable', (name, value) => {
    const e = refusal({ [name]: value });
    expect(e.setting).toBe(name);
    expect(e.message.startsWith(`${name}: `)).toBe(true);
  });

  // Table-driven, so a setting added later is covered without editing this test.
  it('refuses an ill-typed or out-of-range value for every setting that has a type', () => {
    const bad: Array<[string, string]> = [];
    for (const s of SETTINGS) {
      if (s.type === 'int' || s.type === 'number') {
        bad.push([s.env, 'abc'], [s.env, '12abc']);
        if (s.min !== undefined) bad.push([s.env, String(s.min - 1)]);
        if (s.max !== undefined) bad.push([s.env, String(s.max + 1)]);
      }
      if (s.type === 'bool') bad.push([s.env, 'maybe']);
      if (s.type === 'enum') bad.push([s.env, 'no-such-value']);
      if (s.type === 'url') bad.push([s.env, 'gopher://x'], [s.env, '::']);
      if (s.type === 'cidrs') bad.push([s.env, '300.0.0.0/8']);
    }
    expect(bad.length).toBeGreaterThan(30);
    for (const [name, value] of bad) {
      expect({ name, value, setting: refusal({ [name]: value }).setting }).toEqual({ name, value, setting: name });
    }
  });

  it('reads booleans as SPEC §1 says, in any case', () => {
    for (const v of ['1', 'true', 'yes', 'TRUE', 'Yes']) expect(loadConfig({ ...base, HERALD_DEV: v }).dev).toBe(true);
    for (const v of ['0', 'false', 'no', 'FALSE', 'No']) expect(loadConfig({ ...base, HERALD_DEV: v }).dev).toBe(false);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ ...base, HERALD_PORT: '', HERALD_ROLE: '' })).toMatchObject({ port: 8080, role: 'all' });
  });

  it('parses the values it accepts', () => {
    const c = loadConfig({
      HERALD_DATABASE_URL: 'postgres://herald:pw@127.0.0.1:5432/herald', HERALD_PORT: '0', HERALD_ROLE: 'worker',
      HERALD_SECRET_KEY: 'ab'.repeat(32), HERALD_ALLOWED_CIDRS: '10.20.0.0/16, fd00::/8 192.168.1.5',
      HERALD_EGRESS_IPS: '203.0.113.0/24,2001:db8::/32', HERALD_EGRESS_PROXY: 'http://proxy.internal:3128', HERALD_RETRY_FACTOR: '2.5',
    });
    expect(c.db).toEqual({ kind: 'postgres', url: 'postgres://herald:pw@127.0.0.1:5432/herald' });
    expect(c).toMatchObject({ port: 0, role: 'worker', retryFactor: 2.5, egressIps: ['203.0.113.0/24', '2001:db8::/32'] });
    expect(c.secretKeyBytes).toEqual(Buffer.alloc(32, 0xab));
    expect(c.allowedCidrs.map((x) => x.text)).toEqual(['10.20.0.0/16', 'fd00::/8', '192.168.1.5/32']);
    // base64 works too
    expect(loadConfig({ ...base, HERALD_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') }).secretKeyBytes).toEqual(Buffer.alloc(32, 7));
  });

  it('reads HERALD_DNS_SERVERS as a list of IP addresses with optional ports; empty is the system\'s', () => {
    expect(loadConfig(base).dnsServers).toEqual([]);
    const servers = ['1.1.1.1', '10.0.0.2:5353', '2606:4700::1111', '[2606:4700::1111]:53', '[::1]'];
    expect(loadConfig({ ...base, HERALD_DNS_SERVERS: '1.1.1.1, 10.0.0.2:5353 2606:4700::1111,[2606:4700::1111]:53 [::1]' }).dnsServers).toEqual(servers);
  });

  it('accepts IP addresses (bracketed or not) and host names as HERALD_HOST', () => {
    for (const host of ['::1', '[::1]']) expect(loadConfig({ ...base, HERALD_HOST: host })).toMatchObject({ host: '::1', publicUrl: 'http://[::1]:8080' });
    expect(loadConfig({ ...base, HERALD_HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ ...base, HERALD_HOST: 'localhost' }).publicUrl).toBe('http://localhost:8080');
  });

  it('names HERALD_* variables that are not settings (typos), ignoring the test suite’s own', () => {
    expect(unknownSettings({ HERALD_PORT: '1', HERALD_MAX_ATTEMPT: '3', HERALD_TEST_DATABASE_URL: 'x', HOME: '/' })).toEqual(['HERALD_MAX_ATTEMPT']);
  });
});

describe('describeConfig (the start-up summary)', () => {
  it('never shows secrets or passwords in URLs', () => {
    const c = loadConfig({
      HERALD_DATABASE_URL: 'postgres://herald:db-password-1@db:5432/herald',
      HERALD_ADMIN_TOKEN: 'admin-token-value-123456', HERALD_SECRET_KEY: 'cd'.repeat(32),
      HERALD_EGRESS_PROXY: 'http://proxyuser:proxy-password-2@proxy:3128', HERALD_PUBLIC_URL: 'https://token-3@herald.example.com',
    });
    const text = JSON.stringify(describeConfig(c));
    for (const secret of ['db-password-1', 'admin-token-value-123456', 'cd'.repeat(32), 'proxy-password-2', 'token-3']) expect(text).not.toContain(secret);
    const d = describeConfig(c);
    expect(d).toMatchObject({
      HERALD_DATABASE_URL: 'postgres://herald:[redacted]@db:5432/herald', HERALD_EGRESS_PROXY: 'http://proxyuser:[redacted]@proxy:3128',
      HERALD_ADMIN_TOKEN: '[set]', HERALD_SECRET_KEY: '[set]', HERALD_PORT: 8080,
    });
    expect(describeConfig(loadConfig(base))).toMatchObject({ HERALD_ADMIN_TOKEN: '[generated]' });
  });

  it('lists every setting', () => {
    expect(Object.keys(describeConfig(loadConfig(base))).sort()).toEqual(SETTINGS.map((s) => s.env).sort());
  });
});

describe('docs/CONFIGURATION.md', () => {
  const page = readFileSync(new URL('../../../docs/CONFIGURATION.md', import.meta.url), 'utf8');

  it('holds the current settings table (regenerate with: node scripts/config-doc.mjs)', () => {
    expect(page).toBe(updateConfigDoc(page));
  });

  it('documents every setting with its flag and default', () => {
    const table = renderSettingsTable();
    for (const s of SETTINGS) {
      const row = table.split('\n').find((l) => l.startsWith(`| \`${s.env}\` |`));
      expect(row, s.env).toBeDefined();
      expect(row).toContain(`\`${flagOf(s.env)}\``);
      expect(row).toContain(s.default === '' ? '(empty)' : `\`${s.default}\``);
      expect(page).toContain(row!);
    }
  });

  it('the table stays a table when a description holds a pipe', () => {
    const t = renderSettingsTable([{ env: 'HERALD_X', key: 'host', type: 'string', default: 'a|b', description: 'one | two' }]);
    expect(t.split('\n')[2]!.split(/(?<!\\)\|/).length).toBe(7);
  });
});
