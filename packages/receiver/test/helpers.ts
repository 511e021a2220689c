import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signWebhook } from '../src/index.js';

export const SECRET = 'whsec_test-secret-for-receiver-tests';

export function envelope(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    event: 'content.generated',
    created_at: '2024-05-20T14:30:00.000Z',
    delivery_id: 'dlv_test_1',
    data: { title: 'Crème brûlée 🎉', big: 1 },
    ...overrides,
  });
}

/** A body and the headers Herald would send with it, signed now. */
export async function delivery(body = envelope(), secret = SECRET, id = 'dlv_test_1'): Promise<{ body: string; headers: Record<string, string> }> {
  const signed = await signWebhook({ secret, body, id });
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-herald-event': 'content.generated',
      'x-herald-delivery': id,
      'x-herald-attempt': '1',
      ...signed,
    },
  };
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface Reply {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * POSTs with node:http so the test controls framing: `chunked` sends no Content-Length.
 * A connection the server closes early still resolves if a response arrived.
 */
export function post(url: string, body: string | Uint8Array, headers: Record<string, string>, opts: { chunked?: boolean } = {}): Promise<Reply> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: opts.chunked ? headers : { ...headers, 'content-length': String(bytes.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
    });
    // EPIPE/ECONNRESET after the server answered early (413) and hung up is expected.
    req.on('error', (err) => reject(err));
    if (opts.chunked) {
      // Several writes without a length force Transfer-Encoding: chunked.
      for (let i = 0; i < bytes.length; i += 64 * 1024) req.write(bytes.subarray(i, i + 64 * 1024));
      req.end();
    } else {
      req.end(bytes);
    }
  });
}
