import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { parseCidrList, type Cidr } from '../core/address-policy.js';
import { parseSecretKey } from '../core/secret-box.js';
import { SETTINGS, type RawConfigKeys, type Setting } from './settings.js';

export interface Config extends Omit<RawConfigKeys, 'allowedCidrs' | 'egressIps' | 'dnsServers'> {
  allowedCidrs: Cidr[];
  egressIps: string[];
  /** HERALD_DNS_SERVERS as c-ares takes them (`ip`, `ip:port`, `[ipv6]:port`); empty: the system's. */
  dnsServers: string[];
  /** Parsed `HERALD_SECRET_KEY`, or null until the data dir provides one. */
  secretKeyBytes: Buffer | null;
  db: { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };
  /** A lease outlasts the timeout so a slow but healthy receiver is never sent a duplicate. */
  leaseMs: number;
}

/** A bad setting stops the process with a message naming the variable. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

// A DNS name: dot-separated labels of letters, digits and inner hyphens.
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

const TRUE = new Set(['1', 'true', 'yes']);
const FALSE = new Set(['0', 'false', 'no']);

function parseValue(s: Setting, raw: string): unknown {
  switch (s.type) {
    case 'string':
      return raw;
    case 'int':
    case 'number': {
      const ok = s.type === 'int' ? /^-?\d+$/.test(raw.trim()) : /^-?\d+(\.\d+)?$/.test(raw.trim());
      const n = Number(raw);
      if (!ok || !Number.isFinite(n)) throw new ConfigError(s.env, `expected ${s.type === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`);
      if (s.min !== undefined && n < s.min) throw new ConfigError(s.env, `must be at least ${s.min}, got ${n}`);
      if (s.max !== undefined && n > s.max) throw new ConfigError(s.env, `must be at most ${s.max}, got ${n}`);
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new ConfigError(s.env, `expected 1/true/yes or 0/false/no, got ${JSON.stringify(raw)}`);
    }
    case 'enum':
      if (!s.values!.includes(raw)) throw new ConfigError(s.env, `expected one of ${s.values!.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'url': {
      if (raw === '') return '';
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        throw new ConfigError(s.env, `not a valid URL: ${JSON.stringify(raw)}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(s.env, `must be an http:// or https:// URL`);
      return raw;
    }
    case 'cidrs':
      try {
        parseCidrList(raw);
      } catch (e) {
        throw new ConfigError(s.env, (e as Error).message);
      }
      return raw;
  }
}

/**
 * Resolve the configuration from the environment (and CLI overrides keyed by env name).
 * Pure: no files are touched here; the data dir (generated secrets) is handled by bootstrap.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const v = env[s.env];
    raw[s.key] = parseValue(s, v === undefined || v === '' ? s.default : v);
  }
  const r = raw as unknown as RawConfigKeys;

  let db: Config['db'];
  if (r.databaseUrl.startsWith('sqlite:')) {
    const path = r.databaseUrl.slice('sqlite:'.length);
    if (path === '') throw new ConfigError('HERALD_DATABASE_URL', 'sqlite: needs a file path, e.g. sqlite:./data/herald.db');
    db = { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  } else if (/^postgres(ql)?:\/\//.test(r.databaseUrl)) {
    db = { kind: 'postgres', url: r.databaseUrl };
  } else {
    throw new ConfigError('HERALD_DATABASE_URL', 'expected sqlite:PATH or postgres://…');
  }

  // Caught here, not by listen(), whose error would name neither the variable nor the value.
  const bareHost = r.host.replace(/^\[(.*)\]$/, '$1');
  if (!isIP(bareHost) && !HOST_NAME.test(r.host)) {
    throw new ConfigError('HERALD_HOST', `expected an IP address or a host name, got ${JSON.stringify(r.host)}`);
  }

  let secretKeyBytes: Buffer | null = null;
  if (r.secretKey !== '') {
    secretKeyBytes = parseSecretKey(r.secretKey);
    if (!secretKeyBytes) throw new ConfigError('HERALD_SECRET_KEY', 'must be 32 bytes written as 64 hex characters or base64');
  }
  if (r.adminToken !== '' && r.adminToken.length < 16) {
    throw new ConfigError('HERALD_ADMIN_TOKEN', 'must be at least 16 characters');
  }

  const dnsServers = r.dnsServers.split(/[\s,]+/).filter(Boolean);
  for (const server of dnsServers) {
    if (!dnsServerAddress(server)) {
      throw new ConfigError('HERALD_DNS_SERVERS', `expected IP addresses, each with an optional port (1.1.1.1, 10.0.0.2:5353, [2606:4700::1111]:53), got ${JSON.stringify(server)}`);
    }
  }

  const dataDir = r.dataDir !== '' ? resolve(r.dataDir) : db.kind === 'sqlite' && db.path !== ':memory:' ? dirname(db.path) : resolve('data');
  const publicUrl = (r.publicUrl || `http://${bareHost.includes(':') ? `[${bareHost}]` : bareHost}:${r.port}`).replace(/\/+$/, '');

  return {
    ...r,
    // `[::1]` is accepted as written in URLs, but listen() wants the bare address.
    host: bareHost,
    publicUrl,
    dataDir,
    db,
    secretKeyBytes,
    allowedCidrs: parseCidrList(r.allowedCidrs),
    egressIps: r.egressIps.split(/[\s,]+/).filter(Boolean),
    dnsServers,
    leaseMs: r.deliveryTimeoutMs + 5000,
  };
}

/** Whether `s` is a DNS server as c-ares' setServers takes it: `ip`, `ipv4:port` or `[ipv6]:port`. */
function dnsServerAddress(s: string): boolean {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([\d.]+)(?::(\d{1,5}))?$/.exec(s) ?? /^([^[\]]*:[^[\]]*)()$/.exec(s);
  if (!m) return false;
  const [, address, port] = m;
  if (!isIP(address!) || (s.startsWith('[') && isIP(address!) !== 6)) return false;
  return !port || (Number(port) >= 1 && Number(port) <= 65535);
}

/**
 * `HERALD_*` variables that are not settings: almost always a typo (`HERALD_MAX_ATTEMPT`) that
 * would otherwise leave the default silently in force. The CLI warns about them at start-up.
 * `HERALD_TEST_*` belongs to the test suite and is ignored.
 */
export function unknownSettings(env: Record<string, string | undefined> = process.env): string[] {
  const known = new Set(SETTINGS.map((s) => s.env));
  return Object.keys(env).filter((k) => k.startsWith('HERALD_') && !k.startsWith('HERALD_TEST_') && !known.has(k)).sort();
}

/** Start-up summary with secrets redacted (logged once at start). */
export function describeConfig(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const v = (c as unknown as Record<string, unknown>)[s.key];
    // URLs may carry a password (postgres://u:p@…, an egress proxy's http://u:p@…): keep the user, hide the rest.
    out[s.env] = s.secret ? (v ? '[set]' : '[generated]') : s.type === 'url' || s.key === 'databaseUrl' ? redactUrl(String(v)) : v;
  }
  return out;
}

/** `scheme://user:pass@host` → `scheme://user:[redacted]@host`; a lone `token@` is all secret. */
export function redactUrl(u: string): string {
  return u.replace(/\/\/([^/?#]*)@/, (_m, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? '//[redacted]@' : `//${userinfo.slice(0, colon)}:[redacted]@`;
  });
}
