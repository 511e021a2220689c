import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, type TestHerald } from './helpers/herald.js';
import { startDnsServer } from './helpers/dns-server.js';
import { closedPort, startReceiver, type Receiver } from './helpers/receiver.js';

/**
 * SPEC §5: Test Connection sends one signed `ping`, synchronously, and answers
 * {ok, status_code, duration_ms, error, response_body} within the timeout plus one second.
 */
const TIMEOUT_MS = 800;
const SECRET = 'whsec_test-connection-secret';


describe('Test Connection', () => {
  let h: TestHerald;
  let rx: Receiver;
  let acc: string;
  beforeAll(async () => {
    h = await startHerald({ HERALD_DEV: 'true', HERALD_DELIVERY_TIMEOUT_MS: String(TIMEOUT_MS) }, { worker: false });
    rx = await startReceiver((_r, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('pong from receiver'));
    acc = await createAccount(h);
  });
  afterAll(async () => {
    await h.close();
    await rx.close();
  });

  it('pings an unsaved form: a signed ping event, with the answer shown', async () => {
    const r = await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: rx.url + '/form', secret: SECRET, headers: { 'X-Token': 'abc' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, status_code: 200, error: null, error_kind: null, response_body: 'pong from receiver' });
    expect(typeof r.body.duration_ms).toBe('number');
    const got = rx.received.at(-1)!;
    expect(got.url).toBe('/form');
    expect(got.headers['x-herald-event']).toBe('ping');
    expect(got.headers['x-token']).toBe('abc');
    const body = JSON.parse(got.body.toString());
    expect(body.event).toBe('ping');
    expect(body.delivery_id).toBe(got.headers['x-herald-delivery']);
    expect(got.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', SECRET).update(got.body).digest('hex'));
    expect(() => new Webhook(Buffer.from(SECRET), { format: 'raw' }).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
    // An unsaved form leaves no history behind.
    const l = await h.api('GET', `/v1/accounts/${acc}/deliveries?event_type=ping`);
    expect(l.body.data.filter((d: any) => d.id === body.delivery_id)).toHaveLength(0);
  });

  it('pings a saved webhook and keeps the ping in its history, with the response', async () => {
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url + '/saved', events: ['content.generated'], secret: SECRET });
    const r = await h.api('POST', `/v1/accounts/${acc}/webhooks/${w.body.id}/test`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, status_code: 200, response_body: 'pong from receiver' });
    const id = r.body.delivery_id as string;
    expect(rx.received.at(-1)!.headers['x-herald-delivery']).toBe(id);

    const l = await h.api('GET', `/v1/accounts/${acc}/deliveries?webhook_id=${w.body.id}`);
    expect(l.body.data.map((d: any) => [d.id, d.event_type, d.status, d.response_status])).toEqual([[id, 'ping', 'succeeded', 200]]);
    const d = await h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`);
    expect(d.body.attempts).toHaveLength(1);
    expect(d.body.attempts[0]).toMatchObject({ attempt: 1, status_code: 200, success: true, response_body: 'pong from receiver' });
    expect(d.body.attempts[0].request_headers['x-hub-signature-256']).toBe('[redacted]');
    expect(d.body.request.body).toBe(rx.received.at(-1)!.body.toString());
  });

  it('signs an edited form with the saved webhook\'s stored secret when given its id, without revealing it', async () => {
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url + '/saved', events: ['*'], secret: SECRET });
    const r = await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: rx.url + '/edited', webhook_id: w.body.id });
    expect(r.body).toMatchObject({ ok: true, status_code: 200 });
    const got = rx.received.at(-1)!;
    expect(got.url).toBe('/edited');
    expect(got.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', SECRET).update(got.body).digest('hex'));
    const audit = await h.api('GET', `/v1/accounts/${acc}/audit-events?limit=100`);
    expect(audit.body.data.filter((e: any) => e.action === 'webhook.secret_revealed' && e.target === w.body.id)).toEqual([]);
    // An explicit secret (or null: unsigned) wins over the stored one.
    await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: rx.url + '/edited', webhook_id: w.body.id, secret: null });
    expect(rx.received.at(-1)!.headers['x-hub-signature-256']).toBeUndefined();
    // Another account's webhook is not found, and nothing is sent.
    const other = await createAccount(h);
    const before = rx.received.length;
    const foreign = await h.api('POST', `/v1/accounts/${other}/webhooks/test`, { url: rx.url + '/edited', webhook_id: w.body.id });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('webhook_not_found');
    expect(rx.received.length).toBe(before);
  });

  it('answers 404, not 500, when the webhook is deleted while its ping is out', async () => {
    const slow = await startReceiver(async (_r, res) => {
      await new Promise((r) => setTimeout(r, 400));
      res.end('late');
    });
    try {
      const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: slow.url + '/doomed', events: ['content.generated'] });
      const testing = h.api('POST', `/v1/accounts/${acc}/webhooks/${w.body.id}/test`);
      await new Promise((r) => setTimeout(r, 150));
      expect((await h.api('DELETE', `/v1/accounts/${acc}/webhooks/${w.body.id}`)).status).toBe(204);
      const r = await testing;
      expect(slow.received).toHaveLength(1);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('webhook_not_found');
    } finally {
      await slow.close();
    }
  });

  it('shows a non-2xx answer as ok=false with its status and body', async () => {
    const bad = await startReceiver((_r, res) => res.writeHead(401).end('{"error":"bad signature"}'));
    try {
      const r = await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: bad.url });
      expect(r.body).toMatchObject({ ok: false, status_code: 401, error: 'HTTP 401', error_kind: 'http_status', response_body: '{"error":"bad signature"}' });
    } finally {
      await bad.close();
    }
  });

  it('shows a refused connection as ok=false with the error, and records it for a saved webhook', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/hook`;
    const r = await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url });
    expect(r.body).toMatchObject({ ok: false, status_code: null, error: 'connection refused', error_kind: 'refused', response_body: null });

    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['content.generated'] });
    const s = await h.api('POST', `/v1/accounts/${acc}/webhooks/${w.body.id}/test`);
    expect(s.body.ok).toBe(false);
    const d = await h.api('GET', `/v1/accounts/${acc}/deliveries/${s.body.delivery_id}`);
    expect(d.body.status).toBe('failed');
    expect(d.body.attempts[0]).toMatchObject({ error_kind: 'refused', error: 'connection refused', status_code: null });
  });

  it('answers within the timeout plus one second when the receiver never answers', async () => {
    const silent = await startReceiver(() => {});
    try {
      const t0 = Date.now();
      const r = await h.api('POST', `/v1/accounts/${acc}/webhooks/test`, { url: silent.url });
      const took = Date.now() - t0;
      expect(r.body).toMatchObject({ ok: false, status_code: null, error: `timed out after ${TIMEOUT_MS} ms`, error_kind: 'timeout' });
      expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(r.body.duration_ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 1);
      expect(took).toBeLessThan(TIMEOUT_MS + 1000);
    } finally {
      await silent.close();
    }
  });

  it('refuses a forbidden destination before sending anything', async () => {
    const strict = await startHerald({ HERALD_DELIVERY_TIMEOUT_MS: String(TIMEOUT_MS) }, { worker: false });
    try {
      const a = await createAccount(strict);
      const before = rx.connections;
      const r = await strict.api('POST', `/v1/accounts/${a}/webhooks/test`, { url: rx.url.replace('http:', 'https:') });
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('url_not_allowed');
      expect(rx.connections).toBe(before);
    } finally {
      await strict.close();
    }
  });

  describe('with HERALD_DNS_SERVERS', () => {
    it('asks those servers: a name they point inward is refused, one that never answers still gets an answer in time', async () => {
      const dns = await startDnsServer({ 'inward.example.test': { a: ['10.0.0.1'] }, 'mute.example.test': { mute: true } });
      const strict = await startHerald({ HERALD_DELIVERY_TIMEOUT_MS: String(TIMEOUT_MS), HERALD_DNS_SERVERS: dns.server }, { worker: false });
      try {
        const a = await createAccount(strict);
        const inward = await strict.api('POST', `/v1/accounts/${a}/webhooks/test`, { url: 'https://inward.example.test/hook' });
        expect(inward.status).toBe(422);
        expect(inward.body.error.code).toBe('url_not_allowed');
        expect(dns.queries).toContain('inward.example.test A');
        // Saving is refused the same way.
        const saved = await strict.api('POST', `/v1/accounts/${a}/webhooks`, { url: 'https://inward.example.test/hook', events: ['*'] });
        expect(saved.status).toBe(422);
        // The check before sending waits 0.5 s for DNS, then the ping's own timeout bounds the
        // rest: the answer comes within the timeout plus one second (SPEC §5).
        const t0 = Date.now();
        const mute = await strict.api('POST', `/v1/accounts/${a}/webhooks/test`, { url: 'https://mute.example.test/hook' });
        const took = Date.now() - t0;
        expect(mute.status).toBe(200);
        expect(mute.body).toMatchObject({ ok: false, status_code: null });
        expect(['timeout', 'dns']).toContain(mute.body.error_kind);
        expect(dns.queries).toContain('mute.example.test A');
        expect(took).toBeLessThan(TIMEOUT_MS + 1000);
      } finally {
        await strict.close();
        dns.close();
      }
    });

    it('reaches a receiver by a name only those servers know', async () => {
      const dns = await startDnsServer({ 'rx.example.test': { a: ['127.0.0.1'] } });
      const dev = await startHerald({ HERALD_DEV: 'true', HERALD_DELIVERY_TIMEOUT_MS: String(TIMEOUT_MS), HERALD_DNS_SERVERS: dns.server }, { worker: false });
      try {
        const a = await createAccount(dev);
        const r = await dev.api('POST', `/v1/accounts/${a}/webhooks/test`, { url: `http://rx.example.test:${new URL(rx.url).port}/by-name` });
        expect(r.body).toMatchObject({ ok: true, status_code: 200, response_body: 'pong from receiver' });
        expect(rx.received.at(-1)?.url).toBe('/by-name');
        // The hosts file is not asked either: `localhost` is a name those servers do not know.
        const local = await dev.api('POST', `/v1/accounts/${a}/webhooks/test`, { url: `http://localhost:${new URL(rx.url).port}/local` });
        expect(local.body).toMatchObject({ ok: false, error_kind: 'dns' });
      } finally {
        await dev.close();
        dns.close();
      }
    });
  });
});
