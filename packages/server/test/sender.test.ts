import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { classify, Sender } from '../src/delivery/sender.js';
import { lateness } from './helpers/lateness.js';

/**
 * The Sender alone, against real sockets on 127.0.0.1: one deadline covers connecting, the
 * answer's headers and its body, and the attempt ends when it passes, whatever stage it is in.
 */
const TIMEOUT_MS = 300;
/**
 * Timers and the event loop; far below undici's own backstop (+1 s). Upper bounds also add the
 * time the process lost to a loaded machine meanwhile (lateness()).
 */
const SLACK_MS = 250;

const policy = { allowPrivate: true, allowedCidrs: [] };
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function listen<T extends Server | HttpServer>(server: T): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => sockets.push(s));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, sockets })));
}

function sender(): Sender {
  const s = new Sender({ timeoutMs: TIMEOUT_MS, policy });
  closers.push(() => s.close());
  return s;
}

const body = Buffer.from('{"event":"x"}');

describe('Sender deadline', () => {
  it('ends an attempt that is still connecting (a TLS handshake never answered) at the deadline', async () => {
    // Accepts the TCP connection and never says a word: undici is still setting up TLS, so
    // the request was never handed to a socket.
    const { port, sockets } = await listen(createServer(() => {}));
    const lost = lateness();
    const res = await sender().send(`https://127.0.0.1:${port}/hook`, { 'content-type': 'application/json' }, body);
    expect(res.errorKind).toBe('timeout');
    expect(res.errorMessage).toBe(`timed out after ${TIMEOUT_MS} ms`);
    expect(res.statusCode).toBeNull();
    expect(sockets.length).toBe(1); // it did connect, and got no further
    expect(res.durationMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(res.durationMs).toBeLessThan(TIMEOUT_MS + SLACK_MS + lost.stop());
  });

  it('ends an attempt whose answer never comes at the deadline, and closes its connection then', async () => {
    let closedAt = 0;
    const { port } = await listen(createHttpServer((req) => req.socket.on('close', () => (closedAt = performance.now()))));
    const started = performance.now();
    const lost = lateness();
    const res = await sender().send(`http://127.0.0.1:${port}/hook`, { 'content-type': 'application/json' }, body);
    expect(res.errorKind).toBe('timeout');
    expect(res.durationMs).toBeLessThan(TIMEOUT_MS + SLACK_MS + lost.ms());
    // The connection is dropped with the attempt, not left to undici's later backstop.
    const deadline = performance.now() + 1000;
    while (!closedAt && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(closedAt).toBeGreaterThan(0);
    expect(closedAt - started).toBeLessThan(TIMEOUT_MS + SLACK_MS + lost.stop());
  });

  it('ends an attempt whose body stops halfway at the deadline, without a status it never completed', async () => {
    const { port } = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('half'); // and never the rest
      }),
    );
    const lost = lateness();
    const res = await sender().send(`http://127.0.0.1:${port}/hook`, { 'content-type': 'application/json' }, body);
    expect(res.errorKind).toBe('timeout');
    expect(res.statusCode).toBeNull();
    expect(res.durationMs).toBeLessThan(TIMEOUT_MS + SLACK_MS + lost.stop());
  });
});

describe('what a failed connection is called', () => {
  // Errors as undici and Node raise them, a cause chain deep where a proxy tunnel wraps them.
  const err = (code: string, cause?: object) => Object.assign(new Error(`${code} happened`), { code, cause });
  it.each([
    ['a kernel-level connect timeout', err('ETIMEDOUT'), 'timeout', 'timed out after 300 ms'],
    ["undici's connect timeout", err('UND_ERR_CONNECT_TIMEOUT'), 'timeout', 'timed out after 300 ms'],
    ['a name that does not exist', err('ENOTFOUND'), 'dns', 'DNS lookup failed: the host name did not resolve'],
    ['a DNS server that fails or does not answer', err('EAI_AGAIN'), 'dns', 'DNS lookup failed: the host name did not resolve'],
    ['a refused connection', err('ECONNREFUSED'), 'refused', 'connection refused'],
    ['an expired certificate', err('CERT_HAS_EXPIRED'), 'tls', 'TLS error: the certificate has expired (CERT_HAS_EXPIRED)'],
    ['a certificate not yet valid', err('CERT_NOT_YET_VALID'), 'tls', 'TLS error: the certificate is not yet valid (CERT_NOT_YET_VALID)'],
    ['an expired certificate behind the proxy', err('UND_ERR_PRX_TLS', err('CERT_HAS_EXPIRED')), 'tls', 'TLS error: the certificate has expired (CERT_HAS_EXPIRED)'],
    ['a certificate for another name', err('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls', 'TLS error: the certificate does not match the host name (ERR_TLS_CERT_ALTNAME_INVALID)'],
    ['a reset', err('ECONNRESET'), 'reset', 'connection reset by the receiver'],
    ['a malformed response', err('HPE_INVALID_CONSTANT'), 'protocol', 'the receiver sent an invalid HTTP response'],
  ])('%s', (_what, e, kind, message) => {
    expect(classify(e, TIMEOUT_MS)).toMatchObject({ kind, message });
  });
});
