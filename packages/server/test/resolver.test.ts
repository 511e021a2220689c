import { execFileSync } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { closeSync, mkdtempSync, openSync, promises as fsp, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver, type ResolvedAddress } from '../src/delivery/resolver.js';
import { Sender } from '../src/delivery/sender.js';
import { startDnsServer, type DnsServer } from './helpers/dns-server.js';
import { startReceiver } from './helpers/receiver.js';

/**
 * Name resolution off libuv's thread pool (delivery/resolver.ts), against a real DNS server on
 * 127.0.0.1 (helpers/dns-server.ts): names it knows, names it says do not exist, and a
 * name it never answers.
 */

let server: DnsServer;
beforeAll(async () => {
  // `ok` has A and AAAA, `rx` is 127.0.0.1, `mute` is never answered; every other name does not exist.
  server = await startDnsServer({ 'ok.test': { a: ['127.0.0.9'], aaaa: ['2001:db8::9'] }, 'rx.test': { a: ['127.0.0.1'] }, 'mute.test': { mute: true } });
});
afterAll(() => server.close());

/** An OS resolver stand-in that records what reached it. */
function osRecorder(answer: ResolvedAddress[] = [{ address: '127.0.0.7', family: 4 }]) {
  const asked: string[] = [];
  return { asked, osLookup: async (h: string) => (asked.push(h), answer) };
}

describe('resolver', () => {
  it('asks DNS for A and AAAA and returns both families', async () => {
    const os = osRecorder();
    const resolve = createResolver({ servers: [server.server], osLookup: os.osLookup });
    expect(await resolve('OK.test')).toEqual([{ address: '127.0.0.9', family: 4 }, { address: '2001:db8::9', family: 6 }]);
    expect(os.asked).toEqual([]);
  });

  it('leaves localhost, single-label names and names DNS does not know to the OS resolver (the hosts file)', async () => {
    const os = osRecorder();
    const resolve = createResolver({ servers: [server.server], osLookup: os.osLookup });
    const before = server.queries.length;
    await resolve('localhost');
    await resolve('api.localhost');
    await resolve('intranet');
    expect(server.queries.length).toBe(before); // never asked of DNS
    expect(await resolve('gone.test')).toEqual([{ address: '127.0.0.7', family: 4 }]);
    expect(os.asked).toEqual(['localhost', 'api.localhost', 'intranet', 'gone.test']);
  });

  it('with fallback none, asks the servers alone, for every name: the OS resolver never', async () => {
    const os = osRecorder();
    const resolve = createResolver({ servers: [server.server], fallback: 'none', osLookup: os.osLookup });
    const before = server.queries.length;
    const failures = await Promise.all(['localhost', 'intranet', 'gone.test'].map((h) => resolve(h).then(() => null, (e: NodeJS.ErrnoException) => e.code)));
    expect(failures).toEqual(['ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND']); // classified as `dns`
    expect(server.queries.slice(before).sort()).toEqual(['gone.test A', 'gone.test AAAA', 'intranet A', 'intranet AAAA', 'localhost A', 'localhost AAAA']);
    expect(await resolve('rx.test')).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect(os.asked).toEqual([]);
  });

  it('gives up on a name whose server never answers within its bounded time, as a DNS failure', async () => {
    const os = osRecorder();
    const resolve = createResolver({ servers: [server.server], timeoutMs: 100, tries: 2, osLookup: os.osLookup });
    const t0 = Date.now();
    const err = await resolve('mute.test').then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).toBe('EAI_AGAIN'); // classified as `dns`, never as a refused connection
    expect(err?.message).toContain('mute.test');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(os.asked).toEqual([]); // not absent: DNS did not answer, the hosts file is not a fallback
    // A delivery to it is an attempt failed on DNS (error_kind dns), not a network error.
    const sender = new Sender({ timeoutMs: 3000, policy: { allowPrivate: true, allowedCidrs: [], resolve } });
    try {
      expect(await sender.send('http://mute.test:9/hook', { 'content-type': 'application/json' }, Buffer.from('{}'))).toMatchObject({ statusCode: null, errorKind: 'dns' });
    } finally {
      await sender.close();
    }
  });

  it('resolves, and a delivery connects, while every thread of libuv\'s pool is held, where dns.lookup waits', async () => {
    const rx = await startReceiver();
    const resolve = createResolver({ servers: [server.server], timeoutMs: 500, tries: 1 });
    const sender = new Sender({ timeoutMs: 2000, policy: { allowPrivate: true, allowedCidrs: [], resolve } });
    // Four reads of FIFOs nobody writes to: each holds a pool thread in open() until released
    // (as four look-ups of names whose servers never answer would).
    const dir = mkdtempSync(join(tmpdir(), 'herald-pool-'));
    const fifos = [0, 1, 2, 3].map((i) => join(dir, `f${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const held = fifos.map((f) => fsp.readFile(f));
    try {
      const lookup = dns.lookup('localhost').then(() => 'answered' as const);
      const waited = await Promise.race([lookup, new Promise((r) => setTimeout(() => r('waiting'), 300))]);
      expect(waited).toBe('waiting'); // the pool really is full
      expect(await resolve('ok.test')).toContainEqual({ address: '127.0.0.9', family: 4 });
      const sent = await sender.send(`http://rx.test:${new URL(rx.url).port}/hook`, { 'content-type': 'application/json' }, Buffer.from('{}'));
      expect(sent).toMatchObject({ statusCode: 200, errorKind: null });
      expect(rx.received).toHaveLength(1);
    } finally {
      for (const f of fifos) {
        const fd = openSync(f, 'w');
        writeSync(fd, 'x');
        closeSync(fd);
      }
      await Promise.all(held);
      rmSync(dir, { recursive: true, force: true });
      await sender.close();
      await rx.close();
    }
  });

  it('lets two OS look-ups run at once and a bounded number wait; past that it fails at once', async () => {
    const pending: Array<() => void> = [];
    let running = 0;
    let most = 0;
    const osLookup = (h: string) =>
      new Promise<ResolvedAddress[]>((resolve) => {
        most = Math.max(most, ++running);
        pending.push(() => {
          running--;
          resolve([{ address: `127.0.0.${h.length}`, family: 4 }]);
        });
      });
    const resolve = createResolver({ osLookups: 2, osQueue: 2, osLookup });
    const calls = ['a', 'bb', 'ccc', 'dddd'].map((h) => resolve(h));
    const refused = await resolve('eeeee').then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(refused?.code).toBe('EAI_AGAIN');
    await new Promise((r) => setImmediate(r));
    expect(pending).toHaveLength(2); // two running, two waiting
    while (pending.length || running) {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect((await Promise.all(calls)).map((a) => a[0]!.address)).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']);
    expect(most).toBe(2);
  });
});
