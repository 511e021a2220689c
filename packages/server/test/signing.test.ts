import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { buildBody, deliveryHeaders, envelopeBytes, hubSignature, redactHeaders, standardSignature } from '../src/core/signing.js';
import { USER_AGENT } from '../src/core/version.js';

const VECTORS = new URL('../../receiver/test/vectors.json', import.meta.url);

interface Vector {
  name: string;
  secret: string;
  id: string;
  timestamp: number;
  body: string;
  hub_signature: string;
  webhook_signature: string;
}

describe('signing (SPEC §4)', () => {
  it("reproduces GitHub's published X-Hub-Signature-256 example", () => {
    expect(hubSignature("It's a Secret to Everybody", Buffer.from('Hello, World!'))).toBe(
      'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    );
  });

  it('produces webhook-signature values the standardwebhooks package accepts, and only for the signed bytes', () => {
    const secret = 'whsec_interop-secret';
    const id = 'dlv_interop';
    const ts = Math.floor(Date.now() / 1000);
    const body = Buffer.from('{"event":"ping","data":{"é":"🎉\u2028"}}');
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': standardSignature(secret, id, ts, body) };
    const wh = new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
    expect(() => wh.verify(body, headers)).not.toThrow();
    // The library's own signature agrees with ours.
    expect(wh.sign(id, new Date(ts * 1000), body)).toBe(headers['webhook-signature']);
    expect(() => wh.verify(body, { ...headers, 'webhook-id': 'dlv_other' })).toThrow();
    expect(() => wh.verify(body, { ...headers, 'webhook-timestamp': String(ts + 1) })).toThrow();
  });

  it('keys both signatures with the UTF-8 bytes of a non-ASCII secret', () => {
    const secret = 'clé-🔑';
    const body = Buffer.from('{}');
    expect(hubSignature(secret, body)).toBe('sha256=' + createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('hex'));
    expect(standardSignature(secret, 'i', 1, body)).toBe('v1,' + createHmac('sha256', Buffer.from(secret, 'utf8')).update('i.1.{}').digest('base64'));
  });

  it('matches every vector in packages/receiver/test/vectors.json', () => {
    const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as Vector[];
    expect(vectors.length).toBeGreaterThan(0);
    for (const v of vectors) {
      const body = Buffer.from(v.body, 'utf8');
      expect(hubSignature(v.secret, body), v.name).toBe(v.hub_signature);
      expect(standardSignature(v.secret, v.id, v.timestamp, body), v.name).toBe(v.webhook_signature);
    }
  });

  it('builds the envelope in key order around the raw data text', () => {
    const data = '{ "b":1.0 ,"a":12345678901234567890,\t"s":"\u2028" }';
    const body = buildBody({ eventType: 'content.generated', createdAt: Date.UTC(2024, 4, 20, 14, 30), deliveryId: 'dlv_X', data });
    expect(body.toString('utf8')).toBe(`{"event":"content.generated","created_at":"2024-05-20T14:30:00.000Z","delivery_id":"dlv_X","data":${data}}`);
    // The publish-time size check counts the envelope exactly.
    expect(envelopeBytes('content.generated', 5) + Buffer.byteLength(data)).toBe(body.length);
  });

  it('sets the headers of §4, and a secret adds both signatures over the same bytes', () => {
    const body = Buffer.from('{"x":1}');
    const h = deliveryHeaders({ eventType: 'content.generated', deliveryId: 'dlv_1', attemptNo: 3, timestampSec: 1716215400, secret: 's3cret', custom: { 'X-Api-Key': 'k' } }, body);
    expect(h).toMatchObject({
      'content-type': 'application/json', 'user-agent': USER_AGENT, 'x-herald-event': 'content.generated', 'x-herald-delivery': 'dlv_1',
      'x-herald-attempt': '3', 'webhook-id': 'dlv_1', 'webhook-timestamp': '1716215400', 'X-Api-Key': 'k',
      'x-hub-signature-256': hubSignature('s3cret', body), 'webhook-signature': standardSignature('s3cret', 'dlv_1', 1716215400, body),
    });
    const unsigned = deliveryHeaders({ eventType: 'e', deliveryId: 'd', attemptNo: 1, timestampSec: 1, secret: null, custom: {} }, body);
    expect(Object.keys(unsigned)).not.toContain('x-hub-signature-256');
    expect(Object.keys(unsigned)).not.toContain('webhook-signature');
  });

  it('during a rotation adds the previous secret as a second webhook-signature entry, after the new one', () => {
    const body = buildBody({ eventType: 'content.generated', createdAt: 0, deliveryId: 'dlv_x', data: '{}' });
    const parts = { eventType: 'content.generated', deliveryId: 'dlv_x', attemptNo: 1, timestampSec: 1_700_000_000, custom: {} };
    const one = deliveryHeaders({ ...parts, secret: 'whsec_new-secret-value', previousSecret: null }, body);
    const two = deliveryHeaders({ ...parts, secret: 'whsec_new-secret-value', previousSecret: 'whsec_old-secret-value' }, body);
    expect(two['webhook-signature']).toBe(`${one['webhook-signature']} ${standardSignature('whsec_old-secret-value', 'dlv_x', 1_700_000_000, body)}`);
    expect(two['x-hub-signature-256']).toBe(one['x-hub-signature-256']);
    // No secret: no previous one either.
    expect(deliveryHeaders({ ...parts, secret: null, previousSecret: 'whsec_old-secret-value' }, body)['webhook-signature']).toBeUndefined();
    // Rotated to the same secret: one entry, not the same one twice.
    expect(deliveryHeaders({ ...parts, secret: 'whsec_new-secret-value', previousSecret: 'whsec_new-secret-value' }, body)['webhook-signature']).toBe(one['webhook-signature']);
  });

  it('never lets a stored custom header forge or duplicate one Herald sets, in any letter case', () => {
    const body = Buffer.from('{}');
    const custom = {
      'X-Hub-Signature-256': 'sha256=forged', 'Webhook-Signature': 'v1,forged', 'X-Herald-Attempt': '99', 'Content-Type': 'text/plain',
      'Accept-Encoding': 'gzip', 'Webhook-Timestamp': '0', Host: 'evil.example', 'X-Ok': 'kept',
    };
    const h = deliveryHeaders({ eventType: 'e', deliveryId: 'd', attemptNo: 1, timestampSec: 5, secret: 'k', custom }, body);
    const lower = Object.keys(h).map((k) => k.toLowerCase());
    expect(new Set(lower).size).toBe(lower.length); // no name twice
    expect(h['x-hub-signature-256']).toBe(hubSignature('k', body));
    expect(h['x-herald-attempt']).toBe('1');
    expect(h['content-type']).toBe('application/json');
    expect(h['accept-encoding']).toBe('identity');
    expect(h['webhook-timestamp']).toBe('5');
    expect(lower).not.toContain('host');
    expect(h['X-Ok']).toBe('kept');
  });

  it('redacts signatures and custom header values for the attempt log, whatever their case', () => {
    const r = redactHeaders({ 'x-hub-signature-256': 'sha256=aa', 'webhook-signature': 'v1,bb', 'X-Api-Key': 'k', 'x-herald-attempt': '1' }, ['x-api-key']);
    expect(r).toEqual({ 'x-hub-signature-256': '[redacted]', 'webhook-signature': '[redacted]', 'X-Api-Key': '[redacted]', 'x-herald-attempt': '1' });
  });
});
