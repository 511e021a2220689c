import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, type TestResult, type Webhook, type WebhookInput } from '../api';
import type { ScreenCtx } from '../context';
import { EgressInfo } from '../components/delivery-facts';
import { IconAlert, IconCheck, IconEye, IconEyeOff, IconGlobe, IconHistory, IconPlus, IconRefresh, IconSend, IconSparkle, IconTrash, IconX } from '../components/icons';
import { PageHeader } from '../components/layout';
import { Button, Card, CodeBlock, CopyButton, focusSoon, Link, Notice, Spinner } from '../components/ui';
import { absoluteTime, explainFailure, formatMs, outcomeLabel } from '../format';
import { navigate, paths } from '../router';
import { generateSecret } from '../secret';

/**
 * Add or edit a webhook. Every rule (URL, headers, events) is the API's: the form shows the
 * API's own message at the field it concerns, so the two can never disagree. Test
 * Connection sends the unsaved form, so a customer sees their endpoint's real answer before
 * committing to anything.
 */

type Field = 'url' | 'description' | 'secret' | 'events' | 'headers' | 'rate' | 'form';
type Errors = Partial<Record<Field, string>>;
/** What the customer asked for when an error came back. */
type Action = 'save' | 'test' | 'delete' | 'rotate' | 'reveal';
/** The title of the form's error notice, naming the action that failed. */
const FAILED_TITLE: Record<Action, string> = {
  save: 'The webhook was not saved',
  test: 'The test was not sent',
  delete: 'The webhook was not deleted',
  rotate: 'The secret was not rotated',
  reveal: 'The secret could not be revealed',
};
interface HeaderRow {
  key: number;
  name: string;
  value: string;
}
/** `stored`: the saved secret, write-only, untouched. `value`: the form holds a new secret (or none). */
type SecretState = { kind: 'stored'; revealed: string | null } | { kind: 'value'; value: string };

let rowKeys = 0;
const row = (name = '', value = ''): HeaderRow => ({ key: ++rowKeys, name, value });

/** Which field an API error belongs to. Validation messages name the property (`body/url …`). */
function fieldOf(e: ApiError): Field {
  if (e.code === 'invalid_url' || e.code === 'url_not_allowed') return 'url';
  if (e.code === 'unknown_event_type') return 'events';
  if (e.code === 'header_not_allowed') return 'headers';
  if (e.code === 'invalid_request' || e.code === 'validation_failed') {
    if (/\/url\b/.test(e.message)) return 'url';
    if (/\/secret\b/.test(e.message)) return 'secret';
    if (/\/events\b/.test(e.message)) return 'events';
    if (/\/headers\b/.test(e.message)) return 'headers';
    if (/\/description\b/.test(e.message)) return 'description';
    if (/\/rate_limit\b/.test(e.message)) return 'rate';
  }
  return 'form';
}

function messageFor(field: Field, e: ApiError): string {
  // Schema messages are written for programmers; these two are common enough to say plainly.
  if (field === 'secret' && /fewer than|more than/.test(e.message)) return 'The secret must be 16 to 256 characters long.';
  if (field === 'description' && /more than/.test(e.message)) return 'The description can be at most 500 characters long.';
  return e.message;
}

/** The same items, in any order. */
const sameItems = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
const headerLines = (h: Record<string, string>): string[] => Object.entries(h).map((e) => JSON.stringify(e));

/**
 * The PATCH of an edit: only the fields whose value in the form differs from the webhook as
 * loaded. Sending the rest as loaded would undo whatever was changed meanwhile in another tab
 * or through the API. (The secret is decided apart: see secretField.)
 */
function changedFields(form: WebhookInput, loaded: Webhook): Partial<WebhookInput> {
  const out: Partial<WebhookInput> = {};
  if (form.url !== loaded.url.trim()) out.url = form.url;
  if (form.description !== undefined && form.description !== loaded.description.trim()) out.description = form.description;
  if (!sameItems(form.events, loaded.events)) out.events = form.events;
  // Unreadable stored values are replaced by what the form has, even when that is none.
  if (form.headers !== undefined && (loaded.headers_unreadable || !sameItems(headerLines(form.headers), headerLines(loaded.headers)))) out.headers = form.headers;
  if (form.rate_limit !== undefined && form.rate_limit !== loaded.rate_limit) out.rate_limit = form.rate_limit;
  return out;
}

export function WebhookForm({ ctx, webhookId }: { ctx: ScreenCtx; webhookId: string | null }) {
  const editing = webhookId !== null;
  const [loaded, setLoaded] = useState<Webhook | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [secret, setSecret] = useState<SecretState>(() => ({ kind: 'value', value: editing ? '' : generateSecret() }));
  const [showSecret, setShowSecret] = useState(false);
  const [allEvents, setAllEvents] = useState(false);
  const [events, setEvents] = useState<Set<string>>(new Set());
  const [headers, setHeaders] = useState<HeaderRow[]>([]);
  /** The rate limit as typed; empty for none. */
  const [rate, setRate] = useState('');
  const updateHeader = (key: number, patch: Partial<Pick<HeaderRow, 'name' | 'value'>>): void =>
    setHeaders(headers.map((x) => (x.key === key ? { ...x, ...patch } : x)));
  const [errors, setErrors] = useState<Errors>({});
  const [failedAction, setFailedAction] = useState<Action>('save');
  const [saving, setSaving] = useState(false);
  const [testing, setTesting] = useState(false);
  const [test, setTest] = useState<{ result: TestResult | null; error: string | null; recorded: boolean } | null>(null);
  const [revealing, setRevealing] = useState(false);
  const [confirmRotate, setConfirmRotate] = useState(false);
  const [rotating, setRotating] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const refs = {
    url: useRef<HTMLInputElement>(null),
    description: useRef<HTMLInputElement>(null),
    secret: useRef<HTMLInputElement>(null),
    events: useRef<HTMLFieldSetElement>(null),
    headers: useRef<HTMLFieldSetElement>(null),
    rate: useRef<HTMLInputElement>(null),
    form: useRef<HTMLDivElement>(null),
  };
  const lastHeaderName = useRef<HTMLInputElement>(null);
  const focusNewRow = useRef(false);

  useEffect(() => {
    if (!webhookId) return;
    api
      .webhook(ctx.accountId, webhookId)
      .then((w) => {
        setLoaded(w);
        setUrl(w.url);
        setDescription(w.description);
        setSecret(w.has_secret ? { kind: 'stored', revealed: null } : { kind: 'value', value: '' });
        setAllEvents(w.events.includes('*'));
        setEvents(new Set(w.events.filter((e) => e !== '*')));
        setHeaders(Object.entries(w.headers).map(([k, v]) => row(k, v)));
        setRate(w.rate_limit === null ? '' : String(w.rate_limit));
      })
      .catch((e: ApiError) => {
        if (e.code === 'plan_required') ctx.planRequired();
        else setLoadError(e.status === 404 ? 'This webhook does not exist (it may have been deleted).' : e.message);
      });
  }, [webhookId, ctx.accountId]);

  useEffect(() => {
    if (focusNewRow.current) {
      focusNewRow.current = false;
      lastHeaderName.current?.focus();
    }
  }, [headers.length]);
  useEffect(() => {
    if (confirmDelete) document.getElementById('confirm-delete')?.focus();
  }, [confirmDelete]);
  useEffect(() => {
    if (confirmRotate) document.getElementById('confirm-rotate')?.focus();
  }, [confirmRotate]);

  /** Close a confirmation and give focus back to the button that opened it. */
  const closeRotate = () => {
    setConfirmRotate(false);
    focusSoon('rotate-open');
  };
  const closeDelete = () => {
    setConfirmDelete(false);
    focusSoon('delete-open');
  };

  const eventTypes = (ctx.eventTypes ?? []).filter((t) => t.name !== 'ping');

  const headerObject = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const h of headers) if (h.name.trim() || h.value) out[h.name.trim()] = h.value;
    return out;
  };

  const clientErrors = (forTest: boolean): Errors => {
    const e: Errors = {};
    if (!url.trim()) e.url = 'Enter the URL of your endpoint, for example https://example.com/webhooks/herald.';
    if (!forTest && !allEvents && events.size === 0) e.events = 'Choose at least one event, or All events.';
    if (headers.some((h) => !h.name.trim() && h.value)) e.headers = 'Every header needs a name.';
    const names = headers.map((h) => h.name.trim().toLowerCase()).filter(Boolean);
    if (new Set(names).size !== names.length) e.headers = 'Each header name can be used only once.';
    if (!forTest && rate.trim() && !/^\d+$/.test(rate.trim())) e.rate = 'Enter a whole number of deliveries per second, or leave it empty for no limit.';
    else if (!forTest && rate.trim() && (Number(rate) < 1 || Number(rate) > 10_000)) e.rate = 'The limit must be between 1 and 10,000 deliveries per second.';
    return e;
  };

  const showErrors = (e: Errors, focus = true) => {
    setErrors(e);
    if (!focus) return;
    const first = (['url', 'description', 'events', 'secret', 'headers', 'rate', 'form'] as Field[]).find((f) => e[f]);
    if (first) {
      const el = refs[first].current;
      if (el instanceof HTMLFieldSetElement) el.querySelector<HTMLElement>('input, button')?.focus();
      else el?.focus();
    }
  };

  const apiFailed = (e: unknown, action: Action) => {
    setFailedAction(action);
    if (e instanceof ApiError) {
      if (e.code === 'plan_required') return ctx.planRequired();
      // The session ended: the shell's notice takes the focus; this one says what was not done.
      if (e.status === 401) return showErrors({ form: e.message }, false);
      const f = fieldOf(e);
      showErrors({ [f]: messageFor(f, e) });
    } else showErrors({ form: (e as Error).message });
  };

  /** Unchanged since loaded: Test Connection can use the saved webhook (and record it in History). */
  const unchanged = (): boolean => {
    if (!loaded || secret.kind !== 'stored' || loaded.headers_unreadable) return false;
    const saved = JSON.stringify(Object.entries(loaded.headers).sort());
    return url.trim() === loaded.url && JSON.stringify(Object.entries(headerObject()).sort()) === saved;
  };

  const runTest = async () => {
    const e = clientErrors(true);
    if (Object.keys(e).length) return showErrors(e);
    setErrors({});
    setTesting(true);
    setTest(null);
    try {
      if (editing && unchanged()) {
        const result = await api.testSaved(ctx.accountId, webhookId!);
        setTest({ result, error: null, recorded: true });
      } else {
        // An edited form keeps the saved secret: Herald signs the test with it (webhook_id), so
        // it is never revealed, nor logged as revealed, just to test a changed URL or header.
        const signing = secret.kind === 'stored' ? { webhook_id: webhookId! } : { secret: secret.value || null };
        const result = await api.testUnsaved(ctx.accountId, { url: url.trim(), headers: headerObject(), ...signing });
        setTest({ result, error: null, recorded: false });
      }
    } catch (err) {
      if (err instanceof ApiError && fieldOf(err) !== 'form') apiFailed(err, 'test');
      setTest({ result: null, error: (err as Error).message, recorded: false });
    } finally {
      setTesting(false);
    }
  };

  const save = async (ev: Event) => {
    ev.preventDefault();
    const e = clientErrors(false);
    if (Object.keys(e).length) return showErrors(e);
    setErrors({});
    setSaving(true);
    const form: WebhookInput = {
      url: url.trim(),
      description: description.trim(),
      events: allEvents ? ['*'] : [...events],
      headers: headerObject(),
      rate_limit: rate.trim() ? Number(rate) : null,
    };
    try {
      if (editing) await api.updateWebhook(ctx.accountId, webhookId!, { ...changedFields(form, loaded!), ...secretField() });
      else await api.createWebhook(ctx.accountId, { ...form, ...secretField() });
      ctx.toast(editing ? 'Webhook saved.' : 'Webhook added. New events will be delivered to it.');
      navigate(paths.list());
    } catch (err) {
      apiFailed(err, 'save');
    } finally {
      setSaving(false);
    }
  };

  /**
   * The secret part of a save: present only when the customer typed, generated or cleared a
   * secret. The stored one, untouched, is never sent, so a rotation or a secret set elsewhere
   * since the form opened stays.
   */
  const secretField = (): Pick<WebhookInput, 'secret'> => {
    if (secret.kind !== 'value') return {};
    if (secret.value) return { secret: secret.value };
    // An empty field removes the secret the webhook had when loaded; with none, it changes nothing.
    return editing && loaded?.has_secret ? { secret: null } : {};
  };

  const remove = async () => {
    setDeleting(true);
    try {
      await api.deleteWebhook(ctx.accountId, webhookId!);
      ctx.toast('Webhook deleted.');
      navigate(paths.list());
    } catch (err) {
      setDeleting(false);
      setConfirmDelete(false);
      apiFailed(err, 'delete');
    }
  };

  const reveal = async () => {
    if (secret.kind !== 'stored') return;
    setRevealing(true);
    try {
      const r = await api.revealSecret(ctx.accountId, webhookId!);
      setSecret({ kind: 'stored', revealed: r.secret });
    } catch (err) {
      apiFailed(err, 'reveal');
    } finally {
      setRevealing(false);
    }
  };

  /** A new secret signs from now on; the replaced one keeps signing for a day (the server's default). */
  const rotate = async () => {
    setRotating(true);
    try {
      const r = await api.rotateSecret(ctx.accountId, webhookId!);
      setSecret({ kind: 'stored', revealed: r.secret });
      if (loaded) setLoaded({ ...loaded, has_secret: true, previous_secret_expires_at: r.previous_secret_expires_at });
      closeRotate();
      ctx.toast('Secret rotated. Copy the new secret into your endpoint.');
    } catch (err) {
      apiFailed(err, 'rotate');
    } finally {
      setRotating(false);
    }
  };

  if (editing && loadError) {
    return (
      <>
        <PageHeader crumbs={[{ label: 'Webhooks', href: paths.list() }, { label: 'Edit' }]} title="Edit webhook" />
        <Notice tone="danger" role="alert" title="Could not open this webhook">{loadError}</Notice>
        <p><Link href={paths.list()}>Back to webhooks</Link></p>
      </>
    );
  }
  if (editing && !loaded) return <Spinner label="Loading webhook" />;

  /** The form holds a new secret for a webhook that has one: saving replaces it at once. */
  const replacing = editing && !!loaded?.has_secret && secret.kind === 'value';
  const err = (f: Field) => (errors[f] ? { 'aria-invalid': 'true' as const, 'aria-describedby': `${f}-error` } : {});
  const FieldError = ({ f }: { f: Field }) => (errors[f] ? <p class="field-error" id={`${f}-error`}><IconAlert />{errors[f]}</p> : null);
  const egress = ctx.meta?.egress_ip_ranges ?? [];

  return (
    <>
      <PageHeader
        crumbs={[{ label: 'Webhooks', href: paths.list() }, { label: editing ? 'Edit webhook' : 'Add webhook' }]}
        title={editing ? 'Edit webhook' : 'Add webhook'}
        description={editing ? <span class="mono break">{loaded!.url}</span> : 'Tell Herald where to send events and which ones. You can test the connection before saving.'}
        actions={
          editing ? (
            <Link href={paths.history(webhookId!)} class="btn btn-secondary btn-md">
              <IconHistory />
              Webhook History
            </Link>
          ) : undefined
        }
      />
      <form class="form-layout" onSubmit={save} noValidate aria-label={editing ? 'Edit webhook' : 'Add webhook'}>
        <div class="form-main">
          <div ref={refs.form} tabIndex={-1} class="focus-target">
            {errors.form && <Notice tone="danger" role="alert" title={FAILED_TITLE[failedAction]}>{errors.form}</Notice>}
          </div>

          <Card id="endpoint" title="Endpoint">
            <div class="field">
              <label for="url" class="label">Destination URL</label>
              <input
                ref={refs.url}
                id="url"
                class={`input mono ${errors.url ? 'is-invalid' : ''}`}
                type="url"
                inputMode="url"
                autocomplete="off"
                spellcheck={false}
                placeholder="https://example.com/webhooks/herald"
                value={url}
                onInput={(e) => {
                  setUrl((e.target as HTMLInputElement).value);
                  if (errors.url) setErrors({ ...errors, url: undefined });
                }}
                aria-describedby={errors.url ? 'url-error' : 'url-hint'}
                aria-invalid={errors.url ? 'true' : undefined}
              />
              <FieldError f="url" />
              <p class="hint" id="url-hint">An https:// address on the public internet. Herald sends a POST with a JSON body to it.</p>
              <div class="inline-info" role="note">
                <IconGlobe />
                {egress.length ? (
                  <p>
                    Behind a firewall? Allow requests from{' '}
                    {egress.map((r, i) => (
                      <span key={r}>
                        <code class="mono">{r}</code>
                        {i < egress.length - 1 ? ', ' : ''}
                      </span>
                    ))}
                    .
                  </p>
                ) : (
                  <p>Herald does not send from fixed IP addresses; verify the signature instead of allow-listing IPs.</p>
                )}
              </div>
            </div>
            <div class="field">
              <label for="description" class="label">
                Description <span class="optional">optional</span>
              </label>
              <input
                ref={refs.description}
                id="description"
                class={`input ${errors.description ? 'is-invalid' : ''}`}
                type="text"
                maxLength={500}
                placeholder="e.g. Production order sync"
                value={description}
                onInput={(e) => setDescription((e.target as HTMLInputElement).value)}
                {...err('description')}
              />
              <FieldError f="description" />
            </div>
          </Card>

          <Card id="events-card" title="Events" description="Herald delivers only the events this webhook subscribes to.">
            <fieldset ref={refs.events} class="fieldset" aria-describedby={errors.events ? 'events-error' : undefined}>
              <legend class="sr-only">Events to send</legend>
              <label class={`check check-all ${allEvents ? 'is-checked' : ''}`}>
                <input type="checkbox" checked={allEvents} onChange={(e) => setAllEvents((e.target as HTMLInputElement).checked)} />
                <span class="check-text">
                  <span class="check-title">All events</span>
                  <span class="check-description">Every event type, including ones added later.</span>
                </span>
              </label>
              {ctx.eventTypesError && (
                // Without it the form would offer All events alone, as if there were no others.
                <Notice tone="danger" role="alert" title="The list of events could not be loaded" class="notice-inline">
                  <p>{ctx.eventTypesError}</p>
                  <p>You can choose All events, or try again to pick single events.</p>
                  <div class="button-row">
                    <Button size="sm" onClick={ctx.reloadEventTypes}>
                      <IconRefresh />
                      Try again
                    </Button>
                  </div>
                </Notice>
              )}
              <div class="check-grid">
                {ctx.eventTypes === null && <p class="muted small">Loading event types…</p>}
                {eventTypes.map((t) => (
                  <label key={t.name} class={`check ${allEvents ? 'is-disabled' : ''} ${allEvents || events.has(t.name) ? 'is-checked' : ''}`}>
                    <input
                      type="checkbox"
                      name="events"
                      value={t.name}
                      checked={allEvents || events.has(t.name)}
                      disabled={allEvents}
                      onChange={(e) => {
                        const next = new Set(events);
                        if ((e.target as HTMLInputElement).checked) next.add(t.name);
                        else next.delete(t.name);
                        setEvents(next);
                        if (errors.events) setErrors({ ...errors, events: undefined });
                      }}
                    />
                    <span class="check-text">
                      <span class="check-title mono">{t.name}</span>
                      <span class="check-description">{t.description || 'No description.'}</span>
                    </span>
                  </label>
                ))}
              </div>
            </fieldset>
            <FieldError f="events" />
          </Card>

          <Card
            id="secret-card"
            title="Webhook Secret"
            description="Herald signs every request with this secret (X-Hub-Signature-256 and webhook-signature headers), so your endpoint can check that a request really comes from Herald."
          >
            {secret.kind === 'stored' ? (
              <div class="secret-stored">
                {secret.revealed === null ? (
                  <p class="secret-status">
                    <IconCheck class="ok" />
                    <span>
                      <strong>A secret is set.</strong> For your safety it is hidden; reveal it only when you need to copy it.
                    </span>
                  </p>
                ) : (
                  <div class="field">
                    <label for="secret-revealed" class="label">Current secret</label>
                    <div class="input-group">
                      <input id="secret-revealed" class="input mono" readOnly value={secret.revealed} />
                      <CopyButton text={() => secret.revealed ?? ''} size="md" />
                    </div>
                  </div>
                )}
                {loaded?.previous_secret_expires_at && (
                  <p class="hint" data-testid="previous-secret">
                    The previous secret also signs every delivery until {absoluteTime(loaded.previous_secret_expires_at)}, so your endpoint can
                    switch without missing a request.
                  </p>
                )}
                {confirmRotate && (
                  <div class="confirm" role="group" aria-label="Confirm rotation">
                    <p>
                      <strong>Rotate the secret now?</strong> A new secret signs every delivery from now on. The current one keeps signing
                      too (a second webhook-signature entry) for 24 hours. X-Hub-Signature-256 carries the new secret's signature only.
                    </p>
                    {loaded?.previous_secret_expires_at && (
                      <p data-testid="rotate-drops-previous">
                        The secret replaced by the last rotation stops signing now, not at {absoluteTime(loaded.previous_secret_expires_at)}: only one
                        previous secret is kept.
                      </p>
                    )}
                    <div class="button-row">
                      <Button id="confirm-rotate" variant="primary" size="sm" busy={rotating} onClick={rotate}>
                        <IconRefresh />
                        Rotate now
                      </Button>
                      <Button variant="ghost" size="sm" onClick={closeRotate}>
                        Cancel
                      </Button>
                    </div>
                  </div>
                )}
                <div class="button-row">
                  {secret.revealed === null ? (
                    <Button size="sm" busy={revealing} onClick={reveal}>
                      <IconEye />
                      Reveal secret
                    </Button>
                  ) : (
                    <Button size="sm" onClick={() => setSecret({ kind: 'stored', revealed: null })}>
                      <IconEyeOff />
                      Hide secret
                    </Button>
                  )}
                  <Button
                    id="replace-open"
                    size="sm"
                    onClick={() => {
                      setSecret({ kind: 'value', value: generateSecret() });
                      setShowSecret(true);
                      // To the new secret, whose description warns about saving it.
                      focusSoon('secret');
                    }}
                  >
                    <IconRefresh />
                    Replace secret
                  </Button>
                  {!confirmRotate && (
                    <Button id="rotate-open" size="sm" onClick={() => setConfirmRotate(true)}>
                      <IconRefresh />
                      Rotate secret
                    </Button>
                  )}
                </div>
              </div>
            ) : (
              <div class="field">
                <label for="secret" class="label">
                  Signing secret <span class="optional">recommended</span>
                </label>
                <div class="input-group">
                  <input
                    ref={refs.secret}
                    id="secret"
                    class={`input mono ${errors.secret ? 'is-invalid' : ''}`}
                    // Preact's types narrow `type` per literal; a toggled value needs the cast.
                    type={(showSecret ? 'text' : 'password') as 'text'}
                    autocomplete="off"
                    spellcheck={false}
                    placeholder="Leave empty to send unsigned requests"
                    value={secret.value}
                    onInput={(e) => setSecret({ kind: 'value', value: (e.target as HTMLInputElement).value })}
                    aria-describedby={errors.secret ? 'secret-error' : replacing ? 'secret-hint secret-replace-note' : 'secret-hint'}
                    aria-invalid={errors.secret ? 'true' : undefined}
                  />
                  <Button size="md" onClick={() => setShowSecret(!showSecret)} aria-pressed={showSecret ? 'true' : 'false'} aria-controls="secret">
                    {showSecret ? <IconEyeOff /> : <IconEye />}
                    {showSecret ? 'Hide' : 'Show'}
                  </Button>
                  <CopyButton text={() => secret.value} size="md" />
                  <Button
                    size="md"
                    onClick={() => {
                      setSecret({ kind: 'value', value: generateSecret() });
                      setErrors({ ...errors, secret: undefined });
                    }}
                  >
                    <IconSparkle />
                    Generate
                  </Button>
                </div>
                <FieldError f="secret" />
                <p class="hint" id="secret-hint">
                  16 to 256 characters. Generate makes a strong random one. Copy it into your endpoint's configuration now; you can reveal it
                  again later.
                </p>
                {replacing && (
                  <>
                    <p class="hint hint-warning" id="secret-replace-note">
                      The current secret stops signing as soon as you save, so your endpoint must use this one from then on. To switch without
                      refusing a request, keep the current secret and use Rotate secret instead: the current one keeps signing beside the new
                      one for 24 hours.
                    </p>
                    <Button
                      size="sm"
                      variant="ghost"
                      onClick={() => {
                        setSecret({ kind: 'stored', revealed: null });
                        focusSoon('replace-open');
                      }}
                    >
                      Keep the current secret
                    </Button>
                  </>
                )}
              </div>
            )}
          </Card>

          <Card
            id="headers-card"
            title="Custom Headers"
            description="Extra HTTP headers sent with every request, for example an API key your endpoint expects. Values are stored encrypted."
          >
            {loaded?.headers_unreadable && (
              <Notice tone="danger" title="The saved header values can no longer be read" class="notice-inline">
                They may be damaged, or were encrypted with another key. Deliveries to this webhook fail until they are set again: add the
                headers your endpoint expects (or none) and save.
              </Notice>
            )}
            <fieldset ref={refs.headers} class="fieldset" aria-describedby={errors.headers ? 'headers-error' : 'headers-hint'}>
              <legend class="sr-only">Custom headers</legend>
              {headers.length > 0 && (
                <div class="kv-rows">
                  <div class="kv-head" aria-hidden="true">
                    <span>Name</span>
                    <span>Value</span>
                    <span />
                  </div>
                  {headers.map((h, i) => (
                    <div class="kv-row" key={h.key}>
                      <input
                        ref={i === headers.length - 1 ? lastHeaderName : undefined}
                        class={`input mono ${errors.headers ? 'is-invalid' : ''}`}
                        aria-label={`Header ${i + 1} name`}
                        placeholder="X-Api-Key"
                        autocomplete="off"
                        spellcheck={false}
                        value={h.name}
                        onInput={(e) => updateHeader(h.key, { name: (e.target as HTMLInputElement).value })}
                      />
                      <input
                        class={`input mono ${errors.headers ? 'is-invalid' : ''}`}
                        aria-label={`Header ${i + 1} value`}
                        placeholder="value"
                        autocomplete="off"
                        spellcheck={false}
                        value={h.value}
                        onInput={(e) => updateHeader(h.key, { value: (e.target as HTMLInputElement).value })}
                      />
                      <Button variant="ghost" size="md" class="btn-icon" aria-label={`Remove header ${i + 1}${h.name ? ` (${h.name})` : ''}`} onClick={() => setHeaders(headers.filter((x) => x.key !== h.key))}>
                        <IconTrash />
                      </Button>
                    </div>
                  ))}
                </div>
              )}
              <Button
                size="sm"
                onClick={() => {
                  focusNewRow.current = true;
                  setHeaders([...headers, row()]);
                }}
              >
                <IconPlus />
                Add header
              </Button>
            </fieldset>
            <FieldError f="headers" />
            <p class="hint" id="headers-hint">
              Reserved names can't be used: Host, Content-Type, Content-Length, User-Agent, Connection, Transfer-Encoding, X-Hub-Signature-256,
              X-Herald-* and webhook-*.
            </p>
          </Card>

          <Card
            id="rate-card"
            title="Delivery Rate"
            description="For an endpoint that can only take so many requests: Herald sends this webhook at most this many deliveries a second, and queues the rest. Nothing is dropped."
          >
            <div class="field">
              <label for="rate" class="label">
                Max deliveries per second <span class="optional">optional</span>
              </label>
              <input
                ref={refs.rate}
                id="rate"
                class={`input input-narrow ${errors.rate ? 'is-invalid' : ''}`}
                type="text"
                inputMode="numeric"
                autocomplete="off"
                placeholder="No limit"
                value={rate}
                onInput={(e) => {
                  setRate((e.target as HTMLInputElement).value);
                  if (errors.rate) setErrors({ ...errors, rate: undefined });
                }}
                {...(errors.rate ? err('rate') : { 'aria-describedby': 'rate-hint' })}
              />
              <FieldError f="rate" />
              <p class="hint" id="rate-hint">
                1 to 10,000. After a quiet spell up to a second's worth go out at once. Leave it empty to send as fast as your endpoint answers.
              </p>
            </div>
          </Card>

          {editing && (
            <Card id="danger" title="Delete webhook" class="card-danger" description="Deleting stops all deliveries to this endpoint and removes its delivery history. This can't be undone.">
              {confirmDelete ? (
                <div class="confirm" role="group" aria-label="Confirm deletion">
                  <p>
                    <strong>Delete this webhook and its history?</strong>
                  </p>
                  <div class="button-row">
                    <Button id="confirm-delete" variant="danger" busy={deleting} onClick={remove}>
                      <IconTrash />
                      Yes, delete webhook
                    </Button>
                    <Button variant="ghost" onClick={closeDelete}>
                      Cancel
                    </Button>
                  </div>
                </div>
              ) : (
                <Button id="delete-open" variant="danger-ghost" onClick={() => setConfirmDelete(true)}>
                  <IconTrash />
                  Delete webhook
                </Button>
              )}
            </Card>
          )}

          <div class="form-footer">
            <Link href={paths.list()} class="btn btn-ghost btn-md">Cancel</Link>
            <Button type="submit" variant="primary" busy={saving}>
              Save Webhook
            </Button>
          </div>
        </div>

        <aside class="form-aside" aria-label="Test and delivery facts">
          <Card id="test" title="Test Connection" description="Sends a signed ping event to the URL in the form, with its secret and headers, and shows what your endpoint answers. Nothing is saved.">
            <Button onClick={runTest} busy={testing} class="btn-block">
              <IconSend />
              {testing ? 'Sending ping…' : 'Test Connection'}
            </Button>
            <div class="test-result-region" aria-live="polite" aria-atomic="true">
              {test && <TestOutcome test={test} timeoutMs={ctx.meta?.timeout_ms} />}
            </div>
          </Card>
          <Card id="facts" title="Delivery facts">
            <EgressInfo meta={ctx.meta} compact />
          </Card>
        </aside>
      </form>
    </>
  );
}

function TestOutcome({ test, timeoutMs }: { test: { result: TestResult | null; error: string | null; recorded: boolean }; timeoutMs?: number }) {
  if (!test.result) {
    return (
      <div class="test-result is-bad" data-testid="test-result">
        <p class="test-headline">
          <IconX /> The test could not be sent
        </p>
        <p class="test-explain">{test.error}</p>
      </div>
    );
  }
  const r = test.result;
  return (
    <div class={`test-result ${r.ok ? 'is-ok' : 'is-bad'}`} data-testid="test-result">
      <p class="test-headline">
        {r.ok ? <IconCheck /> : <IconX />}
        <span class="test-status" data-testid="test-status">{outcomeLabel({ status_code: r.status_code, error_kind: r.error_kind, error: r.error })}</span>
        <span class="test-time" data-testid="test-time">in {formatMs(r.duration_ms)}</span>
      </p>
      <p class="test-explain">
        {r.ok ? 'Your endpoint is reachable and answered with success. Save the webhook to start receiving events.' : explainFailure({ status_code: r.status_code, error_kind: r.error_kind, error: r.error }, timeoutMs)}
      </p>
      {r.error && r.status_code === null && <p class="test-error mono small">{r.error}</p>}
      <p class="label small">Response body</p>
      <CodeBlock text={r.response_body} label="Response body from your endpoint" empty="Your endpoint sent an empty body." />
      {test.recorded && <p class="hint">This test is recorded in the webhook's history.</p>}
    </div>
  );
}
