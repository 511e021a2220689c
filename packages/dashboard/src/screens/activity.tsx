import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type AuditEvent } from '../api';
import type { ScreenCtx } from '../context';
import { PageHeader } from '../components/layout';
import { Button, Card, Notice, Spinner } from '../components/ui';
import { absoluteTime, relativeTime } from '../format';
import { paths } from '../router';

/**
 * Activity: the account's audit log in words, newest first. Who changed which webhook, key or
 * plan, and when; what a change sent is named, never a secret or a header value (the server
 * never stores those here). Everything shown is text, URLs included.
 */

/** Who, from the credential the server names. */
export function actorLabel(actor: string): string {
  if (actor === 'portal_session') return 'Someone signed in to this page';
  if (actor === 'operator_session') return 'Your provider, in this page';
  if (actor === 'admin_token') return 'Your provider, through the API';
  if (actor === 'portal_link') return 'A sign-in link';
  if (actor.startsWith('api_key:')) return `API key ${actor.slice('api_key:'.length)}`;
  return actor;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** What, in a sentence. */
export function actionLabel(e: AuditEvent): string {
  const d = e.details ?? {};
  switch (e.action) {
    case 'webhook.created':
      return `Added the webhook ${str(d.url)}`;
    case 'webhook.updated': {
      const fields = Array.isArray(d.fields) ? (d.fields as string[]).join(', ') : '';
      const url = d.url as { from?: string; to?: string } | undefined;
      const on = d.enabled as { to?: boolean } | undefined;
      const parts = [`Changed a webhook (${fields})`];
      if (url) parts.push(`URL ${str(url.from)} → ${str(url.to)}`);
      if (on) parts.push(on.to ? 'turned on' : 'turned off');
      const rate = d.rate_limit as { from?: number | null; to?: number | null } | undefined;
      const perSecond = (v: number | null | undefined): string => (typeof v === 'number' ? `${v} a second` : 'no limit');
      if (rate) parts.push(`rate limit ${perSecond(rate.from)} → ${perSecond(rate.to)}`);
      return parts.join('; ');
    }
    case 'webhook.deleted':
      return `Deleted the webhook ${str(d.url)}`;
    case 'webhook.secret_revealed':
      return 'Revealed a webhook’s secret';
    case 'webhook.secret_rotated':
      return 'Rotated a webhook’s secret';
    case 'webhook.recovered': {
      const n = typeof d.queued === 'number' ? d.queued : 0;
      return `Sent ${n} failed deliver${n === 1 ? 'y' : 'ies'} again`;
    }
    case 'delivery.redelivered':
      return `Redelivered ${e.target ?? 'a delivery'}`;
    case 'api_key.created':
      return `Created the API key ${e.target ?? ''}`;
    case 'api_key.revoked':
      return `Revoked the API key ${e.target ?? ''}`;
    case 'account.created':
      return 'Created the account';
    case 'account.updated':
      return typeof d.plan === 'string' ? `Changed the plan to ${d.plan}` : 'Changed the account';
    case 'portal_link.created':
      return 'Made a sign-in link to this page';
    case 'portal_session.opened':
      return 'Opened this page';
    default:
      return e.action;
  }
}

export function Activity({ ctx }: { ctx: ScreenCtx }) {
  const [items, setItems] = useState<AuditEvent[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const load = async (from: string | null) => {
    try {
      const page = await api.auditEvents(ctx.accountId, from);
      setItems((prev) => [...(from ? prev ?? [] : []), ...page.data]);
      setCursor(page.next_cursor);
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'plan_required') ctx.planRequired();
      else setError((e as Error).message);
    }
  };
  useEffect(() => void load(null), [ctx.accountId]);

  const now = Date.now();
  return (
    <>
      <PageHeader
        crumbs={[{ label: 'Webhooks', href: paths.list() }, { label: 'Activity' }]}
        title="Activity"
        description="Who added, changed or deleted webhooks and API keys, revealed or rotated a secret, resent deliveries, changed the plan, or made or used a sign-in link, and when. Secrets and header values are never shown or kept here."
      />
      {error && <Notice tone="danger" role="alert" title="Could not load the activity">{error}</Notice>}
      {items === null && !error && <Spinner label="Loading activity" />}
      {items !== null && (
        <Card class="card-flush">
          {items.length === 0 ? (
            <div class="empty empty-inline">
              <h2 class="empty-title">No activity yet</h2>
              <p class="empty-text">Changes to your webhooks and keys appear here.</p>
            </div>
          ) : (
            <div class="table-scroll">
              <table class="table activity">
                <caption class="sr-only">Activity, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Who</th>
                    <th scope="col">What</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((e) => (
                    <tr key={e.id} data-audit-id={e.id}>
                      <td data-label="Time"><time dateTime={e.at} title={absoluteTime(e.at)}>{relativeTime(e.at, now)}</time></td>
                      <td data-label="Who">{actorLabel(e.actor)}</td>
                      <td data-label="What" class="break">{actionLabel(e)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {items.length > 0 && (
            <div class="table-footer">
              <span class="muted small">Showing {items.length} entr{items.length === 1 ? 'y' : 'ies'}, newest first</span>
              {cursor ? (
                <Button size="sm" busy={loadingMore} onClick={async () => (setLoadingMore(true), await load(cursor), setLoadingMore(false))}>
                  Load older activity
                </Button>
              ) : (
                <span class="muted small">That's all of it.</span>
              )}
            </div>
          )}
        </Card>
      )}
    </>
  );
}
