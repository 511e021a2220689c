import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Delivery, type DeliveryStatus, type Page, type Webhook } from '../api';
import type { ScreenCtx } from '../context';
import { IconChevronRight, IconPencil, IconRefresh } from '../components/icons';
import { PageHeader } from '../components/layout';
import { Button, Card, focusSoon, Link, Notice, Spinner, StatusBadge } from '../components/ui';
import { absoluteTime, formatMs, humanizeTimestamps, outcomeLabel, relativeTime } from '../format';
import { navigate, paths } from '../router';

/**
 * Webhook History: every delivery to one webhook, newest first. It refreshes itself every
 * few seconds while visible (new deliveries slide in, pending ones turn green or red),
 * keeping the older pages already loaded as long as nothing between them could be missing.
 */

const PAGE_SIZE = 25;
/** Often enough to feel live while a customer watches a retry; cheap for the server (one indexed query). */
const POLL_MS = 4000;
const HOUR_MS = 3_600_000;
/** What a delivery id looks like (the `delivery_id` and `webhook-id` a receiver gets). */
const DELIVERY_ID = /^dlv_[0-9A-HJKMNP-TV-Z]{26}$/i;
/** How far back "Resend failed" reaches; the server keeps HERALD_RETENTION_DAYS (30 by default). */
const RESEND_PERIODS = [
  { label: 'the last hour', ms: HOUR_MS },
  { label: 'the last 24 hours', ms: 24 * HOUR_MS },
  { label: 'the last 7 days', ms: 7 * 24 * HOUR_MS },
  { label: 'the last 30 days', ms: 30 * 24 * HOUR_MS },
] as const;

/**
 * The list after a refresh brought the newest page (and the cursor that goes with it).
 *
 * Pages loaded with "Load older" stay only when the fresh page reaches down into what is
 * loaded: the two together then still hold every delivery from the newest to the oldest
 * shown. When it does not (more than a page arrived since the last look, say while the tab was
 * hidden), keeping them would leave a gap that "Load older" never fills, so the fresh page
 * starts the list again with its own cursor. A fresh page that is the whole list (no
 * next_cursor) replaces it too, so rows that no longer match the filters leave.
 */
function mergeNewest(prev: Delivery[] | null, prevCursor: string | null, page: Page<Delivery>): { list: Delivery[]; cursor: string | null } {
  const newestLoaded = prev?.[0]?.id;
  const oldestFresh = page.data.at(-1)?.id;
  // Ids sort by creation time, so comparing them compares ages.
  const overlaps = newestLoaded !== undefined && oldestFresh !== undefined && oldestFresh <= newestLoaded;
  if (!prev || page.next_cursor === null || !overlaps) return { list: page.data, cursor: page.next_cursor };
  // From oldestFresh up, the fresh rows stand for everything, with their current status: a
  // loaded row in that range missing from them no longer matches the filters.
  const older = prev.filter((d) => d.id < oldestFresh);
  return { list: [...page.data, ...older], cursor: older.length ? prevCursor : page.next_cursor };
}

export function History({ ctx, webhookId }: { ctx: ScreenCtx; webhookId: string }) {
  const [webhook, setWebhook] = useState<Webhook | null>(null);
  const [items, setItems] = useState<Delivery[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState<'' | DeliveryStatus>('');
  const [eventType, setEventType] = useState('');
  const [error, setError] = useState<string | null>(null);
  /** The webhook answered 404: there is no history to show or to poll for. */
  const [gone, setGone] = useState(false);
  const [live, setLive] = useState(true);
  const [refreshing, setRefreshing] = useState(false);
  const [loadingMore, setLoadingMore] = useState(false);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [announce, setAnnounce] = useState('');
  const [confirmResend, setConfirmResend] = useState(false);
  const [resendPeriod, setResendPeriod] = useState(1);
  const [resending, setResending] = useState(false);
  const [findId, setFindId] = useState('');
  const [finding, setFinding] = useState(false);
  const [findError, setFindError] = useState<string | null>(null);
  /** Deliveries queued so far by the resend running now (it may take several calls), and its error. */
  const [resendQueued, setResendQueued] = useState(0);
  const [resendError, setResendError] = useState<string | null>(null);
  /** The resend running now; Stop and leaving the screen mark it, and it ends after the call in progress. */
  const resendRun = useRef<{ stopped: boolean } | null>(null);
  useEffect(() => () => void (resendRun.current && (resendRun.current.stopped = true)), []);
  const [, tick] = useState(0);
  const known = useRef<Set<string>>(new Set());
  // Mirrors of items/cursor for the merge, which runs outside render.
  const itemsRef = useRef<Delivery[] | null>(null);
  const cursorRef = useRef<string | null>(null);
  const apply = (list: Delivery[] | null, next: string | null) => {
    itemsRef.current = list;
    cursorRef.current = next;
    setItems(list);
    setCursor(next);
  };
  const filtersKey = `${status}|${eventType}`;
  const filtersRef = useRef(filtersKey);
  filtersRef.current = filtersKey;

  useEffect(() => {
    setGone(false);
    api.webhook(ctx.accountId, webhookId).then(setWebhook).catch((e: ApiError) => {
      if (e.code === 'plan_required') ctx.planRequired();
      else if (e.status === 404) setGone(true);
      else setError(e.message);
    });
  }, [webhookId]);

  /** Reload the newest page and put it in front of what is loaded (see mergeNewest). */
  const inflight = useRef(false);
  const refresh = async (reset: boolean) => {
    const key = filtersKey;
    // A slow answer must not pile up polls behind it; a reset (new filters) always goes.
    if (inflight.current && !reset) return;
    inflight.current = true;
    setRefreshing(true);
    try {
      const page = await api.deliveries(ctx.accountId, { webhook_id: webhookId, status, event_type: eventType, limit: PAGE_SIZE });
      if (filtersRef.current !== key) return; // the filters changed meanwhile; that load wins
      const newOnes = reset ? [] : page.data.filter((d) => !known.current.has(d.id));
      const next = mergeNewest(reset ? null : itemsRef.current, cursorRef.current, page);
      apply(next.list, next.cursor);
      for (const d of page.data) known.current.add(d.id);
      if (newOnes.length) {
        setFresh(new Set(newOnes.map((d) => d.id)));
        setAnnounce(`${newOnes.length} new deliver${newOnes.length === 1 ? 'y' : 'ies'}.`);
      }
      setUpdatedAt(Date.now());
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'plan_required') ctx.planRequired();
      // Deleted (in another tab, say) while this page was open: say so and stop asking.
      else if (e instanceof ApiError && e.code === 'webhook_not_found') setGone(true);
      else setError((e as Error).message);
    } finally {
      inflight.current = false;
      setRefreshing(false);
    }
  };

  useEffect(() => {
    known.current = new Set();
    setFresh(new Set());
    apply(null, null);
    void refresh(true);
  }, [webhookId, filtersKey]);

  useEffect(() => {
    // A deleted webhook gets no new deliveries: asking every few seconds would be for nothing.
    if (!live || gone) return;
    const t = window.setInterval(() => {
      // A hidden tab does not poll; it catches up when shown again.
      if (document.visibilityState === 'visible') void refresh(false);
      else tick((n) => n + 1);
    }, POLL_MS);
    return () => window.clearInterval(t);
  }, [live, webhookId, filtersKey, gone]);

  const loadMore = async () => {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await api.deliveries(ctx.accountId, { webhook_id: webhookId, status, event_type: eventType, limit: PAGE_SIZE, cursor });
      // A refresh started the list again meanwhile (or the filters changed): this older page
      // would not join it without a gap. The button, with the new cursor, fetches the right one.
      if (cursorRef.current !== cursor) return;
      for (const d of page.data) known.current.add(d.id);
      const prev = itemsRef.current ?? [];
      const have = new Set(prev.map((d) => d.id));
      apply([...prev, ...page.data.filter((d) => !have.has(d.id))], page.next_cursor);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoadingMore(false);
    }
  };

  /**
   * Send every failed delivery of the chosen period again: the server works in bounded steps,
   * so this calls until it says the period is done.
   */
  const resend = async () => {
    if (resendRun.current) return; // one at a time
    const run = { stopped: false };
    resendRun.current = run;
    setResending(true);
    setResendError(null);
    setResendQueued(0);
    const period = RESEND_PERIODS[resendPeriod]!;
    const since = new Date(Date.now() - period.ms).toISOString();
    let queued = 0;
    try {
      // The server's clock ends the window; the steps after the first keep its `until`, so
      // deliveries created meanwhile are not swept.
      let step: { cursor?: string; until?: string } = {};
      let done = false;
      while (!done && !run.stopped) {
        const r = await api.recover(ctx.accountId, webhookId, { since, ...step });
        queued += r.queued;
        setResendQueued(queued);
        done = r.next_cursor === null;
        if (!done) step = { cursor: r.next_cursor!, until: r.until };
      }
      if (!done) {
        if (queued) ctx.toast(`Stopped: ${plural(queued)} already being sent again.`);
        return;
      }
      closeResend();
      ctx.toast(queued ? `${plural(queued)} being sent again.` : `No failed deliveries in ${period.label}.`);
      void refresh(false);
    } catch (e) {
      const sofar = queued ? ` (${plural(queued)} already being sent again)` : '';
      if (e instanceof ApiError && e.code === 'plan_required') ctx.planRequired();
      else if (run.stopped) ctx.toast(`Stopped${sofar}.`); // the panel is closed: say it where it is seen
      else setResendError(`Could not resend${queued ? ' all of them' : ''}${sofar}: ${(e as Error).message}`);
    } finally {
      resendRun.current = null;
      setResending(false);
    }
  };
  const plural = (n: number) => `${n} failed deliver${n === 1 ? 'y is' : 'ies are'}`;
  /**
   * Open one delivery by the id a receiver logged (its `delivery_id`), wherever it is in the
   * history: filters and paging would otherwise have to find it. One of another webhook of
   * the account opens under that webhook.
   */
  const find = async (e: Event) => {
    e.preventDefault();
    const id = findId.trim();
    if (!DELIVERY_ID.test(id)) {
      setFindError('A delivery id looks like dlv_ followed by 26 letters and digits, as in the delivery_id your endpoint received.');
      return;
    }
    setFinding(true);
    setFindError(null);
    try {
      const d = await api.delivery(ctx.accountId, id.toUpperCase().replace(/^DLV_/, 'dlv_'));
      navigate(paths.delivery(d.webhook_id, d.id));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'plan_required') ctx.planRequired();
      else setFindError(err instanceof ApiError && err.status === 404 ? 'No delivery with this id in this account (deliveries are kept for a limited time).' : (err as Error).message);
    } finally {
      setFinding(false);
    }
  };

  /** Close the panel and give focus back to the button that opened it. */
  const closeResend = () => {
    if (resendRun.current) resendRun.current.stopped = true;
    setConfirmResend(false);
    setResendError(null);
    focusSoon('resend-open');
  };
  useEffect(() => {
    if (confirmResend) document.getElementById('resend-period')?.focus();
  }, [confirmResend]);

  if (gone) {
    return (
      <>
        <PageHeader crumbs={[{ label: 'Webhooks', href: paths.list() }, { label: 'Webhook History' }]} title="Webhook History" />
        <Notice tone="danger" role="alert" title="Could not open this history">This webhook does not exist (it may have been deleted).</Notice>
        <p><Link href={paths.list()}>Back to webhooks</Link></p>
      </>
    );
  }

  const now = Date.now();
  const eventTypes = (ctx.eventTypes ?? []).map((t) => t.name);
  const filtered = status !== '' || eventType !== '';

  return (
    <>
      <PageHeader
        crumbs={[{ label: 'Webhooks', href: paths.list() }, { label: 'Webhook History' }]}
        title="Webhook History"
        description={webhook ? <span class="mono break">{webhook.url}</span> : undefined}
        actions={
          <>
            {webhook?.enabled && !confirmResend && (
              <Button id="resend-open" onClick={() => (setResendError(null), setConfirmResend(true))} aria-describedby="resend-hint">
                <IconRefresh />
                Resend failed
              </Button>
            )}
            <Link href={paths.edit(webhookId)} class="btn btn-secondary btn-md">
              <IconPencil />
              Edit webhook
            </Link>
          </>
        }
      />
      <span id="resend-hint" class="sr-only">Sends every failed delivery of a period again, after asking.</span>
      {confirmResend && (
        <div class="resend-group" role="group" aria-label="Confirm resending failed deliveries">
          <Notice title="Send failed deliveries again?" class="resend-panel">
            <p>
              Every delivery to this webhook that Herald gave up on (all attempts failed, a 410 Gone, or the webhook was off) is queued again,
              with the same delivery id and body, and attempts go on counting. Your endpoint can drop the ones it has already processed by
              their delivery id.
            </p>
            <div class="field field-inline">
              <label class="label" for="resend-period">Created in</label>
              <select id="resend-period" class="select" value={resendPeriod} onChange={(e) => setResendPeriod(Number((e.target as HTMLSelectElement).value))}>
                {RESEND_PERIODS.map((p, i) => (
                  <option key={p.label} value={i}>{p.label}</option>
                ))}
              </select>
            </div>
            <div class="button-row">
              <Button variant="primary" size="sm" busy={resending} onClick={resend}>
                <IconRefresh />
                Resend failed deliveries
              </Button>
              <Button variant="ghost" size="sm" onClick={closeResend}>
                {resending ? 'Stop' : 'Cancel'}
              </Button>
            </div>
            <p class="small muted" role="status" aria-live="polite">{resending && resendQueued ? `${plural(resendQueued)} being sent again so far…` : ''}</p>
            {resendError && <p class="text-danger" role="alert">{resendError}</p>}
          </Notice>
        </div>
      )}
      {webhook && !webhook.enabled && (
        <Notice tone={webhook.disabled_reason ? 'danger' : 'warning'} title="This webhook is off">
          <p>
            {webhook.disabled_reason ? `Herald turned it off: ${humanizeTimestamps(webhook.disabled_reason)}. ` : ''}New events are not delivered to it. Turn it back
            on from the webhooks list once the endpoint is fixed.
          </p>
        </Notice>
      )}
      <Card id="history" class="card-flush">
        <div class="toolbar" role="group" aria-label="Filter and refresh">
          <div class="toolbar-filters">
            <div class="field field-inline">
              <label class="label" for="f-status">Status</label>
              <select id="f-status" class="select" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as '' | DeliveryStatus)}>
                <option value="">All statuses</option>
                <option value="failed">Failed</option>
                <option value="pending">Pending or retrying</option>
                <option value="succeeded">Succeeded</option>
              </select>
            </div>
            <div class="field field-inline">
              <label class="label" for="f-event">Event</label>
              <select id="f-event" class="select" value={eventType} onChange={(e) => setEventType((e.target as HTMLSelectElement).value)}>
                <option value="">All events</option>
                {eventTypes.map((n) => (
                  <option key={n} value={n}>{n}</option>
                ))}
              </select>
            </div>
            <form class="field field-inline find-delivery" onSubmit={find} role="search" aria-label="Find a delivery by id">
              <label class="label" for="f-find">Delivery id</label>
              <div class="input-group">
                <input
                  id="f-find" class="input mono" type="search" placeholder="dlv_…" spellcheck={false} autoComplete="off" value={findId}
                  aria-invalid={findError ? 'true' : undefined} aria-describedby={findError ? 'f-find-error' : undefined}
                  onInput={(e) => (setFindId((e.target as HTMLInputElement).value), setFindError(null))}
                />
                <Button type="submit" size="sm" busy={finding}>Find</Button>
              </div>
              {findError && <p id="f-find-error" class="field-error small" role="alert">{findError}</p>}
            </form>
          </div>
          <div class="toolbar-live">
            <label class="live-toggle">
              <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} />
              <span class={`live-dot ${live ? 'is-live' : ''}`} aria-hidden="true" />
              Live updates
            </label>
            <span class="muted small toolbar-updated" aria-hidden="true">{updatedAt ? `Updated ${relativeTime(new Date(updatedAt).toISOString(), now)}` : ''}</span>
            <Button size="sm" onClick={() => refresh(false)} busy={refreshing && !live} aria-label="Refresh the history now">
              <IconRefresh />
              Refresh
            </Button>
          </div>
        </div>
        <p class="sr-only" role="status" aria-live="polite">{announce}</p>
        {error && <Notice tone="danger" role="alert" class="card-notice">{error}</Notice>}
        {items === null && !error && <Spinner label="Loading deliveries" />}
        {items !== null && items.length === 0 && (
          <div class="empty empty-inline">
            <h2 class="empty-title">{filtered ? 'No deliveries match these filters' : 'No deliveries yet'}</h2>
            <p class="empty-text">
              {filtered
                ? 'Try another status or event.'
                : 'When an event this webhook subscribes to happens, its delivery appears here within seconds, with the response from your endpoint.'}
            </p>
          </div>
        )}
        {items !== null && items.length > 0 && (
          <div class="table-scroll">
            <table class="table deliveries">
              <caption class="sr-only">Deliveries, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Status</th>
                  <th scope="col">Event</th>
                  <th scope="col">Response</th>
                  <th scope="col" class="num">Attempts</th>
                  <th scope="col" class="num">Duration</th>
                  <th scope="col">Time</th>
                  <th scope="col"><span class="sr-only">Details</span></th>
                </tr>
              </thead>
              <tbody>
                {items.map((d) => (
                  <tr key={d.id} class={`row-${d.status === 'pending' && d.attempts > 0 ? 'retrying' : d.status} ${fresh.has(d.id) ? 'is-new' : ''}`} data-delivery-id={d.id}>
                    <td data-label="Status"><StatusBadge status={d.status} attempts={d.attempts} /></td>
                    <td data-label="Event">
                      <Link href={paths.delivery(webhookId, d.id)} class="row-link mono">{d.event_type}</Link>
                      <span class="cell-sub mono">{d.id}</span>
                    </td>
                    <td data-label="Response" class={d.status === 'failed' || (d.status === 'pending' && d.attempts > 0) ? 'text-danger' : ''}>
                      {d.attempts === 0 ? <span class="muted">Not sent yet</span> : outcomeLabel({ status_code: d.response_status, error_kind: null, error: d.last_error })}
                      {d.status === 'pending' && d.next_attempt_at && d.attempts > 0 && (
                        <span class="cell-sub">retry {relativeTime(d.next_attempt_at, now)}</span>
                      )}
                    </td>
                    <td data-label="Attempts" class="num">{d.attempts}</td>
                    <td data-label="Duration" class="num">{formatMs(d.duration_ms)}</td>
                    <td data-label="Time">
                      <time dateTime={d.created_at} title={absoluteTime(d.created_at)}>{relativeTime(d.created_at, now)}</time>
                    </td>
                    <td class="chev" aria-hidden="true"><IconChevronRight /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {items !== null && items.length > 0 && (
          <div class="table-footer">
            <span class="muted small">Showing {items.length} deliver{items.length === 1 ? 'y' : 'ies'}, newest first</span>
            {cursor ? (
              <Button size="sm" onClick={loadMore} busy={loadingMore}>
                Load older deliveries
              </Button>
            ) : (
              <span class="muted small">That's all of them.</span>
            )}
          </div>
        )}
      </Card>
    </>
  );
}

