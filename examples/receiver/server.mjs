// A Herald webhook receiver: verify every delivery, answer 200 at once, process it in a
// bounded background queue, and process each delivery_id once.
//
//   npm run build -w packages/receiver
//   HERALD_WEBHOOK_SECRET=whsec_… PORT=3000 node examples/receiver/server.mjs
//
// stdout carries one JSON object per line: {"listening":<port>} once, then one line per
// delivery ({"processed":…}, {"duplicate":…}, {"rejected":…}, {"failed":…}).
import { createServer } from 'node:http';
import { createIdempotency } from '@herald/receiver';
import { createNodeHandler } from '@herald/receiver/node';

const secret = process.env.HERALD_WEBHOOK_SECRET;
if (!secret) {
  console.error('Set HERALD_WEBHOOK_SECRET to the webhook secret shown in Herald.');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 3000); // 0 picks a free port
const host = process.env.HOST ?? '127.0.0.1';

const log = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

// Your business logic. Throwing releases the delivery_id, so a redelivery is processed again.
async function handleEvent(event) {
  switch (event.event) {
    case 'content.generated':
    case 'analysis.completed':
    case 'publishing.failed':
    case 'ping':
      break;
    default:
      // The operator can register event types after this code was written: accept and ignore them.
      break;
  }
}

// Bounded, so a burst cannot exhaust memory: when full, the delivery is answered 503 and
// Herald retries it later. The queue lives in memory: deliveries still queued when the
// process dies are lost (they were already answered 200). Use a durable queue when that matters.
const MAX_QUEUED = 1000;
const CONCURRENCY = 4;
const queue = [];
let running = 0;

function enqueue(job) {
  if (queue.length >= MAX_QUEUED) return false;
  queue.push(job);
  drain();
  return true;
}

function drain() {
  while (running < CONCURRENCY && queue.length > 0) {
    const job = queue.shift();
    running++;
    job().finally(() => {
      running--;
      drain();
    });
  }
}

// In memory, for one process; several processes need a shared store (see IdempotencyStore).
const dedupe = createIdempotency();

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const receive = createNodeHandler(
  { secret, onRejected: (err) => log({ rejected: { code: err.code, message: err.message } }) },
  async (event, req, res) => {
    const id = event.delivery_id; // from the signed body, unlike the unsigned X-Herald-Delivery header
    const claim = await dedupe.claim(id);
    if (claim === 'completed') {
      log({ duplicate: id });
      return reply(res, 200, { ok: true, duplicate: true });
    }
    if (claim === 'in_progress') return reply(res, 409, { error: { code: 'in_progress', message: 'Still processing this delivery.' } });

    const attempt = Number(req.headers['x-herald-attempt']) || null;
    const accepted = enqueue(async () => {
      try {
        await handleEvent(event);
        await dedupe.complete(id);
        log({ processed: { delivery_id: id, event: event.event, created_at: event.created_at, attempt, data: event.data } });
      } catch (err) {
        await dedupe.release(id);
        log({ failed: { delivery_id: id, error: String(err?.message ?? err) } });
      }
    });
    if (!accepted) {
      await dedupe.release(id);
      res.setHeader('retry-after', '60'); // Herald honours Retry-After on 503
      return reply(res, 503, { error: { code: 'busy', message: 'Queue full, retry later.' } });
    }
    reply(res, 200, { ok: true });
  },
);

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/webhooks') return receive(req, res);
  reply(res, 404, { error: { code: 'not_found', message: 'POST /webhooks' } });
});

server.listen(port, host, () => log({ listening: server.address().port }));

// Stop taking requests, finish what is queued, then exit.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    server.closeIdleConnections();
    const wait = setInterval(() => {
      if (queue.length === 0 && running === 0) {
        clearInterval(wait);
        process.exit(0);
      }
    }, 20);
  });
}
