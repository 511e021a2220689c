import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  createVerifier,
  signWebhook,
  timingSafeEqual,
  verifyWebhook,
  WebhookVerificationError,
  type HeraldEvent,
  type VerificationErrorCode,
  type VerifyOptions,
  type WebhookEvent,
} from '../src/index.js';
import { delivery, envelope, SECRET } from './helpers.js';

const NOW = 1_716_215_400; // 2024-05-20T14:30:00Z, unix seconds
const at = (seconds: number) => () => seconds * 1000;

async function signedAt(timestamp: number, body = envelope(), secret = SECRET) {
  return { body, headers: { ...(await signWebhook({ secret, body, id: 'dlv_test_1', timestamp })) } as Record<string, string> };
}

/** Resolves with the error code, failing the test if it resolved or threw something else. */
async function codeOf(promise: Promise<unknown>): Promise<VerificationErrorCode> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    const e = err as WebhookVerificationError;
    expect(e.message.length).toBeGreaterThan(10);
    return e.code;
  }
  throw new Error('expected verification to fail');
}

function without(headers: Record<string, string>, ...names: string[]) {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k)));
}

describe('verifyWebhook: success', () => {
  it('returns the typed, parsed event', async () => {
    const { body, headers } = await delivery();
    const event = await verifyWebhook(body, headers, { secret: SECRET });
    expect(event).toEqual(JSON.parse(body));
    if (event.event === 'content.generated') expect(event.data.title).toBe('Crème brûlée 🎉');
  });

  it('accepts bytes in every form and headers in every shape', async () => {
    const { body, headers } = await delivery();
    const buf = Buffer.from(body);
    const bodies = [body, buf, new Uint8Array(buf), buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), new DataView(buf.buffer, buf.byteOffset, buf.length)];
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    const shapes = [headers, upper, new Headers(headers), Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]))];
    const verifier = createVerifier({ secret: SECRET });
    for (const b of bodies) for (const h of shapes) await expect(verifier.verify(b, h)).resolves.toMatchObject({ delivery_id: 'dlv_test_1' });
  });

  it('keeps a body byte-for-byte: unicode, U+2028, 1.0, big integers and odd whitespace', async () => {
    const body = '{ "event" :\t"ping",\r\n"created_at":"x" ,"delivery_id":"dlv_1","data":{"s":"a\u2028b 日本","n":1.0,"big":12345678901234567890 }}\n';
    const { headers } = await signedAt(NOW, body);
    const event = await verifyWebhook(body, headers, { secret: SECRET, now: at(NOW) });
    expect(event.data).toMatchObject({ s: 'a\u2028b 日本', n: 1 });
    // Re-serialising changes the bytes, which is exactly why the raw body is required.
    expect(await codeOf(verifyWebhook(JSON.stringify(JSON.parse(body)), headers, { secret: SECRET, now: at(NOW) }))).toBe('signature_mismatch');
  });

  it('passes the verified text to a custom JSON parser', async () => {
    const { body, headers } = await delivery(envelope({ data: { big: 1 } }).replace('"big":1', '"big":12345678901234567890'));
    const event = await verifyWebhook<WebhookEvent<string, { big: string }>>(body, headers, {
      secret: SECRET,
      parseJson: (text) => JSON.parse(text.replace(/"big":(\d+)/, '"big":"$1"')),
    });
    expect(event.data.big).toBe('12345678901234567890');
  });

  it('reuses a prebuilt verifier', async () => {
    const { body, headers } = await delivery();
    await expect(verifyWebhook(body, headers, createVerifier({ secret: SECRET }))).resolves.toEqual(JSON.parse(body));
  });

  it('accepts any of several secrets, and any of several signatures (rotation)', async () => {
    const { body, headers } = await delivery(envelope(), 'whsec_old');
    await expect(verifyWebhook(body, headers, { secret: ['whsec_new', 'whsec_old'] })).resolves.toEqual(JSON.parse(body));
    await expect(verifyWebhook(body, headers, { secret: ['whsec_new', 'whsec_old'], scheme: 'hub' })).resolves.toEqual(JSON.parse(body));
    const other = await signWebhook({ secret: 'whsec_new', body, id: 'dlv_test_1', timestamp: Number(headers['webhook-timestamp']) });
    const both = { ...headers, 'webhook-signature': `v1a,ignored-asymmetric ${other['webhook-signature']} ${headers['webhook-signature']}` };
    await expect(verifyWebhook(body, both, { secret: 'whsec_old', scheme: 'standard' })).resolves.toEqual(JSON.parse(body));
    await expect(verifyWebhook(body, both, { secret: 'whsec_new', scheme: 'standard' })).resolves.toEqual(JSON.parse(body));
  });

  it('uses the secret as raw UTF-8, never base64-decoding a whsec_ secret', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = envelope();
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      'x-hub-signature-256': 'sha256=' + createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('hex'),
      'webhook-id': 'dlv_test_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': 'v1,' + createHmac('sha256', Buffer.from(secret, 'utf8')).update(`dlv_test_1.${ts}.${body}`).digest('base64'),
    };
    await expect(verifyWebhook(body, headers, { secret, scheme: 'both' })).resolves.toEqual(JSON.parse(body));
  });
});

describe('interoperability with the standardwebhooks library', () => {
  it('it accepts our signatures', async () => {
    const { body, headers } = await delivery();
    expect(new Webhook(SECRET, { format: 'raw' }).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('we accept its signatures', async () => {
    const body = envelope();
    const wh = new Webhook(SECRET, { format: 'raw' });
    const now = new Date();
    const headers = { 'webhook-id': 'dlv_test_1', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': wh.sign('dlv_test_1', now, body) };
    await expect(verifyWebhook(body, headers, { secret: SECRET, scheme: 'standard' })).resolves.toMatchObject({ event: 'content.generated' });
  });

  it('the signed timestamp is the header as sent, leading zeros and all', async () => {
    // Standard Webhooks signs "<id>.<webhook-timestamp>.<body>" with the header's text.
    const body = envelope();
    const ts = `0${Math.floor(Date.now() / 1000)}`;
    const mac = createHmac('sha256', SECRET).update(`dlv_test_1.${ts}.${body}`).digest('base64');
    const headers = { 'webhook-id': 'dlv_test_1', 'webhook-timestamp': ts, 'webhook-signature': `v1,${mac}` };
    await expect(verifyWebhook(body, headers, { secret: SECRET })).resolves.toMatchObject({ event: 'content.generated' });
    // The same signature does not cover the number written without its zero.
    expect(await codeOf(verifyWebhook(body, { ...headers, 'webhook-timestamp': ts.slice(1) }, { secret: SECRET }))).toBe('signature_mismatch');
  });
});

describe('schemes', () => {
  it('auto: prefers Standard Webhooks and never falls back to the hub signature when it fails', async () => {
    const { body, headers } = await delivery();
    const badStandard = { ...headers, 'webhook-signature': 'v1,' + Buffer.alloc(32).toString('base64') };
    expect(await codeOf(verifyWebhook(body, badStandard, { secret: SECRET, scheme: 'auto' }))).toBe('signature_mismatch');
  });

  it('auto: uses the hub signature when webhook-signature is absent', async () => {
    const { body, headers } = await delivery();
    const hubOnly = without(headers, 'webhook-signature', 'webhook-timestamp');
    await expect(verifyWebhook(body, hubOnly, { secret: SECRET, scheme: 'auto' })).resolves.toEqual(JSON.parse(body));
    expect(await codeOf(verifyWebhook(body + ' ', hubOnly, { secret: SECRET, scheme: 'auto' }))).toBe('signature_mismatch');
  });

  it('standard by default: a delivery stripped to its hub signature is refused, so an old capture cannot be replayed', async () => {
    // Captured three days ago; the hub signature covers the body only, not the time or webhook-id.
    const old = Math.floor(Date.now() / 1000) - 3 * 86_400;
    const body = envelope();
    const headers: Record<string, string> = { ...(await signWebhook({ secret: SECRET, body, id: 'dlv_test_1', timestamp: old })) };
    const hubOnly = without(headers, 'webhook-signature', 'webhook-timestamp');
    expect(await codeOf(verifyWebhook(body, { ...hubOnly, 'webhook-id': 'replay-1' }, { secret: SECRET }))).toBe('missing_header');
    expect(await codeOf(verifyWebhook(body, headers, { secret: SECRET }))).toBe('timestamp_too_old');
    // With no signature header at all, the message says why one may be missing.
    const err = await verifyWebhook(body, without(headers, 'webhook-signature', 'webhook-timestamp', 'x-hub-signature-256'), { secret: SECRET }).catch((e: Error) => e);
    expect((err as WebhookVerificationError).code).toBe('missing_header');
    expect((err as Error).message).toContain('only when the webhook has a secret');
  });

  it('auto: with a secret configured, no signature header at all is an error', async () => {
    const { body, headers } = await delivery();
    const unsigned = without(headers, 'webhook-signature', 'x-hub-signature-256');
    expect(await codeOf(verifyWebhook(body, unsigned, { secret: SECRET, scheme: 'auto' }))).toBe('missing_header');
    expect(await codeOf(verifyWebhook(body, {}, { secret: SECRET, scheme: 'auto' }))).toBe('missing_header');
  });

  it('standard, hub and both require their headers', async () => {
    const { body, headers } = await delivery();
    const noHub = without(headers, 'x-hub-signature-256');
    const noStandard = without(headers, 'webhook-signature');
    expect(await codeOf(verifyWebhook(body, noStandard, { secret: SECRET, scheme: 'standard' }))).toBe('missing_header');
    expect(await codeOf(verifyWebhook(body, noHub, { secret: SECRET, scheme: 'hub' }))).toBe('missing_header');
    expect(await codeOf(verifyWebhook(body, noHub, { secret: SECRET, scheme: 'both' }))).toBe('missing_header');
    expect(await codeOf(verifyWebhook(body, noStandard, { secret: SECRET, scheme: 'both' }))).toBe('missing_header');
    await expect(verifyWebhook(body, headers, { secret: SECRET, scheme: 'both' })).resolves.toEqual(JSON.parse(body));
    await expect(verifyWebhook(body, noHub, { secret: SECRET, scheme: 'standard' })).resolves.toEqual(JSON.parse(body));
    await expect(verifyWebhook(body, noStandard, { secret: SECRET, scheme: 'hub' })).resolves.toEqual(JSON.parse(body));
  });

  it('names each missing Standard Webhooks header', async () => {
    const { body, headers } = await delivery();
    const err = await verifyWebhook(body, without(headers, 'webhook-id', 'webhook-timestamp'), { secret: SECRET }).catch((e: Error) => e);
    expect((err as WebhookVerificationError).code).toBe('missing_header');
    expect((err as Error).message).toContain('webhook-id, webhook-timestamp');
  });
});

describe('failures map to the right code', () => {
  const cases: Array<[string, (h: Record<string, string>, body: string) => [string | Uint8Array, Record<string, string>, Partial<VerifyOptions>?], VerificationErrorCode]> = [
    ['tampered body (standard)', (h, b) => [b.replace('brûlée', 'brulee'), h], 'signature_mismatch'],
    ['tampered body (hub)', (h, b) => [b.replace('brûlée', 'brulee'), h, { scheme: 'hub' }], 'signature_mismatch'],
    ['wrong secret', (h, b) => [b, h, { secret: 'whsec_wrong' }], 'signature_mismatch'],
    ['tampered webhook-id', (h, b) => [b, { ...h, 'webhook-id': 'dlv_other' }], 'signature_mismatch'],
    ['hub: short hex', (h, b) => [b, { ...h, 'x-hub-signature-256': 'sha256=abc' }, { scheme: 'hub' }], 'bad_format'],
    ['hub: long hex', (h, b) => [b, { ...h, 'x-hub-signature-256': h['x-hub-signature-256'] + '00' }, { scheme: 'hub' }], 'bad_format'],
    ['hub: no prefix', (h, b) => [b, { ...h, 'x-hub-signature-256': h['x-hub-signature-256']!.slice(7) }, { scheme: 'hub' }], 'bad_format'],
    ['hub: sha1', (h, b) => [b, { ...h, 'x-hub-signature-256': 'sha1=' + 'a'.repeat(40) }, { scheme: 'hub' }], 'bad_format'],
    ['hub: garbage', (h, b) => [b, { ...h, 'x-hub-signature-256': '\u0000💥' }, { scheme: 'hub' }], 'bad_format'],
    ['hub: right length, wrong value', (h, b) => [b, { ...h, 'x-hub-signature-256': 'sha256=' + 'f'.repeat(64) }, { scheme: 'hub' }], 'signature_mismatch'],
    ['standard: short signature', (h, b) => [b, { ...h, 'webhook-signature': 'v1,abc' }], 'signature_mismatch'],
    ['standard: long signature', (h, b) => [b, { ...h, 'webhook-signature': h['webhook-signature'] + 'AAAA' }], 'signature_mismatch'],
    ['standard: garbage value', (h, b) => [b, { ...h, 'webhook-signature': 'v1,%%%💥' }], 'signature_mismatch'],
    ['standard: no version', (h, b) => [b, { ...h, 'webhook-signature': h['webhook-signature']!.slice(3) }], 'bad_format'],
    ['standard: only other versions', (h, b) => [b, { ...h, 'webhook-signature': h['webhook-signature']!.replace('v1,', 'v2,') }], 'bad_format'],
    ['standard: empty header', (h, b) => [b, { ...h, 'webhook-signature': '' }], 'bad_format'],
    ['timestamp: not a number', (h, b) => [b, { ...h, 'webhook-timestamp': 'yesterday' }], 'bad_format'],
    ['timestamp: negative', (h, b) => [b, { ...h, 'webhook-timestamp': '-5' }], 'bad_format'],
    ['timestamp: milliseconds-sized garbage', (h, b) => [b, { ...h, 'webhook-timestamp': '1'.repeat(20) }], 'bad_format'],
    ['timestamp: altered', (h, b) => [b, { ...h, 'webhook-timestamp': String(Number(h['webhook-timestamp']) + 1) }], 'signature_mismatch'],
    ['body: not UTF-8', (h) => [new Uint8Array([0xff, 0xfe, 0x7b]), h], 'signature_mismatch'],
  ];

  it.each(cases)('%s', async (_name, mutate, code) => {
    const { body, headers } = await delivery();
    const [b, h, opts] = mutate(headers, body);
    expect(await codeOf(verifyWebhook(b, h, { secret: SECRET, ...opts }))).toBe(code);
  });

  it('stale and future timestamps, at the default 5 minute tolerance', async () => {
    const opts = { secret: SECRET, now: at(NOW) };
    const ok = await signedAt(NOW - 300);
    await expect(verifyWebhook(ok.body, ok.headers, opts)).resolves.toEqual(JSON.parse(ok.body));
    const old = await signedAt(NOW - 301);
    expect(await codeOf(verifyWebhook(old.body, old.headers, opts))).toBe('timestamp_too_old');
    const soon = await signedAt(NOW + 300);
    await expect(verifyWebhook(soon.body, soon.headers, opts)).resolves.toEqual(JSON.parse(soon.body));
    const future = await signedAt(NOW + 301);
    expect(await codeOf(verifyWebhook(future.body, future.headers, opts))).toBe('timestamp_too_new');
  });

  it('a configurable tolerance, in both directions', async () => {
    const opts = { secret: SECRET, now: at(NOW), toleranceSeconds: 10 };
    const old = await signedAt(NOW - 11);
    const future = await signedAt(NOW + 11);
    expect(await codeOf(verifyWebhook(old.body, old.headers, opts))).toBe('timestamp_too_old');
    expect(await codeOf(verifyWebhook(future.body, future.headers, opts))).toBe('timestamp_too_new');
    const wide = { ...opts, toleranceSeconds: 3600 };
    await expect(verifyWebhook(old.body, old.headers, wide)).resolves.toEqual(JSON.parse(old.body));
  });

  it('a stale request with a forged signature is a mismatch, not a timestamp error', async () => {
    const old = await signedAt(NOW - 10_000, envelope(), 'whsec_attacker');
    expect(await codeOf(verifyWebhook(old.body, old.headers, { secret: SECRET, now: at(NOW) }))).toBe('signature_mismatch');
  });

  it('a valid signature over a body that is not a Herald event is invalid_body', async () => {
    for (const body of ['not json', '[1,2]', 'null', '{"event":"x","created_at":"y","delivery_id":1,"data":{}}', '{"event":"x","created_at":"y","delivery_id":"d"}']) {
      const { headers } = await delivery(body);
      expect(await codeOf(verifyWebhook(body, headers, { secret: SECRET }))).toBe('invalid_body');
    }
    const bytes = new Uint8Array([0x7b, 0xff, 0x7d]); // "{\xff}": not UTF-8
    const headers = await signWebhook({ secret: SECRET, body: bytes, id: 'dlv_test_1' });
    expect(await codeOf(verifyWebhook(bytes, headers, { secret: SECRET }))).toBe('invalid_body');
  });

  it('a parsed object instead of the raw body is invalid_body, with advice', async () => {
    const { body, headers } = await delivery();
    const err = (await verifyWebhook(JSON.parse(body), headers, { secret: SECRET }).catch((e: unknown) => e)) as WebhookVerificationError;
    expect(err.code).toBe('invalid_body');
    expect(err.message).toMatch(/raw body/);
    for (const wrong of [undefined, null, 42]) expect(await codeOf(verifyWebhook(wrong as never, headers, { secret: SECRET }))).toBe('invalid_body');
  });

  it('missing or non-object headers are missing_header', async () => {
    expect(await codeOf(verifyWebhook('{}', undefined as never, { secret: SECRET }))).toBe('missing_header');
  });

  it('never throws anything but WebhookVerificationError for hostile headers', async () => {
    const { body, headers } = await delivery();
    const junk = ['', ' ', ',', 'v1,', 'v1, v1,', 'sha256=', '\u0000', '\u2028', 'v1,' + 'A'.repeat(10_000), 'x'.repeat(100_000), '🙂'.repeat(50), 'v1,====', '99999999999999999999', 'NaN', '1e9', '0x10'];
    for (const scheme of ['auto', 'standard', 'hub', 'both'] as const) {
      for (const name of ['webhook-signature', 'webhook-timestamp', 'webhook-id', 'x-hub-signature-256']) {
        for (const value of junk) {
          const result = await verifyWebhook(body, { ...headers, [name]: value }, { secret: SECRET, scheme }).then(
            () => 'ok',
            (e: unknown) => (e instanceof WebhookVerificationError ? e.code : `threw ${String(e)}`),
          );
          expect(result, `${scheme} ${name}=${JSON.stringify(value).slice(0, 30)}`).not.toMatch(/^threw/);
        }
      }
    }
  });

  it('errors carry the status an adapter answers with', async () => {
    const { body, headers } = await delivery();
    const err = await verifyWebhook(body + 'x', headers, { secret: SECRET }).catch((e: WebhookVerificationError) => e);
    expect(err).toMatchObject({ name: 'WebhookVerificationError', code: 'signature_mismatch', status: 401 });
  });
});

describe('configuration', () => {
  it('refuses a missing or empty secret, an unknown scheme and a bad tolerance at creation', () => {
    for (const options of [{}, { secret: '' }, { secret: [] }, { secret: ['ok', ''] }, { secret: 5 }, { secret: 'x', scheme: 'hmac' }, { secret: 'x', toleranceSeconds: -1 }, { secret: 'x', toleranceSeconds: Number.NaN }]) {
      expect(() => createVerifier(options as VerifyOptions)).toThrow(TypeError);
    }
  });

  it('keeps the secrets it was given: changing the array afterwards changes nothing', async () => {
    const secrets = [SECRET];
    const verifier = createVerifier({ secret: secrets });
    secrets[0] = ''; // neither slips past the check at creation nor breaks the verifier
    const { body, headers } = await delivery();
    await expect(verifier.verify(body, headers)).resolves.toMatchObject({ delivery_id: 'dlv_test_1' });
  });

  it('verifyWebhook reports a configuration error as a rejection, not a synchronous throw', async () => {
    await expect(verifyWebhook('{}', {}, { secret: '' })).rejects.toBeInstanceOf(TypeError);
    await expect(verifyWebhook('{}', {}, undefined as never)).rejects.toThrow(/secret/);
  });

  it('the default event type is the built-in union', async () => {
    const { body, headers } = await delivery();
    const event: HeraldEvent = await createVerifier({ secret: SECRET }).verify(body, headers);
    expect(['content.generated', 'analysis.completed', 'publishing.failed', 'ping']).toContain(event.event);
  });
});

describe('timingSafeEqual', () => {
  const b = (s: string) => new TextEncoder().encode(s);
  it('compares equal and unequal inputs, including different lengths, without throwing', () => {
    expect(timingSafeEqual(b('abc'), b('abc'))).toBe(true);
    expect(timingSafeEqual(b('abd'), b('abc'))).toBe(false);
    expect(timingSafeEqual(b('ab'), b('abc'))).toBe(false);
    expect(timingSafeEqual(b('abcd'), b('abc'))).toBe(false);
    expect(timingSafeEqual(b(''), b('abc'))).toBe(false);
    expect(timingSafeEqual(b('abc\u0000'), b('abc'))).toBe(false);
    expect(timingSafeEqual(b(''), b(''))).toBe(true);
  });
});
