import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Delivery, type Webhook } from '../api';
import type { ScreenCtx } from '../context';
import { EgressInfo } from '../components/delivery-facts';
import { IconHistory, IconPencil, IconPlus, IconSend, IconShield, IconWebhook } from '../components/icons';
import { PageHeader } from '../components/layout';
import { Badge, Card, Link, Notice, Spinner, Switch } from '../components/ui';
import { absoluteTime, humanizeTimestamps, relativeTime, STATUS_LABEL } from '../format';
import { navigate, paths } from '../router';

/** Deliveries looked at for "health at a glance": recent enough to reflect today, cheap to fetch. */
const HEALTH_SAMPLE = 50;
/** Bars drawn in the sparkline. */
const SPARK_BARS = 30;

interface Health {
  recent: Delivery[];
  succeeded: number;
  failed: number;
  pending: number;
}

function summarize(ds: Delivery[]): Health {
  let succeeded = 0, failed = 0, pending = 0;
  for (const d of ds) {
    if (d.status === 'succeeded') succeeded++;
    else if (d.status === 'failed') failed++;
    else pending++;
  }
  return { recent: ds, succeeded, failed, pending };
}

export function WebhooksList({ ctx }: { ctx: ScreenCtx }) {
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [health, setHealth] = useState<Record<string, Health | 'error'>>({});
  const [error, setError] = useState<string | null>(null);
  const [switching, setSwitching] = useState<string | null>(null);
  const [announce, setAnnounce] = useState('');
  /** The switch that could not be changed, and why: shown under that webhook until the next try. */
  const [switchError, setSwitchError] = useState<{ id: string; title: string; message: string } | null>(null);

  const loadHealth = (list: Webhook[]) => {
    for (const w of list) {
      api
        .deliveries(ctx.accountId, { webhook_id: w.id, limit: HEALTH_SAMPLE })
        .then((p) => setHealth((h) => ({ ...h, [w.id]: summarize(p.data) })))
        .catch(() => setHealth((h) => ({ ...h, [w.id]: 'error' })));
    }
  };

  useEffect(() => {
    let live = true;
    api
      .webhooks(ctx.accountId)
      .then((r) => {
        if (!live) return;
        setHooks(r.data);
        loadHealth(r.data);
      })
      .catch((e: ApiError) => {
        if (e.code === 'plan_required') ctx.planRequired();
        else setError(e.message);
      });
    return () => {
      live = false;
    };
  }, [ctx.accountId]);

  const toggle = async (w: Webhook, enabled: boolean) => {
    setSwitching(w.id);
    setSwitchError(null);
    try {
      const saved = await api.updateWebhook(ctx.accountId, w.id, { enabled });
      setHooks((hs) => (hs ?? []).map((x) => (x.id === w.id ? saved : x)));
      setAnnounce(`${w.url} turned ${enabled ? 'on' : 'off'}.`);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'plan_required') return ctx.planRequired();
      // The switch stays as it was; the reason goes under the webhook (a role="alert", so a
      // screen reader hears it too).
      const message = e instanceof ApiError && e.status === 404
        ? 'This webhook no longer exists: it was deleted elsewhere. Reload the page to see your webhooks as they are now.'
        : (e as Error).message;
      setSwitchError({ id: w.id, title: `Could not turn ${w.url} ${enabled ? 'on' : 'off'}`, message });
    } finally {
      setSwitching(null);
    }
  };

  const now = Date.now();
  return (
    <>
      <PageHeader
        crumbs={[{ label: 'Webhooks' }]}
        title="Webhooks"
        description="Get notified in your own systems the moment something happens in your account. For each event, Herald sends an HTTP POST with a JSON body to the URLs you add here."
        actions={
          <>
            <Link href={paths.activity()} class="btn btn-secondary btn-md">
              Activity
            </Link>
            <Link href={paths.new()} class="btn btn-primary btn-md">
              <IconPlus />
              Add Webhook
            </Link>
          </>
        }
      />
      <p class="sr-only" role="status" aria-live="polite">{announce}</p>
      {error && <Notice tone="danger" role="alert" title="Could not load your webhooks">{error}</Notice>}
      {!hooks && !error && <Spinner label="Loading webhooks" />}
      {hooks && hooks.length === 0 && <EmptyState />}
      {hooks && hooks.length > 0 && (
        <Card id="endpoints" title="Endpoints" description={`${hooks.length} webhook${hooks.length === 1 ? '' : 's'} in ${ctx.account.name}`}>
          <ul class="webhook-list">
            {hooks.map((w) => (
              <li class={`webhook-item ${w.enabled ? '' : 'is-off'}`} key={w.id}>
                <div class="webhook-switch">
                  <Switch checked={w.enabled} busy={switching === w.id} label={`Enabled: ${w.url}`} onChange={(v) => toggle(w, v)} />
                </div>
                <div class="webhook-main">
                  <div class="webhook-url-row">
                    <Link href={paths.edit(w.id)} class="webhook-url mono" title={w.url}>{w.url}</Link>
                    {!w.enabled && <Badge tone={w.disabled_reason ? 'danger' : 'neutral'}>{w.disabled_reason ? 'Turned off' : 'Off'}</Badge>}
                    {w.has_secret && (
                      <span class="signed" title="Requests are signed with a secret">
                        <IconShield /> Signed
                      </span>
                    )}
                    {w.rate_limit !== null && (
                      <span class="rate-note" title="Herald sends this webhook at most this many deliveries a second">
                        <span aria-hidden="true">≤ {w.rate_limit.toLocaleString('en-US')}/s</span>
                        <span class="sr-only">At most {w.rate_limit.toLocaleString('en-US')} deliveries a second</span>
                      </span>
                    )}
                  </div>
                  {w.description && <p class="webhook-description">{w.description}</p>}
                  <ul class="chips" aria-label="Subscribed events">
                    {w.events.includes('*') ? (
                      <li class="chip chip-all">All events</li>
                    ) : (
                      w.events.map((e) => <li class="chip mono" key={e}>{e}</li>)
                    )}
                  </ul>
                  <HealthLine health={health[w.id]} now={now} />
                  {switchError?.id === w.id && (
                    <Notice tone="danger" role="alert" class="notice-inline" title={switchError.title}>
                      <p>{switchError.message}</p>
                    </Notice>
                  )}
                  {!w.enabled && w.disabled_reason && (
                    <Notice tone="danger" class="notice-inline" title="Herald turned this webhook off">
                      <p>
                        Reason: {humanizeTimestamps(w.disabled_reason)}. No events are sent to it until you turn it back on. Fix the endpoint first, then use the
                        switch.
                      </p>
                    </Notice>
                  )}
                </div>
                <div class="webhook-actions">
                  <Link href={paths.history(w.id)} class="btn btn-secondary btn-sm">
                    <IconHistory />
                    History
                  </Link>
                  <Link href={paths.edit(w.id)} class="btn btn-ghost btn-sm" aria-label={`Edit ${w.url}`}>
                    <IconPencil />
                    Edit
                  </Link>
                </div>
              </li>
            ))}
          </ul>
        </Card>
      )}
      {hooks && (
        <Card id="facts" title="Before you connect" description="What to know when your endpoint sits behind a firewall, and what happens when it is down.">
          <EgressInfo meta={ctx.meta} />
        </Card>
      )}
    </>
  );
}

function HealthLine({ health, now }: { health: Health | 'error' | undefined; now: number }) {
  if (health === undefined) return <p class="health muted small">Checking recent deliveries…</p>;
  if (health === 'error') return <p class="health muted small">Recent deliveries could not be loaded.</p>;
  if (health.recent.length === 0) return <p class="health muted small">No deliveries yet. Use Test Connection to check the endpoint.</p>;
  const finished = health.succeeded + health.failed;
  const pct = finished ? Math.round((health.succeeded / finished) * 100) : null;
  const tone = pct === null ? 'neutral' : pct >= 95 ? 'good' : pct >= 80 ? 'warn' : 'bad';
  const last = health.recent[0]!;
  const bars = health.recent.slice(0, SPARK_BARS).reverse();
  return (
    <div class="health">
      <span class="spark" aria-hidden="true">
        {bars.map((d) => (
          <span key={d.id} class={`spark-bar spark-${d.status}`} />
        ))}
      </span>
      <span class={`health-rate health-${tone}`}>
        {pct === null ? 'In progress' : `${pct}% succeeded`}
      </span>
      <span class="muted small">
        {pct !== null && `of the last ${finished}`}
        {health.pending > 0 && ` · ${health.pending} pending`}
        {' · '}latest <time dateTime={last.created_at} title={absoluteTime(last.created_at)}>{relativeTime(last.created_at, now)}</time>{' '}
        ({STATUS_LABEL[last.status].toLowerCase()})
      </span>
    </div>
  );
}

function EmptyState() {
  return (
    <section class="card empty" aria-labelledby="empty-title">
      <div class="empty-art" aria-hidden="true">
        <IconWebhook />
      </div>
      <h2 id="empty-title" class="empty-title">No webhooks yet</h2>
      <p class="empty-text">
        A webhook is a URL on your server that Herald calls whenever something happens here, such as content finishing generating or a
        publish failing. Your system hears about it within seconds, with no polling.
      </p>
      <ol class="steps">
        <li>
          <span class="step-n">1</span>
          <span><strong>Add your endpoint's URL</strong> and pick the events it should receive.</span>
        </li>
        <li>
          <span class="step-n">2</span>
          <span><strong>Test the connection</strong> to see exactly what your server answers, before saving.</span>
        </li>
        <li>
          <span class="step-n">3</span>
          <span><strong>Watch the history</strong>: every delivery, its response and automatic retries.</span>
        </li>
      </ol>
      <button type="button" class="btn btn-primary btn-md" onClick={() => navigate(paths.new())}>
        <IconSend />
        Add your first webhook
      </button>
    </section>
  );
}
