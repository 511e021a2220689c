import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';

export interface Received {
  at: number;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** Names and values as sent, in order (`headers` cannot hold a header named `__proto__`). */
  rawHeaders: string[];
  body: Buffer;
}

export type Reply = (req: Received, res: ServerResponse, n: number) => unknown;

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** TCP connections accepted (for tests that must prove a target was never contacted). */
  connections: number;
  setReply(r: Reply): void;
  close(): Promise<void>;
}

/** A real node:http receiver on 127.0.0.1 that records raw bodies and can misbehave on purpose. */
export async function startReceiver(reply: Reply = (_r, res) => res.end('ok')): Promise<Receiver> {
  let current = reply;
  const received: Received[] = [];
  const state = { connections: 0 };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r: Received = { at: Date.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
    received.push(r);
    try {
      await current(r, res, received.length);
    } catch {
      res.destroy();
    }
  });
  server.on('connection', () => state.connections++);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    get connections() {
      return state.connections;
    },
    setReply: (r) => (current = r),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A port with nothing listening on it: bind, note the port, close. */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
