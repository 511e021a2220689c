import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { toBytes } from '../src/bytes.js';
import { importHmacKey } from '../src/hmac.js';
import { verifyHubSignature } from '../src/hub-signature.js';
import { verifyStandardSignature } from '../src/standard-signature.js';
import { signWebhook } from '../src/index.js';

interface Vector {
  name: string;
  secret: string;
  id: string;
  timestamp: number;
  body: string;
  hub_signature: string;
  webhook_signature: string;
}

const vectors: Vector[] = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));
const FIELDS = ['name', 'secret', 'id', 'timestamp', 'body', 'hub_signature', 'webhook_signature'];

afterEach(() => vi.useRealTimers());

describe('vectors.json', () => {
  it('keeps its documented shape', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(5);
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
    for (const v of vectors) expect(Object.keys(v).sort()).toEqual([...FIELDS].sort());
  });

  it("includes GitHub's published vector", () => {
    const gh = vectors.find((v) => v.secret === "It's a Secret to Everybody" && v.body === 'Hello, World!');
    expect(gh?.hub_signature).toBe('sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17');
  });

  it('includes the raw-body traps', () => {
    const bodies = vectors.map((v) => v.body).join('');
    for (const trap of ['\u2028', '1.0', '12345678901234567890', '\t', '\r\n', '日本語']) expect(bodies).toContain(trap);
  });

  it.each(vectors)('$name: node:crypto reproduces both signatures', (v) => {
    expect('sha256=' + createHmac('sha256', v.secret).update(v.body).digest('hex')).toBe(v.hub_signature);
    expect('v1,' + createHmac('sha256', v.secret).update(`${v.id}.${v.timestamp}.${v.body}`).digest('base64')).toBe(v.webhook_signature);
  });
});

describe.each(vectors)('vector $name', (v) => {
  it('signWebhook produces the expected headers', async () => {
    const h = await signWebhook({ secret: v.secret, body: v.body, id: v.id, timestamp: v.timestamp });
    expect(h['x-hub-signature-256']).toBe(v.hub_signature);
    expect(h['webhook-signature']).toBe(v.webhook_signature);
    expect(h['webhook-timestamp']).toBe(String(v.timestamp));
  });

  it('the verifiers accept the expected signatures, from a string, a Buffer and an ArrayBuffer', async () => {
    const keys = [await importHmacKey(v.secret)];
    const headers = { 'webhook-id': v.id, 'webhook-timestamp': String(v.timestamp), 'webhook-signature': v.webhook_signature };
    const buffer = Buffer.from(v.body);
    const arrayBuffer = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
    for (const body of [toBytes(v.body), toBytes(buffer), toBytes(arrayBuffer)]) {
      await expect(verifyHubSignature(keys, body, v.hub_signature)).resolves.toBeUndefined();
      await expect(verifyStandardSignature(keys, body, headers, 300, v.timestamp * 1000)).resolves.toBeUndefined();
    }
  });

  it('standardwebhooks accepts our signature and signs the same', () => {
    // The library keys a string secret by charCodeAt, so hand it the UTF-8 bytes (see VECTORS.md).
    const wh = new Webhook(new TextEncoder().encode(v.secret), { format: 'raw' });
    expect(wh.sign(v.id, new Date(v.timestamp * 1000), v.body)).toBe(v.webhook_signature);
    vi.useFakeTimers({ now: v.timestamp * 1000, toFake: ['Date'] });
    const headers = { 'webhook-id': v.id, 'webhook-timestamp': String(v.timestamp), 'webhook-signature': v.webhook_signature };
    expect(() => wh.verify(v.body, headers, { jsonParse: false })).not.toThrow();
    // With a plain string secret the library agrees only while the secret is ASCII.
    const asString = new Webhook(v.secret, { format: 'raw' }).sign(v.id, new Date(v.timestamp * 1000), v.body);
    expect(asString === v.webhook_signature).toBe(/^[\x00-\x7f]*$/.test(v.secret));
  });
});
