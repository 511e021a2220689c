import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { heraldFastify } from '../src/adapters/fastify.js';
import type { HeraldEvent } from '../src/index.js';
import { delivery, envelope, post, SECRET } from './helpers.js';

const apps: FastifyInstance[] = [];
async function start(app: FastifyInstance): Promise<string> {
  apps.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

describe('heraldFastify', () => {
  it('verifies the raw body on its route; the rest of the app keeps the JSON parser', async () => {
    const seen: HeraldEvent[] = [];
    const app = Fastify();
    app.register(heraldFastify({ secret: SECRET, onEvent: (event) => void seen.push(event) }), { prefix: '/webhooks' });
    app.post('/api', async (request) => ({ parsed: request.body }));
    const url = await start(app);
    const body = '{ "event":"ping" ,"created_at":"t","delivery_id":"dlv_ws","data":{"n":1.0,"s":"\u2028"} }';
    const { headers } = await delivery(body, SECRET, 'dlv_ws');
    expect(await post(`${url}/webhooks`, body, headers)).toMatchObject({ status: 200, body: { ok: true } });
    const { 'content-type': _ct, ...noType } = headers;
    expect(await post(`${url}/webhooks`, body, noType)).toMatchObject({ status: 200 });
    expect(seen.map((e) => e.delivery_id)).toEqual(['dlv_ws', 'dlv_ws']);
    expect(await post(`${url}/api`, '{"a":1}', { 'content-type': 'application/json' })).toMatchObject({ status: 200, body: { parsed: { a: 1 } } });
  });

  it('sends what onEvent returns, or what it sends through reply', async () => {
    const app = Fastify();
    app.register(heraldFastify({ secret: SECRET, url: '/a', onEvent: (event) => ({ got: event.event }) }));
    app.register(heraldFastify({ secret: SECRET, url: '/b', onEvent: async (_event, _request, reply) => reply.code(202).send('later') }));
    const url = await start(app);
    const { body, headers } = await delivery();
    expect(await post(`${url}/a`, body, headers)).toMatchObject({ status: 200, body: { got: 'content.generated' } });
    expect(await post(`${url}/b`, body, headers)).toMatchObject({ status: 202, body: 'later' });
  });

  it('answers 401, 413 and 400 in the package error shape', async () => {
    const app = Fastify();
    let reached = 0;
    app.register(heraldFastify({ secret: SECRET, maxBodyBytes: 2048, onEvent: () => void reached++ }), { prefix: '/webhooks' });
    const url = await start(app);
    const { body, headers } = await delivery();
    expect(await post(`${url}/webhooks`, body + '\n', headers)).toMatchObject({ status: 401, body: { error: { code: 'signature_mismatch' } } });
    expect(await post(`${url}/webhooks`, body, { 'content-type': 'application/json' })).toMatchObject({ status: 401, body: { error: { code: 'missing_header' } } });
    const big = envelope({ data: { pad: 'x'.repeat(10_000) } });
    const signedBig = await delivery(big);
    expect(await post(`${url}/webhooks`, big, signedBig.headers)).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(await post(`${url}/webhooks`, big, signedBig.headers, { chunked: true })).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    const notJson = await delivery('not json');
    expect(await post(`${url}/webhooks`, 'not json', { ...notJson.headers, 'content-type': 'text/plain' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_body' } } });
    expect(reached).toBe(0);
  });
});
