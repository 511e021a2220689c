import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request as undiciRequest } from 'undici';
import { parseCidrList, type AddressPolicyOptions } from '../src/core/address-policy.js';
import {
  createSafeLookup,
  DestinationBlockedError,
  resolveAndCheck,
  type ResolveFn,
  type SafeLookupOptions,
} from '../src/delivery/safe-lookup.js';

// Only 127.0.0.1/::1 are ever contacted. Fake resolvers stand in for DNS; the real resolver is
// only asked about `localhost` (from /etc/hosts), so no test needs external DNS.
const STRICT: AddressPolicyOptions = { allowPrivate: false, allowedCidrs: [] };
const DEV: AddressPolicyOptions = { allowPrivate: true, allowedCidrs: [] };

type LookupResult = { err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };

function lookupAsync(opts: SafeLookupOptions, hostname: string, options: object): Promise<LookupResult> {
  const lookup = createSafeLookup(opts);
  return new Promise((resolve) => {
    lookup(hostname, options, (err, address, family) => resolve({ err, address, family }));
  });
}

/** A fake resolver that records the names it was asked about. */
function fakeResolve(answers: Record<string, Array<{ address: string; family: number }>>): ResolveFn & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string) => {
    calls.push(host);
    const a = answers[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a;
  };
  return Object.assign(fn, { calls });
}

const MIXED = fakeResolve({
  'mixed.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '127.0.0.2', family: 4 },
  ],
  'mixed6.test': [
    { address: '93.184.216.34', family: 4 },
    { address: 'fd00:ec2::254', family: 6 },
  ],
  'public.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '2606:4700::1111', family: 6 },
  ],
  'v4only.test': [{ address: '93.184.216.34', family: 4 }],
  'mapped.test': [{ address: '::ffff:169.254.169.254', family: 6 }],
  'empty.test': [],
});

describe('createSafeLookup', () => {
  it('refuses localhost (from /etc/hosts) with EDESTINATIONBLOCKED, in both call forms', async () => {
    for (const options of [{ all: true }, {}, { family: 4 }]) {
      const r = await lookupAsync(STRICT, 'localhost', options);
      expect(r.err).toBeInstanceOf(DestinationBlockedError);
      expect(r.err?.code).toBe('EDESTINATIONBLOCKED');
      expect(r.err?.message).toBe('destination not allowed');
      expect(r.err?.message).not.toMatch(/127|::1/);
      expect((r.err as DestinationBlockedError).detail).toMatch(/^localhost -> (127\.0\.0\.1|::1): loopback/);
    }
  });

  it('passes localhost in dev mode', async () => {
    const all = await lookupAsync(DEV, 'localhost', { all: true });
    expect(all.err).toBeNull();
    expect(Array.isArray(all.address)).toBe(true);
    const addrs = (all.address as LookupAddress[]).map((a) => a.address);
    expect(addrs.length).toBeGreaterThan(0);
    for (const a of addrs) expect(['127.0.0.1', '::1']).toContain(a);

    const one = await lookupAsync(DEV, 'localhost', {});
    expect(one.err).toBeNull();
    expect(['127.0.0.1', '::1']).toContain(one.address);
    expect([4, 6]).toContain(one.family);
  });

  it('an allow-listed CIDR admits localhost only if every answer is inside it', async () => {
    const resolve = fakeResolve({ 'receiver.test': [{ address: '127.0.0.1', family: 4 }], 'two.test': [{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }] });
    const opts = { ...STRICT, allowedCidrs: parseCidrList('127.0.0.1/32'), resolve };
    expect((await lookupAsync(opts, 'receiver.test', { all: true })).address).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect((await lookupAsync(opts, 'two.test', { all: true })).err?.code).toBe('EDESTINATIONBLOCKED');
  });

  it('refuses a name with one public and one private answer (all:true and single form)', async () => {
    for (const host of ['mixed.test', 'mixed6.test', 'mapped.test']) {
      for (const options of [{ all: true }, {}, { family: 4 }, { all: true, family: 4 }]) {
        const r = await lookupAsync({ ...STRICT, resolve: MIXED }, host, options);
        expect(r.err?.code, `${host} ${JSON.stringify(options)}`).toBe('EDESTINATIONBLOCKED');
      }
    }
  });

  it('passes vetted public answers on: all of them for all:true, the first otherwise', async () => {
    const opts = { ...STRICT, resolve: MIXED };
    const all = await lookupAsync(opts, 'public.test', { all: true });
    expect(all).toEqual({
      err: null,
      address: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:4700::1111', family: 6 },
      ],
      family: undefined,
    });
    expect(await lookupAsync(opts, 'public.test', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await lookupAsync(opts, 'public.test', { family: 6 })).toEqual({ err: null, address: '2606:4700::1111', family: 6 });
    expect((await lookupAsync(opts, 'public.test', { all: true, family: 'IPv6' })).address).toEqual([{ address: '2606:4700::1111', family: 6 }]);
  });

  it('reports ENOTFOUND when nothing (of the wanted family) resolves', async () => {
    const opts = { ...STRICT, resolve: MIXED };
    expect((await lookupAsync(opts, 'v4only.test', { family: 6 })).err?.code).toBe('ENOTFOUND');
    expect((await lookupAsync(opts, 'empty.test', { all: true })).err?.code).toBe('ENOTFOUND');
    expect((await lookupAsync(opts, 'nxdomain.test', { all: true })).err?.code).toBe('ENOTFOUND');
  });

  it('checks IP literals directly, without DNS', async () => {
    const resolve = fakeResolve({});
    const opts = { ...STRICT, resolve };
    expect((await lookupAsync(opts, '127.0.0.1', {})).err?.code).toBe('EDESTINATIONBLOCKED');
    expect((await lookupAsync(opts, '[::1]', { all: true })).err?.code).toBe('EDESTINATIONBLOCKED');
    expect((await lookupAsync(opts, 'fe80::1%eth0', {})).err?.code).toBe('EDESTINATIONBLOCKED');
    expect(await lookupAsync(opts, '93.184.216.34', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(resolve.calls).toEqual([]);
  });

  it('calls back asynchronously', async () => {
    const lookup = createSafeLookup({ ...STRICT, resolve: MIXED });
    let called = false;
    const done = new Promise<void>((resolve) => {
      lookup('93.184.216.34', {}, () => {
        called = true;
        resolve();
      });
    });
    expect(called).toBe(false);
    await done;
    expect(called).toBe(true);
  });
});

describe('resolveAndCheck', () => {
  it('refuses localhost without revealing the address', async () => {
    const r = await resolveAndCheck('localhost', STRICT);
    expect(r).toMatchObject({ ok: false, code: 'url_not_allowed' });
    if (r.ok !== false) throw new Error('unreachable');
    expect(r.message).toMatch(/^destination not allowed/);
    expect(r.message).not.toMatch(/127|::1/);
    expect(r.detail).toMatch(/loopback/);
  });

  it('accepts localhost in dev mode', async () => {
    const r = await resolveAndCheck('localhost', DEV);
    expect(r.ok).toBe(true);
    if (r.ok === true) for (const a of r.addresses) expect(['127.0.0.1', '::1']).toContain(a);
  });

  it('refuses mixed answers and accepts public ones', async () => {
    expect(await resolveAndCheck('mixed.test', { ...STRICT, resolve: MIXED })).toMatchObject({ ok: false, code: 'url_not_allowed' });
    expect(await resolveAndCheck('public.test', { ...STRICT, resolve: MIXED })).toEqual({
      ok: true,
      addresses: ['93.184.216.34', '2606:4700::1111'],
    });
  });

  it('a name that does not resolve is "unresolved", not refused', async () => {
    expect(await resolveAndCheck('nxdomain.test', { ...STRICT, resolve: MIXED })).toEqual({ ok: 'unresolved' });
    expect(await resolveAndCheck('empty.test', { ...STRICT, resolve: MIXED })).toEqual({ ok: 'unresolved' });
  });

  it('a resolver slower than the timeout is "unresolved"', async () => {
    const slow: ResolveFn = () => new Promise((resolve) => setTimeout(() => resolve([{ address: '127.0.0.1', family: 4 }]), 500));
    const started = Date.now();
    expect(await resolveAndCheck('slow.test', { ...STRICT, resolve: slow }, 50)).toEqual({ ok: 'unresolved' });
    expect(Date.now() - started).toBeLessThan(400);
  });

  it('checks IP literals directly, without DNS', async () => {
    const resolve = fakeResolve({});
    const opts = { ...STRICT, resolve };
    expect(await resolveAndCheck('93.184.216.34', opts)).toEqual({ ok: true, addresses: ['93.184.216.34'] });
    expect(await resolveAndCheck('[2606:4700::1111]', opts)).toEqual({ ok: true, addresses: ['2606:4700::1111'] });
    expect(await resolveAndCheck('169.254.169.254', opts)).toMatchObject({ ok: false, code: 'url_not_allowed' });
    expect(await resolveAndCheck('[::ffff:a9fe:a9fe]', opts)).toMatchObject({ ok: false, code: 'url_not_allowed' });
    expect(await resolveAndCheck('fe80::1%eth0', opts)).toMatchObject({ ok: false, code: 'url_not_allowed' });
    expect(resolve.calls).toEqual([]);
  });
});

describe('end to end over loopback', () => {
  let server: http.Server;
  let port = 0;
  let connections = 0;

  beforeAll(async () => {
    server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function get(opts: AddressPolicyOptions, autoSelectFamily: boolean): Promise<{ status?: number; error?: NodeJS.ErrnoException }> {
    return new Promise((resolve) => {
      // autoSelectFamily (not in @types/node's RequestOptions) is passed through to net.connect:
      // true makes Node call lookup with { all: true }, false with the single-address form.
      const options: http.RequestOptions & { autoSelectFamily: boolean } = {
        host: 'localhost',
        port,
        path: '/',
        lookup: createSafeLookup(opts),
        autoSelectFamily,
        agent: false,
      };
      const req = http.request(options, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve({ error }));
      req.end();
    });
  }

  it('http.request to localhost is refused before any connection is made', async () => {
    connections = 0;
    for (const autoSelectFamily of [true, false]) {
      const r = await get(STRICT, autoSelectFamily);
      expect(r.error?.code, `autoSelectFamily=${autoSelectFamily}`).toBe('EDESTINATIONBLOCKED');
      expect(r.error?.message).toBe('destination not allowed');
    }
    expect(connections).toBe(0);
  });

  it('the same request succeeds in dev mode', async () => {
    connections = 0;
    expect(await get(DEV, true)).toEqual({ status: 200 });
    expect(await get(DEV, false)).toEqual({ status: 200 });
    expect(connections).toBe(2);
  });

  it('works as the lookup of an undici Agent', async () => {
    connections = 0;
    const blocked = new Agent({ connect: { lookup: createSafeLookup(STRICT) } });
    const err = await undiciRequest(`http://localhost:${port}/`, { dispatcher: blocked }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EDESTINATIONBLOCKED');
    expect(connections).toBe(0);
    await blocked.close();

    const dev = new Agent({ connect: { lookup: createSafeLookup(DEV) } });
    const res = await undiciRequest(`http://localhost:${port}/`, { dispatcher: dev });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
    await dev.close();
    expect(connections).toBe(1);
  });
});
