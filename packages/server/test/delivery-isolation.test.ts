import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';
import { lateness } from './helpers/lateness.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';

/**
 * SPEC §5: "A slow or dead endpoint never delays deliveries to other endpoints, and first
 * attempts never wait behind a backlog of retries."
 */

/** A receiver whose chosen requests never get an answer; counts how many are open at once. */
async function startStaller(stall: (req: IncomingMessage) => boolean) {
  const state = { open: 0, maxOpen: 0, stalled: 0, answered: 0, answeredAt: [] as number[] };
  const server = createServer((req, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      if (!stall(req)) {
        state.answered++;
        state.answeredAt.push(Date.now());
        res.writeHead(req.headers['x-herald-attempt'] === '1' && req.url === '/fail-first' ? 500 : 200).end();
        return;
      }
      state.open++;
      state.stalled++;
      state.maxOpen = Math.max(state.maxOpen, state.open);
      res.on('close', () => state.open--); // Herald gave up on it (its timeout)
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    state,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function publishMany(h: TestHerald, acc: string, type: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, j) => h.api('POST', `/v1/accounts/${acc}/events`, { type, data: { i: i + j } })),
    );
    for (const p of batch) ids.push(...p.body.deliveries.map((d: { id: string }) => d.id));
  }
  return ids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('isolation between endpoints and lanes', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  it('a stalled endpoint with a large backlog neither delays a healthy one nor exceeds its concurrency', async () => {
    const h = await startHerald({ HERALD_DEV: 'true', HERALD_ENDPOINT_CONCURRENCY: '4', HERALD_DELIVERY_TIMEOUT_MS: '3000', HERALD_MAX_ATTEMPTS: '1' });
    cleanup.push(() => h.close());
    const x = await startStaller(() => true);
    cleanup.push(() => x.close());
    const y: Receiver = await startReceiver();
    cleanup.push(() => y.close());
    const acc = await createAccount(h);
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: x.url, events: ['analysis.completed'] });
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: y.url, events: ['content.generated'] });

    await publishMany(h, acc, 'analysis.completed', 150);
    await waitFor(() => x.state.open === 4);

    // Served one at a time behind X's backlog, Y's 40 would wait 150 × 3 s / 4 ≈ 2 min.
    const t0 = Date.now();
    const lost = lateness();
    const ids = await publishMany(h, acc, 'content.generated', 40);
    await waitFor(() => y.received.length === 40, 5000);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(2000 + lost.stop());
    await waitFor(async () => {
      const l = await h.api('GET', `/v1/accounts/${acc}/deliveries?event_type=content.generated&status=succeeded&limit=100`);
      return l.body.data.length === ids.length;
    }, 3000);

    // Through one timeout cycle of X: its next requests replace the timed-out ones, never more than 4.
    await waitFor(() => x.state.stalled >= 8, 6000);
    expect(x.state.maxOpen).toBe(4);
  }, 30_000);

  it('a stalled webhook does not delay another webhook on the same origin', async () => {
    const h = await startHerald({ HERALD_DEV: 'true', HERALD_ENDPOINT_CONCURRENCY: '4', HERALD_DELIVERY_TIMEOUT_MS: '3000', HERALD_MAX_ATTEMPTS: '1' });
    cleanup.push(() => h.close());
    // One server, two webhooks: /stall never answers, /ok answers at once (think two accounts
    // both pointing at the same SaaS host).
    const s = await startStaller((req) => req.url === '/stall');
    cleanup.push(() => s.close());
    const acc = await createAccount(h);
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: s.url + '/stall', events: ['analysis.completed'] });
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: s.url + '/ok', events: ['content.generated'] });
    await publishMany(h, acc, 'analysis.completed', 50);
    await waitFor(() => s.state.open === 4);
    const t0 = Date.now();
    const lost = lateness();
    await publishMany(h, acc, 'content.generated', 20);
    await waitFor(() => s.state.answered === 20, 5000);
    expect(Math.max(...s.state.answeredAt) - t0).toBeLessThan(2000 + lost.stop());
    expect(s.state.maxOpen).toBe(4);
  });

  it('first attempts do not wait behind a backlog of due retries', async () => {
    // 8 slots; retries may take at most 6 of them.
    const h = await startHerald({
      HERALD_DEV: 'true', HERALD_WORKER_CONCURRENCY: '8', HERALD_ENDPOINT_CONCURRENCY: '100', HERALD_DELIVERY_TIMEOUT_MS: '3000',
      HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_FACTOR: '1', HERALD_MAX_ATTEMPTS: '3',
    });
    cleanup.push(() => h.close());
    // /fail-first: attempt 1 gets a quick 500, every retry stalls until the timeout.
    const r = await startStaller((req) => req.headers['x-herald-attempt'] !== '1');
    cleanup.push(() => r.close());
    const fresh = await startReceiver();
    cleanup.push(() => fresh.close());
    const acc = await createAccount(h);
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: r.url + '/fail-first', events: ['analysis.completed'] });
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: fresh.url, events: ['content.generated'] });

    await publishMany(h, acc, 'analysis.completed', 60);
    // 60 retries are due; the retry lane holds what it may.
    await waitFor(async () => r.state.open === 6 && (await h.herald.ctx.store.queueStats()).pendingRetry === 60, 5000);

    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const lost = lateness();
      await publishMany(h, acc, 'content.generated', 1);
      await waitFor(() => fresh.received.length === i + 1, 5000);
      // Far below the 3 s a retry slot would take to free up (plus what a loaded machine took).
      expect(fresh.received[i]!.at - t0).toBeLessThan(1000 + lost.stop());
    }
    await sleep(100);
    expect(r.state.maxOpen).toBe(6);
  });
});
