import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, startHerald, waitFor, type TestHerald } from './helpers/herald.js';

/**
 * The whole path a customer relies on: Herald signs and delivers, and the example receiver
 * (built on @herald/receiver) verifies, answers 200 and processes each delivery_id once.
 * Needs packages/receiver built (`npm test` builds every workspace first).
 */
const serverScript = fileURLToPath(new URL('../../../examples/receiver/server.mjs', import.meta.url));
const SECRET = 'whsec_' + Buffer.from('e2e secret shared by Herald and the receiver').toString('base64');

describe('Herald → example receiver, verified end to end', () => {
  let h: TestHerald;
  let child: ChildProcess;
  const lines: any[] = [];
  let port = 0;

  beforeAll(async () => {
    h = await startHerald({ HERALD_DEV: 'true', HERALD_RETRY_BASE_MS: '100', HERALD_RETRY_FACTOR: '1' });
    child = spawn(process.execPath, [serverScript], { env: { ...process.env, HERALD_WEBHOOK_SECRET: SECRET, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l)));
    port = (await waitFor(() => lines.find((l) => l.listening)?.listening as number | undefined)) as number;
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await h?.close();
  });

  it('every delivery verifies, is processed once, and data arrives unchanged', async () => {
    const acc = await createAccount(h);
    const wh = await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `http://127.0.0.1:${port}/webhooks`, events: ['*'], secret: SECRET });
    expect(wh.status).toBe(201);
    const bodies = [
      '{"type":"content.generated","data":{"title":"Grüße \\u2028 ☃","n":1.0}}',
      '{"type":"analysis.completed","data":[1,2,{"deep":{"er":true}}]}',
      '{"type":"publishing.failed","data":{"reason":"quota"}}',
    ];
    const ids: string[] = [];
    for (const raw of bodies) {
      const r = await h.api('POST', `/v1/accounts/${acc}/events`, undefined, { raw });
      expect(r.status).toBe(202);
      ids.push(r.body.deliveries[0].id);
    }
    await waitFor(() => lines.filter((l) => l.processed).length === 3);
    expect(lines.filter((l) => l.rejected)).toEqual([]);
    const processed = lines.filter((l) => l.processed).map((l) => l.processed);
    expect(processed.map((p) => p.delivery_id).sort()).toEqual([...ids].sort());
    const first = processed.find((p) => p.delivery_id === ids[0]);
    expect(first.event).toBe('content.generated');
    expect(first.data).toEqual({ title: 'Grüße \u2028 ☃', n: 1 });
    // Every one of them: the event type and data as published.
    bodies.forEach((raw, i) => {
      const sent = JSON.parse(raw);
      const got = processed.find((p) => p.delivery_id === ids[i]);
      expect(got.event).toBe(sent.type);
      expect(got.data).toEqual(sent.data);
    });

    // A redelivery carries the same delivery_id: the receiver recognises it and does not process it again.
    await waitFor(async () => (await h.api('GET', `/v1/accounts/${acc}/deliveries/${ids[0]}`)).body.status === 'succeeded');
    const again = await h.api('POST', `/v1/accounts/${acc}/deliveries/${ids[0]}/redeliver`);
    expect(again.status).toBe(202);
    await waitFor(() => lines.some((l) => l.duplicate === ids[0]));
    expect(lines.filter((l) => l.processed).length).toBe(3);
  });

  it('a webhook with the wrong secret is refused by the receiver (401) and retried by Herald', async () => {
    const acc = await createAccount(h);
    await h.api('POST', `/v1/accounts/${acc}/webhooks`, { url: `http://127.0.0.1:${port}/webhooks`, events: ['*'], secret: 'whsec_not-the-receivers-secret' });
    const r = await h.api('POST', `/v1/accounts/${acc}/events`, { type: 'content.generated', data: {} });
    const id = r.body.deliveries[0].id;
    const d = await waitFor(async () => {
      const x = await h.api('GET', `/v1/accounts/${acc}/deliveries/${id}`);
      return x.body.attempts.length >= 2 ? x.body : null;
    });
    expect(d.attempts[0].status_code).toBe(401);
    expect(d.status).not.toBe('succeeded');
    expect(lines.some((l) => l.rejected?.code === 'signature_mismatch')).toBe(true);
  });
});
