import { createServer as createHttpsServer } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { lateness } from './helpers/lateness.js';
import { closedPort, startReceiver, type Receiver } from './helpers/receiver.js';

/**
 * SPEC §5 against receivers that misbehave on purpose: the retry schedule and its jitter,
 * exhaustion, timeouts, refused and reset connections, redirects that must not be followed,
 * Retry-After, and 410 Gone. Delays are scaled down (base 200 ms) so each test takes ~1 s.
 */
const BASE_MS = 200;
const JITTER = 0.2;
// Time between an attempt ending and the next arriving, beyond the scheduled delay: the write
// of the outcome, the claim, the request. Upper bounds add the time the process lost to a
// loaded machine meanwhile (lateness()), so a stall of the shared machine is not a late retry.
const SLACK_MS = 200;

interface Ctx {
  h: TestHerald;
  acc: string;
}

async function setup(env: Record<string, string>): Promise<Ctx> {
  const h = await startHerald({ HERALD_DEV: 'true', HERALD_RETRY_BASE_MS: String(BASE_MS), HERALD_RETRY_FACTOR: '2', ...env });
  return { h, acc: await createAccount(h) };
}

let eventTypes = 0;
async function hookAndPublish(c: Ctx, url: string): Promise<{ webhookId: string; deliveryId: string; type: string }> {
  // An event type of its own, so no earlier test's webhook gets this event: its URL may name a
  // port the OS has since given to this test's receiver (closedPort frees its port).
  const type = `retries.case${++eventTypes}`;
  expect((await c.h.api('POST', '/v1/event-types', { name: type, description: 'one test case' })).status).toBe(201);
  const w = await c.h.api('POST', `/v1/accounts/${c.acc}/webhooks`, { url, events: [type] });
  expect(w.status).toBe(201);
  const p = await c.h.api('POST', `/v1/accounts/${c.acc}/events`, { type, data: { n: 1 } });
  expect(p.status).toBe(202);
  expect(p.body.deliveries).toHaveLength(1); // this test's webhook only
  const d = (p.body.deliveries as Array<{ id: string; webhook_id: string }>).find((x) => x.webhook_id === w.body.id)!;
  return { webhookId: w.body.id, deliveryId: d.id, type };
}

async function finished(c: Ctx, id: string, timeoutMs = 10_000): Promise<any> {
  return waitFor(async () => {
    const d = await c.h.api('GET', `/v1/accounts/${c.acc}/deliveries/${id}`);
    return d.body.status !== 'pending' ? d.body : null;
  }, timeoutMs);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


// A self-signed certificate for 127.0.0.1 that nothing trusts (test fixture, valid to 2126).
const UNTRUSTED_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGZ8f23j5EIFN5Pfz
qFoCNPNZ+5ww7vtDi7eeh6mR+x6hRANCAASzldMrY/4E2JB3arJ2pdRsbR9NEZAG
KsYRUCCNxsb/reaSMPzSqW9Ide5znALUN0XBRSANVt717pXR1oOaJ0l5
-----END PRIVATE KEY-----`;
const UNTRUSTED_CERT = `-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUf/yjAdF8C41Opag+w+HtzOQeWE0wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVaGVyYWxkLXRlc3QtdW50cnVzdGVkMCAXDTI2MTEyNzA2NDM1
MFoYDzIxMjYxMTAzMDY0MzUwWjAgMR4wHAYDVQQDDBVoZXJhbGQtdGVzdC11bnRy
dXN0ZWQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASzldMrY/4E2JB3arJ2pdRs
bR9NEZAGKsYRUCCNxsb/reaSMPzSqW9Ide5znALUN0XBRSANVt717pXR1oOaJ0l5
o28wbTAdBgNVHQ4EFgQUyfoAE+hzX9y38Cokfk68/aL0XC4wHwYDVR0jBBgwFoAU
yfoAE+hzX9y38Cokfk68/aL0XC4wDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzAR
hwR/AAABgglsb2NhbGhvc3QwCgYIKoZIzj0EAwIDSAAwRQIhAO9UMdmZfDVk8ept
QVnWYnP4ugn1n4K5GH5owc4j6kg+AiBE7muhDqQ2wbRYTP6qva1H3HnUj0JomEZ7
311eCC8Y8w==
-----END CERTIFICATE-----`;

describe('retries (max 4 attempts, base 200 ms, factor 2)', () => {
  let c: Ctx;
  beforeAll(async () => {
    c = await setup({ HERALD_MAX_ATTEMPTS: '4', HERALD_DELIVERY_TIMEOUT_MS: '500' });
  });
  afterAll(() => c.h.close());

  it('500, 500, 200 → three attempts, spaced by base then base×2 within the jitter', async () => {
    const ends: number[] = [];
    const lost = lateness();
    // Each failure is answered 150 ms late: the delay runs from the answer, not from the request.
    const rx = await startReceiver(async (_r, res, n) => {
      if (n <= 2) await sleep(150);
      res.statusCode = n <= 2 ? 500 : 200;
      res.end(n <= 2 ? 'boom' : 'ok', () => ends.push(Date.now()));
    });
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await finished(c, deliveryId);
      expect(d.status).toBe('succeeded');
      expect(d.attempts.map((a: any) => [a.attempt, a.status_code, a.success])).toEqual([[1, 500, false], [2, 500, false], [3, 200, true]]);
      expect(rx.received).toHaveLength(3);
      // Attempt n+1 arrives no sooner than the jittered delay after attempt n was answered.
      const gap1 = rx.received[1]!.at - ends[0]!;
      const gap2 = rx.received[2]!.at - ends[1]!;
      const slack = SLACK_MS + lost.stop();
      expect(gap1).toBeGreaterThanOrEqual(BASE_MS * (1 - JITTER) - 5);
      expect(gap1).toBeLessThanOrEqual(BASE_MS * (1 + JITTER) + slack);
      expect(gap2).toBeGreaterThanOrEqual(2 * BASE_MS * (1 - JITTER) - 5);
      expect(gap2).toBeLessThanOrEqual(2 * BASE_MS * (1 + JITTER) + slack);
    } finally {
      lost.stop();
      await rx.close();
    }
  });

  it('any 2xx is a successful attempt; a 400 is a failed one, said as it is', async () => {
    const rx = await startReceiver((_r, res, n) => res.writeHead(n === 1 ? 400 : 204).end());
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await finished(c, deliveryId);
      expect(d.status).toBe('succeeded');
      expect(d.attempts.map((a: any) => [a.status_code, a.success, a.error_kind, a.error])).toEqual([[400, false, 'http_status', 'HTTP 400'], [204, true, null, null]]);
    } finally {
      await rx.close();
    }
  });

  it('gives up after exactly HERALD_MAX_ATTEMPTS requests and then sends nothing more', async () => {
    const rx = await startReceiver((_r, res) => res.writeHead(503).end('down'));
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await finished(c, deliveryId);
      expect(d.status).toBe('failed');
      expect(d.attempts).toHaveLength(4);
      expect(d.next_attempt_at).toBeNull();
      expect(d.response_status).toBe(503);
      // The whole schedule would be 200+400+800 ms; wait well past another step of it.
      await sleep(2000);
      expect(rx.received).toHaveLength(4);
      expect(rx.received.map((r) => r.headers['x-herald-attempt'])).toEqual(['1', '2', '3', '4']);
    } finally {
      await rx.close();
    }
  });

  it('times out a receiver that never answers at HERALD_DELIVERY_TIMEOUT_MS', async () => {
    let closed = 0;
    const rx = await startReceiver((_r, res) => {
      res.on('close', () => closed++); // Herald hung up: the slot is free again
    });
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await waitFor(async () => {
        const x = await c.h.api('GET', `/v1/accounts/${c.acc}/deliveries/${deliveryId}`);
        return x.body.attempts.length >= 1 ? x.body : null;
      });
      const a = d.attempts[0];
      expect(a.error_kind).toBe('timeout');
      expect(a.status_code).toBeNull();
      expect(a.error).toMatch(/timed out after 500 ms/);
      expect(a.duration_ms).toBeGreaterThanOrEqual(499); // never cut short (undici's coarse timers once were)
      expect(a.duration_ms).toBeLessThan(1500);
      await waitFor(() => closed >= 1, 2000);
    } finally {
      await rx.close();
    }
  });

  it('times out a receiver that sends headers and then drips its body, at the same deadline', async () => {
    const rx = await startReceiver((_r, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const t = setInterval(() => res.write('.'), 100);
      res.on('close', () => clearInterval(t));
    });
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await waitFor(async () => {
        const x = await c.h.api('GET', `/v1/accounts/${c.acc}/deliveries/${deliveryId}`);
        return x.body.attempts.length >= 1 ? x.body : null;
      });
      // The whole attempt is bounded, not only the wait for headers: a 200 status line does
      // not make a body that never ends a success.
      expect(d.attempts[0]).toMatchObject({ error_kind: 'timeout', success: false });
      expect(d.attempts[0].duration_ms).toBeGreaterThanOrEqual(499);
      expect(d.attempts[0].duration_ms).toBeLessThan(1500);
    } finally {
      await rx.close();
    }
  });

  it('records a refused connection as error_kind refused and retries it', async () => {
    const port = await closedPort();
    const { deliveryId } = await hookAndPublish(c, `http://127.0.0.1:${port}/hook`);
    const d = await finished(c, deliveryId);
    expect(d.status).toBe('failed');
    expect(d.attempts).toHaveLength(4);
    for (const a of d.attempts) {
      expect(a.error_kind).toBe('refused');
      expect(a.error).toBe('connection refused');
      // The log never names the address it tried.
      expect(a.error).not.toContain('127.0.0.1');
    }
  });

  it('never follows a redirect: the Location target sees zero connections', async () => {
    const target = await startReceiver();
    const codes = [301, 302, 303, 307, 308];
    const rx = await startReceiver((_r, res, n) => res.writeHead(codes[(n - 1) % codes.length]!, { location: target.url + '/stolen' }).end());
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await finished(c, deliveryId);
      expect(d.status).toBe('failed');
      expect(d.attempts.map((a: any) => a.status_code)).toEqual([301, 302, 303, 307]);
      for (const a of d.attempts) {
        expect(a.error_kind).toBe('http_status');
        expect(a.error).toMatch(/redirects are not followed/);
        expect(a.response_headers.location).toBe(target.url + '/stolen');
      }
      await sleep(300);
      expect(target.connections).toBe(0);
      expect(target.received).toHaveLength(0);
    } finally {
      await rx.close();
      await target.close();
    }
  });

  it('verifies TLS certificates: an untrusted one is error_kind tls and nothing reaches the handler', async () => {
    let handled = 0;
    const server = createHttpsServer({ key: UNTRUSTED_KEY, cert: UNTRUSTED_CERT }, (_req, res) => {
      handled++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const plain = await startReceiver();
    try {
      const port = (server.address() as { port: number }).port;
      const bad = await hookAndPublish(c, `https://127.0.0.1:${port}/hook`);
      // https:// to a server that speaks plain HTTP: the handshake fails too.
      const wrong = await hookAndPublish(c, plain.url.replace('http:', 'https:'));
      const d = await finished(c, bad.deliveryId);
      expect(d.attempts[0].error_kind).toBe('tls');
      expect(d.attempts[0].error).toMatch(/^TLS error: the certificate is self-signed/);
      expect(handled).toBe(0);
      const w = await finished(c, wrong.deliveryId);
      expect(w.attempts[0].error_kind).toBe('tls');
      expect(plain.received).toHaveLength(0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await plain.close();
    }
  });

  it('records a connection reset before and in the middle of a response as error_kind reset', async () => {
    const rx = await startReceiver((r, res, n) => {
      if (n === 1) {
        res.socket?.destroy(); // before any byte of the response
        return;
      }
      // Promise 100 bytes, send 10, then cut the connection.
      res.writeHead(200, { 'content-length': '100' });
      res.write('0123456789', () => setTimeout(() => res.socket?.destroy(), 20));
    });
    try {
      const { deliveryId } = await hookAndPublish(c, rx.url);
      const d = await waitFor(async () => {
        const x = await c.h.api('GET', `/v1/accounts/${c.acc}/deliveries/${deliveryId}`);
        return x.body.attempts.length >= 2 ? x.body : null;
      });
      expect(d.attempts[0].error_kind).toBe('reset');
      expect(d.attempts[1].error_kind).toBe('reset');
      expect(d.attempts[1].success).toBe(false);
    } finally {
      await rx.close();
    }
  });
});

describe('Retry-After (base 500 ms: scheduled 400–600 ms, cap 1000 ms)', () => {
  let c: Ctx;
  beforeAll(async () => {
    c = await setup({ HERALD_RETRY_BASE_MS: '500', HERALD_MAX_ATTEMPTS: '2' });
  });
  afterAll(() => c.h.close());

  /** The gap between attempt 1's answer and attempt 2, and the slack its upper bound gets. */
  async function gapAfter(status: number, retryAfter: string | null): Promise<{ gap: number; slack: number }> {
    const ends: number[] = [];
    const lost = lateness();
    const rx = await startReceiver((_r, res, n) => {
      if (n === 1) res.writeHead(status, retryAfter === null ? {} : { 'retry-after': retryAfter });
      res.end('', () => ends.push(Date.now()));
    });
    try {
      await hookAndPublish(c, rx.url);
      await waitFor(() => rx.received.length >= 2, 5000);
      return { gap: rx.received[1]!.at - ends[0]!, slack: SLACK_MS + lost.stop() };
    } finally {
      lost.stop();
      await rx.close();
    }
  }

  it('429 with Retry-After: 30 waits twice the scheduled delay, not 30 s', async () => {
    const { gap, slack } = await gapAfter(429, '30');
    expect(gap).toBeGreaterThanOrEqual(1000 - 5);
    expect(gap).toBeLessThanOrEqual(1000 + slack);
  });

  it('503 with an HTTP-date Retry-After is honoured within [scheduled, 2 × scheduled]', async () => {
    const { gap, slack } = await gapAfter(503, new Date(Date.now() + 60_000).toUTCString());
    expect(gap).toBeGreaterThanOrEqual(1000 - 5);
    expect(gap).toBeLessThanOrEqual(1000 + slack);
  });

  it('Retry-After on other statuses (500) is ignored: the schedule applies', async () => {
    const { gap, slack } = await gapAfter(500, '30');
    expect(gap).toBeGreaterThanOrEqual(400 - 5);
    expect(gap).toBeLessThanOrEqual(600 + slack);
  });
});

describe('410 Gone', () => {
  let c: Ctx;
  beforeAll(async () => {
    c = await setup({ HERALD_MAX_ATTEMPTS: '5' });
  });
  afterAll(() => c.h.close());

  it('disables the webhook with the reason shown, and later events create no deliveries for it', async () => {
    const rx = await startReceiver((_r, res) => res.writeHead(410).end('gone'));
    try {
      const { webhookId, deliveryId, type } = await hookAndPublish(c, rx.url);
      const d = await finished(c, deliveryId);
      expect(d.status).toBe('failed');
      expect(d.attempts).toHaveLength(1);
      expect(d.attempts[0].status_code).toBe(410);

      const w = await c.h.api('GET', `/v1/accounts/${c.acc}/webhooks/${webhookId}`);
      expect(w.body.enabled).toBe(false);
      expect(w.body.disabled_reason).toMatch(/410/);

      const p = await c.h.api('POST', `/v1/accounts/${c.acc}/events`, { type, data: {} });
      expect(p.status).toBe(202);
      expect(p.body.deliveries.filter((x: any) => x.webhook_id === webhookId)).toHaveLength(0);
      await sleep(500);
      expect(rx.received).toHaveLength(1);
    } finally {
      await rx.close();
    }
  });

  it('sends nothing more for an account moved to free: its queued retries fail, saying why', async () => {
    const acc = await createAccount(c.h, 'pro');
    const own: Ctx = { h: c.h, acc };
    const rx = await startReceiver((_r, res) => res.writeHead(500).end('not yet'));
    try {
      const { deliveryId } = await hookAndPublish(own, rx.url);
      await waitFor(async () => rx.received.length >= 1);
      expect((await c.h.api('PATCH', `/v1/accounts/${acc}`, { plan: 'free' })).status).toBe(200);
      const row = () => c.h.herald.ctx.store.getDeliveryRow(acc, deliveryId);
      const failed = await waitFor(async () => {
        const d = await row();
        return d?.status === 'failed' ? d : null;
      });
      expect(failed.lastError).toBe('account plan does not include webhooks');
      // The retries were due within 200 + 400 + 800 ms: none of them went out.
      await sleep(1500);
      expect(rx.received.length).toBeLessThanOrEqual(2); // one retry may have been in flight at the PATCH
      expect((await row())!.attempts).toBe(rx.received.length);
    } finally {
      await rx.close();
    }
  });
});

describe('jitter in production settings', () => {
  it('spreads the retries of deliveries that failed together over ±20 % of the delay', async () => {
    // The default 60 s base: every delivery stays queued for its retry, to be read.
    const h = await startHerald({ HERALD_DEV: 'true' });
    const rx = await startReceiver((_r, res) => res.writeHead(500).end());
    try {
      const acc = await createAccount(h);
      await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } })).body.deliveries[0].id);
      const delays = await waitFor(async () => {
        const ds = await Promise.all(ids.map(async (id) => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`)).body));
        // The detail reads the delivery, then its attempts, each as committed when read: the
        // attempt may show before the delivery's new state does, so wait for both.
        if (ds.some((d) => d.attempts.length !== 1 || !d.last_attempt_at)) return null;
        // From the attempt's end to its retry.
        return ds.map((d) => Date.parse(d.next_attempt_at) - (Date.parse(d.attempts[0].started_at) + d.attempts[0].duration_ms));
      });
      for (const x of delays) {
        expect(x).toBeGreaterThanOrEqual(48_000 - 50);
        expect(x).toBeLessThanOrEqual(72_000 + 50);
      }
      // Eight draws from 24 s of jitter: without jitter they would all be 60 s, give or take a few ms.
      expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(1000);
    } finally {
      await h.close();
      await rx.close();
    }
  });
});

describe('410 Gone, one request at a time', () => {
  it('sends none of the webhook\'s queued deliveries once it answered 410', async () => {
    const h = await startHerald({ HERALD_DEV: 'true', HERALD_ENDPOINT_CONCURRENCY: '1' });
    const rx = await startReceiver(async (_r, res) => {
      await sleep(100);
      res.writeHead(410).end('gone');
    });
    try {
      const acc = await createAccount(h);
      await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url, events: ['*'] });
      // Published while the first request waits for its answer: the others queue behind it.
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } })).body.deliveries[0].id);
      const ds = await Promise.all(ids.map((id) => waitFor(async () => {
        const d = (await h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`)).body;
        return d.status !== 'pending' ? d : null;
      })));
      expect(ds.map((d) => d.status)).toEqual(['failed', 'failed', 'failed']);
      expect(rx.received).toHaveLength(1);
      expect(ds.filter((d) => d.attempts.length === 0).map((d) => d.last_error)).toEqual(['webhook disabled', 'webhook disabled']);
    } finally {
      await h.close();
      await rx.close();
    }
  });
});
