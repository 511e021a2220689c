import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Attempt, type DeliveryDetail as Detail } from '../api';
import type { ScreenCtx } from '../context';
import { IconAlert, IconCheck, IconClock, IconRefresh, IconX } from '../components/icons';
import { PageHeader } from '../components/layout';
import { Button, Card, CodeBlock, CopyButton, HeaderTable, Link, Notice, Spinner, StatusBadge } from '../components/ui';
import { absoluteTime, explainFailure, formatMs, outcomeLabel, prettyJson, relativeTime } from '../format';
import { paths } from '../router';

/**
 * One delivery: the exact request Herald sent, every attempt with the endpoint's answer,
 * what went wrong in plain words, and Redeliver. Receiver output is shown as text only.
 */

/** Just redelivered or queued: the answer comes within seconds, so look often. */
const FOLLOW_MS = 1500;
/** Waiting for a scheduled retry (minutes to hours away): look now and then. */
const WAIT_MS = 10_000;

export function DeliveryDetail({ ctx, webhookId, deliveryId }: { ctx: ScreenCtx; webhookId: string; deliveryId: string }) {
  const [d, setD] = useState<Detail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [view, setView] = useState<'pretty' | 'raw'>('pretty');
  const [redelivering, setRedelivering] = useState(false);
  /** Following a redelivery: done once an attempt beyond `attemptsBefore` is recorded. */
  const [watch, setWatch] = useState<{ attemptsBefore: number } | null>(null);
  const [announce, setAnnounce] = useState('');
  const watchRef = useRef(watch);
  watchRef.current = watch;

  const load = async () => {
    try {
      const x = await api.delivery(ctx.accountId, deliveryId);
      setD(x);
      setError(null);
      const w = watchRef.current;
      // The new attempt is what the customer waits for, whatever the status after it: a failed
      // one with attempts left puts the delivery back to pending, for a retry hours away.
      if (w && attemptCount(x) > w.attemptsBefore) {
        setWatch(null);
        setAnnounce(redeliveryOutcome(x));
      }
    } catch (e) {
      if (e instanceof ApiError && e.code === 'plan_required') ctx.planRequired();
      else setError(e instanceof ApiError && e.status === 404 ? 'This delivery does not exist (it may be older than the retention period).' : (e as Error).message);
    }
  };

  useEffect(() => {
    setD(null);
    void load();
  }, [deliveryId]);

  const soon = !!d && d.status === 'pending' && (!d.next_attempt_at || Date.parse(d.next_attempt_at) - Date.now() < 15_000);
  const every = watch !== null || soon ? FOLLOW_MS : d?.status === 'pending' ? WAIT_MS : null;
  useEffect(() => {
    if (every === null) return;
    const t = window.setInterval(() => void load(), every);
    return () => window.clearInterval(t);
  }, [every, deliveryId]);

  const redeliver = async () => {
    if (!d) return;
    setRedelivering(true);
    try {
      // The count as the server queued it: an attempt made since this page last loaded is not the new one.
      const queued = await api.redeliver(ctx.accountId, d.id);
      setWatch({ attemptsBefore: queued.attempts });
      setAnnounce('Queued for redelivery. Waiting for your endpoint to answer…');
      await load();
    } catch (e) {
      setAnnounce(`Could not redeliver: ${(e as Error).message}`);
    } finally {
      setRedelivering(false);
    }
  };

  const crumbs = [
    { label: 'Webhooks', href: paths.list() },
    { label: 'Webhook History', href: paths.history(webhookId) },
    { label: 'Delivery' },
  ];
  if (error && !d) {
    return (
      <>
        <PageHeader crumbs={crumbs} title="Delivery" />
        <Notice tone="danger" role="alert" title="Could not load this delivery">{error}</Notice>
        <p><Link href={paths.history(webhookId)}>Back to Webhook History</Link></p>
      </>
    );
  }
  if (!d) return <Spinner label="Loading delivery" />;

  const attempts = [...d.attempts].sort((a, b) => b.attempt - a.attempt);
  const last = attempts[0];
  const pretty = prettyJson(d.request.body);
  const maxAttempts = ctx.meta?.max_attempts;
  const now = Date.now();

  return (
    <>
      <PageHeader
        crumbs={crumbs}
        title={
          <span class="title-with-badge">
            <span class="mono">{d.event_type}</span>
            <StatusBadge status={d.status} attempts={attemptCount(d)} />
          </span>
        }
        description={
          <span class="id-line">
            <span class="mono small">{d.id}</span>
            <CopyButton text={() => d.id} label="Copy ID" variant="ghost" />
          </span>
        }
        actions={
          <Button variant={d.status === 'succeeded' ? 'secondary' : 'primary'} onClick={redeliver} busy={redelivering || watch !== null} aria-describedby="redeliver-hint">
            <IconRefresh />
            {watch !== null ? 'Redelivering…' : 'Redeliver'}
          </Button>
        }
      />
      <p id="redeliver-hint" class="sr-only">Sends the same event again now, with the same delivery ID, so your endpoint can de-duplicate it.</p>
      <div class="live-announce" role="status" aria-live="polite">
        {announce && (
          <Notice tone={/failed|Could not/.test(announce) ? 'danger' : /successfully/.test(announce) ? 'success' : 'info'}>
            <p>{announce}</p>
          </Notice>
        )}
      </div>

      <Summary d={d} last={last} maxAttempts={maxAttempts} now={now} timeoutMs={ctx.meta?.timeout_ms} />

      <Card id="request" title="Request" description="Exactly what Herald sent to your endpoint.">
        <dl class="meta-grid meta-grid-2">
          <div>
            <dt>Method and URL</dt>
            <dd class="mono break">POST {d.request.url ?? '(webhook deleted)'}</dd>
          </div>
          <div>
            <dt>Event created</dt>
            <dd><time dateTime={d.created_at}>{absoluteTime(d.created_at)}</time></dd>
          </div>
        </dl>
        <div class="subheading-row">
          <h3 class="subheading">Body</h3>
          <div class="segmented" role="group" aria-label="Body view">
            <button type="button" class={view === 'pretty' ? 'is-active' : ''} aria-pressed={view === 'pretty' ? 'true' : 'false'} onClick={() => setView('pretty')}>
              Pretty
            </button>
            <button type="button" class={view === 'raw' ? 'is-active' : ''} aria-pressed={view === 'raw' ? 'true' : 'false'} onClick={() => setView('raw')}>
              Raw
            </button>
          </div>
          <CopyButton text={() => d.request.body} label="Copy body" variant="ghost" />
        </div>
        <CodeBlock text={view === 'pretty' && pretty !== null ? pretty : d.request.body} label={`Request body (${view})`} />
        {view === 'raw' && <p class="hint">These are the exact bytes Herald signed and sent.</p>}
        <h3 class="subheading">Headers</h3>
        {last ? (
          <>
            <HeaderTable headers={last.request_headers} caption="Request headers of the latest attempt" />
            <p class="hint">From the latest attempt. Signatures and custom header values are redacted.</p>
          </>
        ) : (
          <p class="muted small">Headers appear once the first attempt has been made.</p>
        )}
      </Card>

      <Card
        id="attempts"
        title={`Attempts (${attemptCount(d)})`}
        description={`Newest first. Each attempt is one HTTP request with its own answer.${d.earlier_attempts > 0 ? ` The ${d.attempts.length} latest are shown; ${d.earlier_attempts} earlier ${d.earlier_attempts === 1 ? 'is' : 'are'} not.` : ''}`}
      >
        {attempts.length === 0 ? (
          <p class="muted">No attempt yet: the delivery is queued and will be sent within seconds.</p>
        ) : (
          <ol class="attempts">
            {attempts.map((a, i) => (
              <AttemptItem key={a.id} a={a} open={i === 0} timeoutMs={ctx.meta?.timeout_ms} />
            ))}
          </ol>
        )}
      </Card>
    </>
  );
}

/** Every attempt made, those the detail lists and the earlier ones it leaves out. */
const attemptCount = (d: Detail): number => d.attempts.length + d.earlier_attempts;

/** What the attempt made after Redeliver came to, in one sentence. */
function redeliveryOutcome(d: Detail): string {
  const last = [...d.attempts].sort((a, b) => b.attempt - a.attempt)[0];
  const answer = last ? `: ${outcomeLabel(last)}` : '';
  if (last?.success) return `Redelivered successfully${answer}.`;
  const next = d.status === 'pending' ? ' Herald will try again automatically.' : '';
  return `The redelivery failed${answer}.${next}`;
}

function Summary({ d, last, maxAttempts, now, timeoutMs }: { d: Detail; last: Attempt | undefined; maxAttempts?: number; now: number; timeoutMs?: number }) {
  const count = attemptCount(d);
  let headline: string;
  if (d.status === 'succeeded') headline = 'Delivered. Your endpoint accepted this event.';
  else if (d.status === 'failed') headline = count === 0 ? 'Not delivered.' : `Not delivered after ${count} attempt${count === 1 ? '' : 's'}. Herald has stopped trying.`;
  else if (count === 0) headline = 'Queued: the first attempt is about to be made.';
  else headline = 'Not delivered yet. Herald will try again automatically.';
  const tone = d.status === 'pending' && count > 0 ? 'retrying' : d.status;
  return (
    <Card id="summary" class={`summary summary-${tone}`}>
      <p class={`summary-headline text-${tone}`}>
        {d.status === 'succeeded' ? <IconCheck /> : d.status === 'failed' ? <IconX /> : <IconClock />}
        {headline}
      </p>
      {d.status !== 'succeeded' && last && !last.success && (
        <p class="summary-explain">
          <IconAlert />
          <span>{explainFailure(last, timeoutMs)}</span>
        </p>
      )}
      {d.status !== 'succeeded' && !last && d.last_error && <p class="summary-explain"><IconAlert /><span>{d.last_error}</span></p>}
      <dl class="meta-grid">
        <div>
          <dt>Last response</dt>
          <dd>{last ? outcomeLabel(last) : d.last_error ?? '—'}</dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>{maxAttempts ? `${count} of ${Math.max(maxAttempts, count)}` : count}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatMs(d.duration_ms)}</dd>
        </div>
        <div>
          <dt>{d.status === 'pending' && d.next_attempt_at ? 'Next attempt' : 'Last attempt'}</dt>
          <dd>
            {d.status === 'pending' && d.next_attempt_at ? (
              <time dateTime={d.next_attempt_at} title={absoluteTime(d.next_attempt_at)}>
                {relativeTime(d.next_attempt_at, now)} ({absoluteTime(d.next_attempt_at)})
              </time>
            ) : d.last_attempt_at ? (
              <time dateTime={d.last_attempt_at} title={absoluteTime(d.last_attempt_at)}>{relativeTime(d.last_attempt_at, now)}</time>
            ) : (
              '—'
            )}
          </dd>
        </div>
      </dl>
    </Card>
  );
}

function AttemptItem({ a, open, timeoutMs }: { a: Attempt; open: boolean; timeoutMs?: number }) {
  return (
    <li class={`attempt ${a.success ? 'is-ok' : 'is-bad'}`}>
      <details open={open}>
        <summary>
          <span class="attempt-marker" aria-hidden="true">{a.success ? <IconCheck /> : <IconX />}</span>
          <span class="attempt-title">Attempt {a.attempt}</span>
          <span class={`attempt-outcome ${a.success ? 'text-succeeded' : 'text-failed'}`}>{outcomeLabel(a)}</span>
          <span class="muted small">{formatMs(a.duration_ms)}</span>
          <span class="muted small attempt-time">
            <time dateTime={a.started_at} title={absoluteTime(a.started_at)}>{absoluteTime(a.started_at)}</time>
          </span>
        </summary>
        <div class="attempt-body">
          {!a.success && <p class="attempt-explain">{explainFailure(a, timeoutMs)}</p>}
          {a.error && a.status_code === null && (
            <>
              <h4 class="subheading-sm">Error</h4>
              <p class="mono small">{a.error}</p>
            </>
          )}
          {a.status_code !== null && (
            <>
              <h4 class="subheading-sm">Response body {a.response_truncated && <span class="muted">(first 64 KB)</span>}</h4>
              <CodeBlock text={a.response_body} label={`Response body of attempt ${a.attempt}`} empty="Your endpoint sent an empty body." />
              <h4 class="subheading-sm">Response headers</h4>
              <HeaderTable headers={a.response_headers} caption={`Response headers of attempt ${a.attempt}`} />
            </>
          )}
          <details class="nested">
            <summary>Request headers</summary>
            <HeaderTable headers={a.request_headers} caption={`Request headers of attempt ${a.attempt}`} />
          </details>
        </div>
      </details>
    </li>
  );
}
