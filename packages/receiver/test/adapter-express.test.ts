import { createServer, type Server } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { heraldExpress, type HeraldExpressRequest } from '../src/adapters/express.js';
import { signWebhook } from '../src/index.js';
import { close, delivery, envelope, listen, post, SECRET } from './helpers.js';

const servers: Server[] = [];
async function start(app: express.Express): Promise<string> {
  const server = createServer(app);
  servers.push(server);
  return listen(server);
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

function echo(req: express.Request, res: express.Response) {
  const r = req as unknown as HeraldExpressRequest;
  res.json({ delivery_id: req.body.delivery_id, same: r.heraldEvent === req.body, rawBytes: r.rawBody.length });
}

describe('heraldExpress', () => {
  it('verifies on a route, sets req.body to the event, and coexists with express.json elsewhere', async () => {
    const app = express();
    app.post('/webhooks', heraldExpress({ secret: SECRET }), echo);
    app.use(express.json());
    app.post('/api', (req, res) => res.json({ parsed: req.body }));
    const url = await start(app);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({
      status: 200,
      body: { delivery_id: 'dlv_test_1', same: true, rawBytes: Buffer.byteLength(body) },
    });
    expect(await post(`${url}/api`, '{"a":1}', { 'content-type': 'application/json' })).toMatchObject({ body: { parsed: { a: 1 } } });
  });

  it('mounted with app.use before a global express.json(), which then leaves the body alone', async () => {
    const app = express();
    app.use('/webhooks', heraldExpress({ secret: SECRET }));
    app.use(express.json());
    app.post('/webhooks', echo);
    const url = await start(app);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({ status: 200, body: { delivery_id: 'dlv_test_1', same: true } });
  });

  it('works after express.raw()', async () => {
    const app = express();
    app.post('/webhooks', express.raw({ type: 'application/json' }), heraldExpress({ secret: SECRET }), echo);
    const url = await start(app);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({ status: 200, body: { delivery_id: 'dlv_test_1' } });
  });

  it('explains the mistake when express.json() ran first, instead of failing the signature', async () => {
    const app = express();
    app.use(express.json());
    app.post('/webhooks', heraldExpress({ secret: SECRET }), echo);
    const url = await start(app);
    const { body, headers } = await delivery();
    const res = await post(`${url}/webhooks`, body, headers);
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'invalid_body' } } });
    expect(res.body.error.message).toMatch(/express\.json\(\)/);
  });

  it('answers 401 and 413 itself and never reaches the handler', async () => {
    const app = express();
    let reached = 0;
    app.post('/webhooks', heraldExpress({ secret: SECRET, maxBodyBytes: 2048 }), (_req, res) => {
      reached++;
      res.end();
    });
    const url = await start(app);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body.replace('1', '2'), headers)).toMatchObject({ status: 401, body: { error: { code: 'signature_mismatch' } } });
    const stale = await signWebhook({ secret: SECRET, body, id: 'dlv_test_1', timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect(await post(`${url}/webhooks`, body, { ...headers, ...stale })).toMatchObject({ status: 401, body: { error: { code: 'timestamp_too_old' } } });
    const big = envelope({ data: { pad: 'x'.repeat(10_000) } });
    const signedBig = await delivery(big);
    expect(await post(`${url}/webhooks`, big, signedBig.headers, { chunked: true })).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(reached).toBe(0);
  });
});
