// Sends a signed ping to the example receiver, twice, the way Herald would. Shows the
// second copy being recognised as a duplicate, without a running Herald.
//
//   HERALD_WEBHOOK_SECRET=whsec_… PORT=3000 node examples/receiver/send-test.mjs
import { signWebhook } from '@herald/receiver';

const secret = process.env.HERALD_WEBHOOK_SECRET;
if (!secret) {
  console.error('Set HERALD_WEBHOOK_SECRET to the same secret the receiver uses.');
  process.exit(1);
}
const url = `http://127.0.0.1:${process.env.PORT ?? 3000}/webhooks`;
const id = `dlv_test_${Date.now()}`;
const body = JSON.stringify({ event: 'ping', created_at: new Date().toISOString(), delivery_id: id, data: {} });

for (const attempt of [1, 2]) {
  const signature = await signWebhook({ secret, body, id });
  const headers = { 'content-type': 'application/json', 'x-herald-event': 'ping', 'x-herald-delivery': id, 'x-herald-attempt': String(attempt), ...signature };
  const res = await fetch(url, { method: 'POST', headers, body });
  console.log(`attempt ${attempt}: ${res.status} ${await res.text()}`);
}
