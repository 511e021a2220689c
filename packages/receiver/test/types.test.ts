import { Hono } from 'hono';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { heraldHono } from '../src/adapters/hono.js';
import {
  BUILT_IN_EVENT_TYPES,
  verifyWebhook,
  type HeraldEvent,
  type HeraldEventMap,
  type JsonObject,
  type JsonValue,
  type WebhookEvent,
} from '../src/index.js';

// These tests are mostly checked by `tsc -p test/tsconfig.json` (npm run typecheck).
describe('event types', () => {
  it('the built-in union is discriminated by `event`', () => {
    expectTypeOf<HeraldEvent['event']>().toEqualTypeOf<'content.generated' | 'analysis.completed' | 'publishing.failed' | 'ping'>();
    expectTypeOf<Extract<HeraldEvent, { event: 'ping' }>['data']>().toEqualTypeOf<JsonObject>();
    expect([...BUILT_IN_EVENT_TYPES].sort()).toEqual(['analysis.completed', 'content.generated', 'ping', 'publishing.failed']);
  });

  it('custom maps narrow `data` per event type', () => {
    type Mine = HeraldEventMap & { 'invoice.paid': { amount_cents: number; currency: string } };
    const handle = (e: HeraldEvent<Mine>) => {
      if (e.event === 'invoice.paid') return e.data.amount_cents;
      expectTypeOf(e.data).toEqualTypeOf<JsonObject>();
      return 0;
    };
    expect(handle({ event: 'invoice.paid', created_at: '', delivery_id: 'd', data: { amount_cents: 5, currency: 'EUR' } })).toBe(5);
  });

  it('verifyWebhook is generic over the event type', () => {
    const byDefault = () => verifyWebhook('', {}, { secret: 's' });
    const custom = () => verifyWebhook<WebhookEvent<'x', JsonValue>>('', {}, { secret: 's' });
    expectTypeOf<ReturnType<typeof byDefault>>().toEqualTypeOf<Promise<HeraldEvent>>();
    expectTypeOf<ReturnType<typeof custom>>().toEqualTypeOf<Promise<WebhookEvent<'x', JsonValue>>>();
  });

  it('the hono middleware types c.get("heraldEvent") without declaring the env by hand', () => {
    new Hono().post('/webhooks', heraldHono({ secret: 's' }), (c) => {
      expectTypeOf(c.get('heraldEvent')).toEqualTypeOf<HeraldEvent>();
      return c.text('ok');
    });
  });
});
