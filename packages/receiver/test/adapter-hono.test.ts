import type { Server } from 'node:http';
import { createAdaptorServer, getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { heraldHono, type HeraldHonoEnv } from '../src/adapters/hono.js';
import { isWebhookVerificationError, verifyRequest } from '../src/index.js';
import { close, delivery, envelope, listen, post, SECRET } from './helpers.js';

const servers: Server[] = [];
async function start(server: Server): Promise<string> {
  servers.push(server);
  return listen(server);
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

describe('heraldHono', () => {
  it('verifies behind @hono/node-server; later handlers get the event and can still read the body', async () => {
    const app = new Hono<HeraldHonoEnv>();
    app.post('/webhooks', heraldHono({ secret: SECRET }), async (c) => {
      const event = c.get('heraldEvent');
      const again = await c.req.json();
      return c.json({ id: event.delivery_id, again: again.delivery_id });
    });
    const url = await start(createAdaptorServer({ fetch: app.fetch }) as Server);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({ status: 200, body: { id: 'dlv_test_1', again: 'dlv_test_1' } });
    expect(await post(`${url}/webhooks`, body, headers, { chunked: true })).toMatchObject({ status: 200 });
  });

  it('works when an earlier middleware already read the body through c.req', async () => {
    const app = new Hono<HeraldHonoEnv>();
    app.use('/webhooks', async (c, next) => {
      c.header('x-length', String((await c.req.text()).length));
      await next();
    });
    app.post('/webhooks', heraldHono({ secret: SECRET }), (c) => c.text(c.get('heraldEvent').event));
    const url = await start(createAdaptorServer({ fetch: app.fetch }) as Server);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({ status: 200, body: 'content.generated' });
  });

  it('a body read earlier straight from c.req.raw is a 400 invalid_body, not a 500', async () => {
    const app = new Hono<HeraldHonoEnv>();
    app.use('/webhooks', async (c, next) => {
      await c.req.raw.text(); // bypasses c.req's cache: nothing left to verify
      await next();
    });
    app.post('/webhooks', heraldHono({ secret: SECRET }), (c) => c.text('reached'));
    const url = await start(createAdaptorServer({ fetch: app.fetch }) as Server);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({ status: 400, body: { error: { code: 'invalid_body' } } });
  });

  it('mounted with app.use, a bodiless GET is refused with 401, not a crash', async () => {
    const app = new Hono<HeraldHonoEnv>();
    app.use('/webhooks', heraldHono({ secret: SECRET }));
    app.get('/webhooks', (c) => c.text('reached'));
    const url = await start(createAdaptorServer({ fetch: app.fetch }) as Server);
    const res = await fetch(`${url}/webhooks`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'missing_header' } });
  });

  it('answers 401 and 413 in the package error shape', async () => {
    const app = new Hono<HeraldHonoEnv>();
    app.post('/webhooks', heraldHono({ secret: SECRET, maxBodyBytes: 2048 }), (c) => c.text('reached'));
    const url = await start(createAdaptorServer({ fetch: app.fetch }) as Server);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body.replace('dlv_test_1', 'dlv_test_2'), headers)).toMatchObject({ status: 401, body: { error: { code: 'signature_mismatch' } } });
    const big = envelope({ data: { pad: 'x'.repeat(10_000) } });
    const signedBig = await delivery(big);
    expect(await post(`${url}/webhooks`, big, signedBig.headers)).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(await post(`${url}/webhooks`, big, signedBig.headers, { chunked: true })).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
  });
});

describe('verifyRequest (Fetch Request: Deno, Bun, workers)', () => {
  it('verifies a real Request behind a node:http bridge', async () => {
    const handler = async (request: Request): Promise<Response> => {
      try {
        const event = await verifyRequest(request, { secret: SECRET, maxBodyBytes: 4096 });
        return Response.json({ id: event.delivery_id });
      } catch (err) {
        if (isWebhookVerificationError(err)) return Response.json({ code: err.code }, { status: err.status });
        throw err;
      }
    };
    const url = await start(createServer(getRequestListener(handler)));
    const { body, headers } = await delivery();
    expect(await post(url, body, headers)).toMatchObject({ status: 200, body: { id: 'dlv_test_1' } });
    expect(await post(url, body, headers, { chunked: true })).toMatchObject({ status: 200, body: { id: 'dlv_test_1' } });
    expect(await post(url, body.slice(0, -1), headers)).toMatchObject({ status: 401, body: { code: 'signature_mismatch' } });
    const big = envelope({ data: { pad: 'x'.repeat(10_000) } });
    expect(await post(url, big, (await delivery(big)).headers, { chunked: true })).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
  });

  it('refuses a Request whose body was already read', async () => {
    const { body, headers } = await delivery();
    const request = new Request('http://127.0.0.1/', { method: 'POST', body, headers });
    await request.text();
    await expect(verifyRequest(request, { secret: SECRET })).rejects.toMatchObject({ code: 'invalid_body' });
  });
});
