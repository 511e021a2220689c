import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../src/core/version.js';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';

/**
 * SPEC §4 on the wire: what a real receiver on 127.0.0.1 gets, byte for byte, and what the
 * attempt log keeps. Signatures are checked independently of Herald's signer: node:crypto
 * for X-Hub-Signature-256, the `standardwebhooks` npm package for webhook-signature.
 */
const SECRET = 'whsec_wire-test-secret-0123456789';
const API_KEY = 'Bearer sk_live a=b; c="d" , e';

// Multi-byte characters, a raw U+2028 and an escaped one, 1.0, a number beyond 2^64, and
// whitespace no serializer would write: any re-serialisation would change these bytes.
const DATA = '{ "title":"Crème brûlée — 日本語 🎉",\t"sep":"a\u2028b", "esc":"\\u2028 \\"q\\" \\\\",\r\n "ratio" : 1.0, "big":12345678901234567890, "neg":-0.0, "list":[ 1 ,2\n,3 ] , "empty":{} }';

describe('what a receiver gets (SPEC §4)', () => {
  let h: TestHerald;
  let rx: Receiver;
  let acc: string;

  beforeAll(async () => {
    h = await startHerald({ HERALD_DEV: 'true', HERALD_RETRY_BASE_MS: '100', HERALD_RETRY_FACTOR: '1', HERALD_POLL_INTERVAL_MS: '20' });
    rx = await startReceiver();
    acc = await createAccount(h);
  });
  afterAll(async () => {
    await h.close();
    await rx.close();
  });

  async function webhook(url: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['content.generated'], ...extra });
    expect(r.status).toBe(201);
    return r.body.id as string;
  }

  async function publish(data: string): Promise<{ id: string; created_at: string; deliveries: Array<{ id: string; webhook_id: string }> }> {
    const r = await h.api('POST', `/v1/accounts/${acc}/events`, undefined, { raw: `{"type":"content.generated","data":${data}}` });
    expect(r.status).toBe(202);
    return r.body;
  }

  async function settled(deliveryId: string): Promise<any> {
    return waitFor(async () => {
      const d = await h.api('GET', `/v1/accounts/${acc}/deliveries/${deliveryId}`);
      return d.body.status !== 'pending' ? d.body : null;
    });
  }

  it('sends the envelope in key order with data byte for byte, and both signatures verify', async () => {
    const path = '/signed?x=1';
    const wh = await webhook(rx.url + path, { secret: SECRET, headers: { 'X-Api-Key': API_KEY, 'X-Tenant': 'acme' } });
    const before = rx.received.length;
    const pub = await publish(DATA);
    const deliveryId = pub.deliveries.find((d) => d.webhook_id === wh)!.id;
    await waitFor(() => rx.received.length > before);
    const r = rx.received.at(-1)!;

    expect(r.method).toBe('POST');
    expect(r.url).toBe(path);
    const expected = `{"event":"content.generated","created_at":"${pub.created_at}","delivery_id":"${deliveryId}","data":${DATA}}`;
    expect(r.body.equals(Buffer.from(expected, 'utf8'))).toBe(true);
    // created_at is the event's time, RFC 3339 UTC.
    expect(pub.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['user-agent']).toBe(`Herald-Webhooks/${VERSION}`);
    expect(r.headers['accept-encoding']).toBe('identity');
    expect(r.headers['x-herald-event']).toBe('content.generated');
    expect(r.headers['x-herald-delivery']).toBe(deliveryId);
    expect(r.headers['x-herald-attempt']).toBe('1');
    expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(r.headers['x-api-key']).toBe(API_KEY);
    expect(r.headers['x-tenant']).toBe('acme');

    // GitHub's scheme, recomputed here over the raw bytes.
    expect(r.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', SECRET).update(r.body).digest('hex'));
    // Standard Webhooks: id is the delivery id, timestamp is now, and the library accepts it.
    expect(r.headers['webhook-id']).toBe(deliveryId);
    const ts = Number(r.headers['webhook-timestamp']);
    expect(Math.abs(ts - r.at / 1000)).toBeLessThan(5);
    const verifier = new Webhook(Buffer.from(SECRET, 'utf8'), { format: 'raw' });
    expect(() => verifier.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
    // …and rejects a body that differs by one byte, so the check above can fail.
    const tampered = Buffer.from(r.body);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 2) ^ 1, tampered.length - 2);
    expect(() => verifier.verify(tampered, r.headers as Record<string, string>)).toThrow();

    const d = await settled(deliveryId);
    expect(d.status).toBe('succeeded');
    expect(d.request.body).toBe(expected);
  });

  it('after a rotation signs with both secrets until the old one expires, then with the new one alone', async () => {
    const OLD = 'whsec_wire-rotation-old-secret';
    const NEW = 'whsec_wire-rotation-new-secret';
    const path = '/rotated';
    const wh = await webhook(rx.url + path, { secret: OLD });
    const rot = await h.api('POST', `/v1/accounts/${acc}/webhooks/${wh}/secret/rotate`, { secret: NEW, previous_secret_valid_for: 2 });
    expect(rot.status).toBe(200);
    const until = Date.parse(rot.body.previous_secret_expires_at);
    const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
    const got = async () => {
      const before = rx.received.length;
      await publish('{"n":1}');
      return waitFor(() => rx.received.slice(before).find((x) => x.url === path));
    };
    const verifies = (secret: string, r: { body: Buffer; headers: Record<string, unknown> }): boolean => {
      try {
        new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' }).verify(r.body, r.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    };
    // The first delivery comes 1.2 s into the 2 s window, so the worker's cached copy of the
    // webhook (2 s) is still fresh when the window closes: only the per-attempt check can drop
    // the old secret then.
    await sleepUntil(until - 800);
    const during = await got();
    expect(during.at).toBeLessThan(until);
    const entries = String(during.headers['webhook-signature']).split(' ');
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.startsWith('v1,'))).toBe(true);
    // The new secret's entry first; a receiver holding either secret accepts the request.
    const expectedNew = createHmac('sha256', NEW).update(`${during.headers['webhook-id']}.${during.headers['webhook-timestamp']}.`).update(during.body).digest('base64');
    expect(entries[0]).toBe(`v1,${expectedNew}`);
    expect(verifies(NEW, during)).toBe(true);
    expect(verifies(OLD, during)).toBe(true);
    expect(verifies('whsec_neither-of-the-two-secrets', during)).toBe(false);
    // X-Hub-Signature-256 has room for one: the new secret's.
    expect(during.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', NEW).update(during.body).digest('hex'));

    // Test Connection for the saved webhook is signed the same way.
    const pingsBefore = rx.received.length;
    expect((await h.api('POST', `/v1/accounts/${acc}/webhooks/${wh}/test`)).body.ok).toBe(true);
    const ping = rx.received.slice(pingsBefore).find((x) => x.url === path)!;
    expect(String(ping.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifies(OLD, ping)).toBe(true);

    // Past previous_secret_valid_for, the old secret no longer verifies anything.
    await sleepUntil(until + 50);
    const after = await got();
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verifies(NEW, after)).toBe(true);
    expect(verifies(OLD, after)).toBe(false);
    expect((await h.api('GET', `/v1/accounts/${acc}/webhooks/${wh}`)).body.previous_secret_expires_at).toBeNull();
  });

  it('sends no signature headers when the webhook has no secret', async () => {
    await webhook(rx.url + '/unsigned');
    const before = rx.received.length;
    await publish('{"n":1}');
    const r = await waitFor(() => rx.received.slice(before).find((x) => x.url === '/unsigned'));
    expect(r.headers['x-hub-signature-256']).toBeUndefined();
    expect(r.headers['webhook-signature']).toBeUndefined();
    // The id and timestamp still let receivers deduplicate and reject stale replays.
    expect(r.headers['webhook-id']).toMatch(/^dlv_/);
    expect(r.headers['webhook-timestamp']).toMatch(/^\d+$/);
  });

  it('sends the same bytes on every attempt and on redelivery, with the attempt number counting on', async () => {
    const flaky = await startReceiver((_r, res, n) => {
      res.statusCode = n <= 2 ? 500 : 200;
      res.end(n <= 2 ? 'not yet' : 'ok');
    });
    try {
      const wh = await webhook(flaky.url + '/flaky', { secret: SECRET });
      const pub = await publish(DATA);
      const deliveryId = pub.deliveries.find((x) => x.webhook_id === wh)!.id;
      await waitFor(() => flaky.received.length >= 3);
      const d = await settled(deliveryId);
      expect(d.status).toBe('succeeded');
      expect(d.attempts).toHaveLength(3);

      const again = await h.api('POST', `/v1/accounts/${acc}/deliveries/${deliveryId}/redeliver`);
      expect(again.status).toBe(202);
      await waitFor(() => flaky.received.length >= 4);
      const d2 = await waitFor(async () => {
        const x = await h.api('GET', `/v1/accounts/${acc}/deliveries/${deliveryId}`);
        return x.body.attempts.length === 4 && x.body.status === 'succeeded' ? x.body : null;
      });

      const reqs = flaky.received.filter((x) => x.headers['x-herald-delivery'] === deliveryId);
      expect(reqs.map((x) => x.headers['x-herald-attempt'])).toEqual(['1', '2', '3', '4']);
      expect(d2.attempts.map((a: { attempt: number }) => a.attempt)).toEqual([1, 2, 3, 4]);
      for (const x of reqs) {
        expect(x.body.equals(reqs[0]!.body)).toBe(true);
        expect(x.headers['webhook-id']).toBe(deliveryId);
        expect(x.headers['x-hub-signature-256']).toBe(reqs[0]!.headers['x-hub-signature-256']);
        expect(x.body.toString('utf8')).toBe(d2.request.body);
      }
    } finally {
      await flaky.close();
    }
  });

  it('keeps signature and custom header values out of the attempt log', async () => {
    const wh = await webhook(rx.url + '/redact', { secret: SECRET, headers: { 'X-Api-Key': API_KEY } });
    const pub = await publish('{"n":2}');
    const d = await settled(pub.deliveries.find((x) => x.webhook_id === wh)!.id);
    const logged = d.attempts[0].request_headers as Record<string, string>;
    expect(logged['x-hub-signature-256']).toBe('[redacted]');
    expect(logged['webhook-signature']).toBe('[redacted]');
    expect(logged['X-Api-Key'] ?? logged['x-api-key']).toBe('[redacted]');
    // The names stay, so users can see which headers went out.
    expect(logged['x-herald-attempt']).toBe('1');
    const all = JSON.stringify(d);
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('sk_live');
    const sent = rx.received.find((x) => x.url === '/redact')!;
    expect(all).not.toContain(String(sent.headers['x-hub-signature-256']).slice(7));
  });

  it('sends a custom header named __proto__, which the rules allow, and redacts it in the log', async () => {
    const wh = await webhook(rx.url + '/proto', { headers: JSON.parse('{"__proto__":"kept","X-Other":"too"}') });
    const pub = await publish('{"n":3}');
    const d = await settled(pub.deliveries.find((x) => x.webhook_id === wh)!.id);
    const sent = rx.received.find((x) => x.url === '/proto')!;
    const raw = sent.rawHeaders;
    expect(raw.findIndex((v, i) => i % 2 === 0 && v === '__proto__' && raw[i + 1] === 'kept')).toBeGreaterThanOrEqual(0);
    expect(sent.headers['x-other']).toBe('too');
    expect(Object.entries(d.attempts[0].request_headers)).toContainEqual(['__proto__', '[redacted]']);
  });
});
