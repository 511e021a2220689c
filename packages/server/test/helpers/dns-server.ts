import { createSocket } from 'node:dgram';

/** What the test DNS server knows of a name: its A and AAAA records, or `mute` (never answered). */
export interface DnsRecord {
  a?: string[];
  aaaa?: string[];
  mute?: boolean;
  /** Answer only after this long. */
  delayMs?: number;
}

export interface DnsServer {
  /** `127.0.0.1:PORT`, as HERALD_DNS_SERVERS and dns.Resolver#setServers take it. */
  server: string;
  /** Every question asked, as `name TYPE` (`ok.test A`). */
  queries: string[];
  close(): void;
}

/** 16 bytes of an IPv6 address, from its full or `::`-shortened form. */
function ipv6Bytes(address: string): Buffer {
  const [head, tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

/**
 * A DNS server over UDP on 127.0.0.1, a few dozen lines: it answers A and AAAA questions for the
 * names in `zone` and NXDOMAIN for every other name, never answers a `mute` name, and answers a name with `delayMs` that much later. Enough for
 * c-ares; names are matched case-insensitively, without a trailing dot.
 */
export function startDnsServer(zone: Record<string, DnsRecord>): Promise<DnsServer> {
  const sock = createSocket('udp4');
  const queries: string[] = [];
  sock.on('message', (q, from) => {
    let off = 12;
    const labels: string[] = [];
    while (q[off]! > 0) {
      labels.push(q.subarray(off + 1, off + 1 + q[off]!).toString('latin1'));
      off += q[off]! + 1;
    }
    const name = labels.join('.').toLowerCase();
    const qtype = q.readUInt16BE(off + 1);
    const question = q.subarray(12, off + 5);
    queries.push(`${name} ${qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : qtype}`);
    const rec = zone[name];
    if (rec?.mute) return;
    const rdata =
      qtype === 1 ? (rec?.a ?? []).map((a) => Buffer.from(a.split('.').map(Number))) : qtype === 28 ? (rec?.aaaa ?? []).map(ipv6Bytes) : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(q.readUInt16BE(0), 0);
    header.writeUInt16BE(0x8180 | (rec ? 0 : 3), 2); // a response, recursion available; NXDOMAIN for unknown names
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(rdata.length, 6);
    const records = rdata.map((d) => {
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name, as in the question
      rr.writeUInt16BE(qtype, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(0, 6); // TTL 0: nothing cached between questions
      rr.writeUInt16BE(d.length, 10);
      return Buffer.concat([rr, d]);
    });
    const answer = Buffer.concat([header, question, ...records]);
    if (rec?.delayMs) setTimeout(() => sock.send(answer, from.port, from.address), rec.delayMs);
    else sock.send(answer, from.port, from.address);
  });
  return new Promise((resolve) =>
    sock.bind(0, '127.0.0.1', () => resolve({ server: `127.0.0.1:${sock.address().port}`, queries, close: () => sock.close() })),
  );
}
