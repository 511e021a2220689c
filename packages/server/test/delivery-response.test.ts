import type { ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { startReceiver } from './helpers/receiver.js';

/**
 * SPEC §5: Herald keeps the first 64 KB of a response body and reads no more. A receiver
 * that answers with 100 MB must cost Herald 64 KiB, not 100 MB, and must see its connection
 * closed long before it could finish.
 */
const CAP = 64 * 1024;
const HUNDRED_MB = 100 * 1024 * 1024;
const MB = 1024 * 1024;

/**
 * Stream `total` bytes of 'x' in `chunk`-sized writes, honouring backpressure, pausing
 * `pauseMs` between writes; returns how much was written before the client went away.
 */
function streamBytes(res: ServerResponse, total: number, chunk: number, pauseMs: number): Promise<{ written: number; closedEarly: boolean }> {
  const block = Buffer.alloc(chunk, 'x');
  return new Promise((resolve) => {
    let written = 0;
    let closed = false;
    res.on('close', () => {
      closed = true;
      resolve({ written, closedEarly: written < total });
    });
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(total) });
    const next = (): void => {
      if (closed) return;
      if (written >= total) {
        res.end();
        return;
      }
      written += chunk;
      const ok = res.write(block);
      const go = () => (pauseMs ? setTimeout(next, pauseMs) : setImmediate(next));
      if (ok) go();
      else res.once('drain', go);
    };
    next();
  });
}

describe('response capture', () => {
  let h: TestHerald;
  beforeAll(async () => {
    // A 3 s timeout: reading the slow 100 MB to the end would take minutes, so a Herald that
    // did not stop at the cap would time out instead of succeeding.
    h = await startHerald({ HERALD_DEV: 'true', HERALD_DELIVERY_TIMEOUT_MS: '3000', HERALD_MAX_ATTEMPTS: '1' });
  });
  afterAll(() => h.close());

  /** A webhook on an account of its own, so no later test's events reach it. */
  async function deliverTo(url: string, events = 1): Promise<Array<{ acc: string; id: string }>> {
    const acc = await createAccount(h);
    const w = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url, events: ['*'] });
    const ids: Array<{ acc: string; id: string }> = [];
    for (let i = 0; i < events; i++) {
      const p = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: { i } });
      ids.push({ acc, id: p.body.deliveries.find((d: any) => d.webhook_id === w.body.id).id });
    }
    return ids;
  }

  async function finished({ acc, id }: { acc: string; id: string }): Promise<any> {
    return waitFor(async () => {
      const d = await h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`);
      return d.body.status !== 'pending' ? d.body : null;
    }, 15_000);
  }

  it('keeps 64 KiB of a slow 100 MB answer, flags it truncated, and hangs up early', async () => {
    const streams: Array<Promise<{ written: number; closedEarly: boolean }>> = [];
    // 16 KiB every 5 ms: the whole body would take over 30 s.
    const rx = await startReceiver((_r, res) => void streams.push(streamBytes(res, HUNDRED_MB, 16 * 1024, 5)));
    try {
      const [id] = await deliverTo(rx.url);
      const d = await finished(id!);
      expect(d.status).toBe('succeeded');
      const a = d.attempts[0];
      expect(a.status_code).toBe(200);
      expect(a.response_truncated).toBe(true);
      expect(a.response_body).toBe('x'.repeat(CAP));
      expect(a.duration_ms).toBeLessThan(2000);
      const s = await streams[0]!;
      expect(s.closedEarly).toBe(true);
      expect(s.written).toBeLessThan(4 * MB); // the cap plus what socket buffers held
    } finally {
      await rx.close();
    }
  });

  it('keeps memory flat while 20 receivers each push 100 MB as fast as they can', async () => {
    const streams: Array<Promise<{ written: number; closedEarly: boolean }>> = [];
    const rx = await startReceiver((_r, res) => void streams.push(streamBytes(res, HUNDRED_MB, 64 * 1024, 0)));
    try {
      // Warm up once so lazily loaded code and pools are not counted as growth.
      const [warm] = await deliverTo(rx.url);
      await finished(warm!);
      globalThis.gc?.();
      const before = process.memoryUsage();
      const ids = await deliverTo(rx.url, 20);
      const results = await Promise.all(ids.map(finished));
      const after = process.memoryUsage();
      for (const d of results) {
        expect(d.status).toBe('succeeded');
        expect(d.attempts[0].response_truncated).toBe(true);
        expect(d.attempts[0].response_body.length).toBe(CAP);
      }
      const all = await Promise.all(streams);
      expect(all.every((s) => s.closedEarly)).toBe(true);
      // 2 GB was offered in total; buffering even one answer whole would add 100 MB.
      expect((after.rss - before.rss) / MB).toBeLessThan(40);
      expect((after.heapUsed - before.heapUsed) / MB).toBeLessThan(40);
      expect(all.reduce((n, s) => n + s.written, 0)).toBeLessThan(21 * 8 * MB);
    } finally {
      await rx.close();
    }
  });

  it('asks for an uncompressed answer, and stores a gzip bomb sent anyway as at most 64 KiB without inflating it', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * MB, 'a')); // ~50 KB on the wire, 50 MB inflated
    const rx = await startReceiver((_r, res) => res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(bomb.length) }).end(bomb));
    try {
      const [id] = await deliverTo(rx.url);
      const d = await finished(id!);
      expect(rx.received[0]!.headers['accept-encoding']).toBe('identity');
      expect(d.status).toBe('succeeded');
      const body = d.attempts[0].response_body as string;
      expect(body.length).toBeGreaterThan(0);
      expect(body.length).toBeLessThanOrEqual(CAP);
      expect(body).not.toContain('aaaaaaaa'); // not decompressed
    } finally {
      await rx.close();
    }
  });

  it('keeps a small answer whole and not truncated, for any status', async () => {
    const rx = await startReceiver((_r, res) => res.writeHead(422, { 'x-reason': 'bad' }).end('{"error":"nope"}'));
    try {
      const [id] = await deliverTo(rx.url);
      const d = await finished(id!);
      const a = d.attempts[0];
      expect(a.status_code).toBe(422);
      expect(a.response_body).toBe('{"error":"nope"}');
      expect(a.response_truncated).toBe(false);
      expect(a.response_headers['x-reason']).toBe('bad');
    } finally {
      await rx.close();
    }
  });

  it('keeps an answer of exactly 64 KiB whole and not truncated; one byte more is truncated', async () => {
    const rx = await startReceiver((_r, res, n) => res.writeHead(500).end('y'.repeat(n === 1 ? CAP : CAP + 1)));
    try {
      for (const [len, truncated] of [[CAP, false], [CAP, true]] as const) {
        const [id] = await deliverTo(rx.url);
        const a = (await finished(id!)).attempts[0];
        expect(a.response_body).toHaveLength(len);
        expect(a.response_truncated).toBe(truncated);
      }
    } finally {
      await rx.close();
    }
  });

  it('shows an answer in the charset it declares, and never a character the cap cut in two', async () => {
    const rx = await startReceiver((r, res) => {
      if (r.url === '/latin1') return res.writeHead(500, { 'content-type': 'text/plain; charset=iso-8859-1' }).end(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
      // 'é' (two bytes in UTF-8) straddles the 64 KiB cap.
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('a'.repeat(CAP - 1) + 'é' + 'z'.repeat(100));
    });
    try {
      const [latin1] = await deliverTo(rx.url + '/latin1');
      expect((await finished(latin1!)).attempts[0].response_body).toBe('café');
      const [cut] = await deliverTo(rx.url + '/cut');
      const a = (await finished(cut!)).attempts[0];
      expect(a.response_truncated).toBe(true);
      expect(a.response_body).toBe('a'.repeat(CAP - 1));
    } finally {
      await rx.close();
    }
  });
});
