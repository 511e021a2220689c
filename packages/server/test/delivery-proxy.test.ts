import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { startConnectProxy, type ConnectProxy } from './helpers/connect-proxy.js';
import { startDnsServer } from './helpers/dns-server.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';

/**
 * HERALD_EGRESS_PROXY: every delivery and every Test Connection leaves through the CONNECT
 * proxy, and the address policy is still Herald's to enforce: a forbidden destination is
 * refused before the proxy is even asked.
 */
describe('egress proxy', () => {
  let proxy: ConnectProxy;
  let rx: Receiver;
  beforeAll(async () => {
    proxy = await startConnectProxy();
    rx = await startReceiver();
  });
  afterAll(async () => {
    await proxy.close();
    await rx.close();
  });

  const finished = (h: TestHerald, acc: string, id: string) =>
    waitFor(async () => {
      const d = await h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`);
      return d.body.status !== 'pending' ? d.body : null;
    });

  it('sends deliveries and Test Connection through the proxy', async () => {
    const h = await startHerald({ HERALD_DEV: 'true', HERALD_EGRESS_PROXY: proxy.url });
    try {
      const acc = await createAccount(h);
      const byIp = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `${rx.url}/ip`, events: ['*'] });
      const byName = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `http://localhost:${rx.port}/name`, events: ['*'] });
      expect(byName.status).toBe(201);
      const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { via: 'proxy' } });
      for (const d of p.body.deliveries) expect((await finished(h, acc, d.id)).status).toBe('succeeded');
      expect(rx.received.map((r) => r.url).sort()).toEqual(['/ip', '/name']);
      // The proxy was asked for exactly these targets; the name is resolved by the proxy.
      expect(proxy.connects).toContain(`127.0.0.1:${rx.port}`);
      expect(proxy.connects).toContain(`localhost:${rx.port}`);
      expect(proxy.plainRequests).toBe(0);
      expect(byIp.status).toBe(201);

      // Every connection the receiver accepted came out of a tunnel, none directly from Herald.
      expect(rx.connections).toBe(proxy.connects.filter((c) => c.endsWith(`:${rx.port}`)).length);

      // Test Connection, to a receiver no tunnel is open to yet.
      const other = await startReceiver();
      try {
        const t = await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: `${other.url}/ping` });
        expect(t.body).toMatchObject({ ok: true, status_code: 200 });
        expect(proxy.connects.filter((c) => c === `127.0.0.1:${other.port}`)).toHaveLength(1);
        expect(other.connections).toBe(1);
      } finally {
        await other.close();
      }
    } finally {
      await h.close();
    }
  });

  it.each([
    ['through the proxy', true],
    ['directly (the connect-time lookup)', false],
  ])('refuses forbidden destinations before anything is sent: %s', async (_name, viaProxy) => {
    // Webhooks saved while HERALD_DEV allowed loopback, then the policy tightens (as when a
    // name's DNS changes after creation): every attempt is judged again.
    const dev = await startHerald({ HERALD_DEV: 'true' });
    const acc = await createAccount(dev);
    const urls = [`${rx.url}/a`, `http://localhost:${rx.port}/b`, `http://[::1]:${rx.port}/c`, `http://[::ffff:127.0.0.1]:${rx.port}/d`];
    const hooks: string[] = [];
    for (const url of urls) {
      const w = await dev.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['*'] });
      expect(w.status).toBe(201);
      hooks.push(w.body.id);
    }
    await dev.herald.close();

    const strict = await startHerald({ HERALD_DATABASE_URL: dev.config.databaseUrl, HERALD_EGRESS_PROXY: viaProxy ? proxy.url : '', HERALD_MAX_ATTEMPTS: '1' });
    try {
      const connectsBefore = proxy.connects.length;
      const rxBefore = rx.connections;
      const p = await strict.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      expect(p.body.deliveries).toHaveLength(urls.length);
      for (const d of p.body.deliveries) {
        const done = await finished(strict, acc, d.id);
        expect(done.status).toBe('failed');
        expect(done.attempts[0]).toMatchObject({ error_kind: 'blocked', error: 'destination not allowed', status_code: null });
        // No internal address or port in what the account sees.
        expect(JSON.stringify(done.attempts[0])).not.toContain(String(rx.port));
      }
      const t = await strict.api('POST', `/v1/accounts/${acc}/webhooks/${hooks[1]}/test`);
      expect(t.body).toMatchObject({ ok: false, error: 'destination not allowed' });

      expect(proxy.connects.length).toBe(connectsBefore);
      expect(rx.connections).toBe(rxBefore);
    } finally {
      await strict.close();
      await dev.close();
    }
  });

  it("counts Herald's own DNS check against the attempt's one timeout: a slow answer leaves the request less time, a name never answered ends as a timeout", async () => {
    const dns = await startDnsServer({ 'slow.example.test': { a: ['127.0.0.1'], delayMs: 600 }, 'mute.example.test': { mute: true } });
    const stall = await startReceiver(() => {}); // takes the request, never answers
    const mapped = await startConnectProxy({ hosts: { 'slow.example.test': '127.0.0.1' } });
    const h = await startHerald({ HERALD_DEV: 'true', HERALD_EGRESS_PROXY: mapped.url, HERALD_DNS_SERVERS: dns.server, HERALD_DELIVERY_TIMEOUT_MS: '1000' });
    try {
      const acc = await createAccount(h);
      for (const name of ['slow', 'mute']) {
        expect((await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `http://${name}.example.test:${stall.port}/${name}`, events: ['*'] })).status).toBe(201);
      }
      const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
      for (const d of p.body.deliveries) {
        await waitFor(async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${d.id}`)).body.attempts.length > 0, 10_000);
        const [a] = (await h.api('GET', `/v1/accounts/${acc}/deliveries/${d.id}`)).body.attempts;
        // 600 ms of DNS and then the stalled request: the whole attempt still ends at about 1 s.
        expect(a).toMatchObject({ error_kind: 'timeout' });
        expect(a.duration_ms).toBeGreaterThanOrEqual(950);
        expect(a.duration_ms).toBeLessThan(1400);
      }
      expect(stall.received.map((r) => r.url)).toEqual(['/slow']);
    } finally {
      await h.close();
      await mapped.close();
      await stall.close();
      dns.close();
    }
  });
});
