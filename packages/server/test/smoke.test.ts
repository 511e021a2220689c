import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';

describe('publish → deliver (smoke)', () => {
  let h: TestHerald;
  let rx: Receiver;
  beforeAll(async () => {
    h = await startHerald({ HERALD_DEV: 'true' });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await h.close();
    await rx.close();
  });

  it('delivers a signed event to a subscribed webhook', async () => {
    const acc = await createAccount(h);
    const wh = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: rx.url + '/hook', events: ['content.generated'], secret: 'a-secret-of-16-chars' });
    expect(wh.status).toBe(201);
    const pub = await h.api('POST', `/v1/accounts/${acc}/events`, undefined, { raw: '{"type":"content.generated","data": {"n": 1.0, "big": 12345678901234567890}}' });
    expect(pub.status).toBe(202);
    expect(pub.body.deliveries).toHaveLength(1);
    await waitFor(() => rx.received.length === 1);
    const r = rx.received[0]!;
    const body = r.body.toString();
    const deliveryId = pub.body.deliveries[0].id;
    expect(body).toBe(`{"event":"content.generated","created_at":"${pub.body.created_at}","delivery_id":"${deliveryId}","data":{"n": 1.0, "big": 12345678901234567890}}`);
    expect(r.headers['x-hub-signature-256']).toBe('sha256=' + createHmac('sha256', 'a-secret-of-16-chars').update(r.body).digest('hex'));
    const d = await waitFor(async () => {
      const x = await h.api('GET', `/v1/accounts/${acc}/deliveries/${deliveryId}`);
      return x.body.status === 'succeeded' ? x : null;
    });
    expect(d.body.attempts).toHaveLength(1);
    expect(d.body.request.body).toBe(body);
  });
});
