import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface ConnectProxy {
  /** `http://127.0.0.1:<port>`, for HERALD_EGRESS_PROXY. */
  url: string;
  /** Every CONNECT request received, in order: the `host:port` asked for. */
  connects: string[];
  /** Plain (non-CONNECT) requests: a forward proxy use we do not expect from Herald. */
  plainRequests: number;
  close(): Promise<void>;
}

/** Tests must never send traffic off this machine: the proxy tunnels to loopback only. */
const LOOPBACK = new Set(['127.0.0.1', '[::1]', '::1', 'localhost']);

/**
 * A minimal HTTP CONNECT proxy on 127.0.0.1 (the kind HERALD_EGRESS_PROXY points at, like
 * Squid or smokescreen): it counts CONNECTs and pipes bytes to the target. A CONNECT to
 * anything but loopback (or a name `hosts` maps to loopback) is refused with 403, so a test bug
 * cannot reach another host.
 */
export async function startConnectProxy(opts: { hosts?: Record<string, string> } = {}): Promise<ConnectProxy> {
  const connects: string[] = [];
  const state = { plainRequests: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    state.plainRequests++;
    res.writeHead(405).end('CONNECT only');
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    connects.push(target);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(target);
    // A name the test maps to a loopback address, as the proxy's own resolver would.
    if (m && opts.hosts?.[m[1]!]) m[1] = opts.hosts[m[1]!]!;
    if (!m || !LOOPBACK.has(m[1]!)) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''));
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    let established = false;
    upstream.on('error', () => {
      if (!established) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      else client.destroy();
    });
    upstream.on('connect', () => {
      established = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    get plainRequests() {
      return state.plainRequests;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
