import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeHandler, readRawBody, verifyNodeRequest } from '../src/adapters/node.js';
import type { HeraldEvent } from '../src/index.js';
import { close, delivery, envelope, listen, post, SECRET } from './helpers.js';

const servers: Server[] = [];
async function start(listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  return listen(server);
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

describe('createNodeHandler', () => {
  it('verifies a real request, hands over the event and answers 200', async () => {
    const seen: HeraldEvent[] = [];
    const url = await start(createNodeHandler({ secret: SECRET }, (event) => void seen.push(event)));
    const { body, headers } = await delivery();
    const res = await post(url, body, headers);
    expect(res).toMatchObject({ status: 200, body: { ok: true } });
    expect(seen).toEqual([JSON.parse(body)]);
  });

  it('lets onEvent answer itself', async () => {
    const url = await start(createNodeHandler({ secret: SECRET }, (_event, _req, res) => res.writeHead(202).end('queued')));
    const { body, headers } = await delivery();
    expect(await post(url, body, headers)).toMatchObject({ status: 202, body: 'queued' });
  });

  it('answers 401 with the error code for a tampered body, a wrong secret or no signature', async () => {
    const url = await start(createNodeHandler({ secret: SECRET }, () => {
      throw new Error('must not be called');
    }));
    const { body, headers } = await delivery();
    expect(await post(url, body.replace('brûlée', 'brulee'), headers)).toMatchObject({ status: 401, body: { error: { code: 'signature_mismatch' } } });
    const wrong = await delivery(envelope(), 'whsec_wrong');
    expect(await post(url, wrong.body, wrong.headers)).toMatchObject({ status: 401, body: { error: { code: 'signature_mismatch' } } });
    expect(await post(url, body, { 'content-type': 'application/json' })).toMatchObject({ status: 401, body: { error: { code: 'missing_header' } } });
  });

  it('answers 413 for a declared or a chunked body over the cap, and closes the connection', async () => {
    let called = false;
    const url = await start(createNodeHandler({ secret: SECRET, maxBodyBytes: 1024 }, () => void (called = true)));
    const big = envelope({ data: { pad: 'x'.repeat(4096) } });
    const { headers } = await delivery(big);
    const declared = await post(url, big, headers);
    expect(declared).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(declared.headers.connection).toBe('close');
    const chunked = await post(url, big, headers, { chunked: true });
    expect(chunked).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(called).toBe(false);
  });

  it('cuts off a chunked flood past the default cap without buffering it', async () => {
    const url = await start(createNodeHandler({ secret: SECRET }, () => undefined));
    const flood = envelope({ data: { pad: 'x'.repeat(20 * 1024 * 1024) } });
    const { headers } = await delivery(flood);
    const res = await post(url, flood, headers, { chunked: true }).catch((err: NodeJS.ErrnoException) => err.code);
    // The server answers 413 and hangs up mid-upload; the client sees the 413 or, if still writing, a reset.
    expect([413, 'EPIPE', 'ECONNRESET']).toContain(typeof res === 'object' ? res.status : res);
  });

  it('reads the default cap of 6 MiB: a 5 MiB delivery passes', async () => {
    const url = await start(createNodeHandler({ secret: SECRET }, () => undefined));
    const big = envelope({ data: { pad: 'x'.repeat(5 * 1024 * 1024) } });
    const { headers } = await delivery(big);
    expect((await post(url, big, headers, { chunked: true })).status).toBe(200);
  });

  it('answers 500 when onEvent throws (so Herald retries) and reports the error', async () => {
    const errors: unknown[] = [];
    const url = await start(
      createNodeHandler({ secret: SECRET, onError: (err) => errors.push(err) }, async () => {
        throw new Error('database unavailable');
      }),
    );
    const { body, headers } = await delivery();
    const res = await post(url, body, headers);
    expect(res).toMatchObject({ status: 500, body: { error: { code: 'internal_error' } } });
    expect(JSON.stringify(res.body)).not.toContain('database');
    expect(errors).toHaveLength(1);
  });
});

describe('verifyNodeRequest and readRawBody', () => {
  it('work inside a hand-written listener', async () => {
    const url = await start(async (req, res) => {
      try {
        const event = await verifyNodeRequest(req, { secret: SECRET });
        res.end(event.delivery_id);
      } catch (err) {
        res.writeHead((err as { status?: number }).status ?? 500).end((err as { code?: string }).code);
      }
    });
    const { body, headers } = await delivery();
    expect(await post(url, body, headers)).toMatchObject({ status: 200, body: 'dlv_test_1' });
    expect(await post(url, body + ' ', headers)).toMatchObject({ status: 401, body: 'signature_mismatch' });
  });

  it('takes a body a framework already buffered, and refuses one a JSON parser consumed', async () => {
    const url = await start(async (req, res) => {
      const raw = Buffer.concat(await req.toArray());
      const mode = req.headers['x-mode'];
      const fake = req as IncomingMessage & { body?: unknown; _body?: boolean };
      if (mode === 'buffer') fake.body = raw;
      if (mode === 'parsed') Object.assign(fake, { body: JSON.parse(raw.toString()), _body: true });
      try {
        res.end(Buffer.from(await readRawBody(req)).toString() === raw.toString() ? 'same' : 'different');
      } catch (err) {
        res.end((err as { code: string }).code);
      }
    });
    const body = envelope();
    expect((await post(url, body, { 'x-mode': 'buffer' })).body).toBe('same');
    expect((await post(url, body, { 'x-mode': 'parsed' })).body).toBe('invalid_body');
    // Stream already ended and nothing buffered: refused at once instead of hanging.
    expect((await post(url, body, { 'x-mode': 'none' })).body).toBe('invalid_body');
  });
});
